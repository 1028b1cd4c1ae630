//! The hyper service: one request from the program, one to the upstream (the steps are
//! listed in the module doc of [`super`]).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use secrecy::{ExposeSecret, SecretSlice};
use subtle::ConstantTimeEq;

use super::scrub::{self, BoxError, ScanBody, ScrubBody, Search, Verdict};
use super::{AuditEvent, Decision, MINTED_REUSE, SecretSource, compile};
use crate::mask::Patterns;
use crate::model::upstream::{HeaderTemplate, Origin};

type RespBody = BoxBody<Bytes, BoxError>;
type UpstreamClient = Client<HttpsConnector<HttpConnector>, ScanBody<Incoming>>;

/// Headers that belong to one connection, never forwarded (RFC 9110 section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A route as the proxy holds it.
pub struct Route {
    name: String,
    origin: Origin,
    header_name: HeaderName,
    header: HeaderTemplate,
    secret: SecretSource,
    scrub_also: Vec<SecretSlice<u8>>,
    placeholder: Arc<Patterns>,
    /// For a static secret: its patterns (with `scrub_also`), built once.
    scrub_static: Option<Arc<Patterns>>,
    /// For a minted secret: the current one and its patterns.
    minted: Mutex<Option<Minted>>,
}

struct Minted {
    value: SecretSlice<u8>,
    patterns: Option<Arc<Patterns>>,
    until: Instant,
}

impl Route {
    pub fn new(
        name: String,
        origin: Origin,
        header: HeaderTemplate,
        secret: SecretSource,
        scrub_also: Vec<SecretSlice<u8>>,
        placeholder: Arc<Patterns>,
        scrub_static: Option<Arc<Patterns>>,
    ) -> Route {
        Route {
            name,
            header_name: HeaderName::from_bytes(header.name.as_bytes())
                .unwrap_or(header::AUTHORIZATION),
            origin,
            header,
            secret,
            scrub_also,
            placeholder,
            scrub_static,
            minted: Mutex::new(None),
        }
    }

    /// The secret to send now, and the patterns to scrub from the response.
    async fn secret(&self) -> Result<(SecretSlice<u8>, Option<Arc<Patterns>>), String> {
        let mint = match &self.secret {
            SecretSource::Static(value) => return Ok((value.clone(), self.scrub_static.clone())),
            SecretSource::Minted(mint) => mint.clone(),
        };
        if let Ok(guard) = self.minted.lock()
            && let Some(current) = guard.as_ref()
            && Instant::now() < current.until
        {
            return Ok((current.value.clone(), current.patterns.clone()));
        }
        let (value, usable) = tokio::task::spawn_blocking(move || mint())
            .await
            .map_err(|_| "the token source failed".to_string())??;
        let mut values: Vec<&[u8]> = self.scrub_also.iter().map(|s| s.expose_secret()).collect();
        values.push(value.expose_secret());
        let patterns = compile(&values).map_err(|e| e.to_string())?;
        if let Ok(mut guard) = self.minted.lock() {
            *guard = Some(Minted {
                value: value.clone(),
                patterns: patterns.clone(),
                until: Instant::now() + usable.unwrap_or(MINTED_REUSE),
            });
        }
        Ok((value, patterns))
    }
}

pub struct Shared {
    token: String,
    routes: Vec<Route>,
    max_request_body: u64,
    audit: Option<Mutex<mpsc::Sender<AuditEvent>>>,
    client: UpstreamClient,
}

impl Shared {
    pub fn new(
        token: String,
        routes: Vec<Route>,
        max_request_body: u64,
        audit: Option<mpsc::Sender<AuditEvent>>,
        tls: rustls::ClientConfig,
    ) -> Arc<Shared> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Arc::new(Shared {
            token,
            routes,
            max_request_body,
            audit: audit.map(Mutex::new),
            client,
        })
    }

    fn audit(
        &self,
        route: &Route,
        method: &str,
        path: &str,
        status: StatusCode,
        decision: Decision,
    ) {
        if let Some(tx) = &self.audit
            && let Ok(tx) = tx.lock()
        {
            let _ = tx.send(AuditEvent {
                credential: route.name.clone(),
                method: method.to_string(),
                host: route.origin.host.clone(),
                path: path.to_string(),
                status: status.as_u16(),
                decision,
            });
        }
    }
}

/// Accept connections until `stopped` fires.
pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn plain(status: StatusCode, text: &str) -> Response<RespBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(format!("agentcred broker: {text}\n")))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    // /<token>/<route>[/rest]
    let path = req.uri().path();
    let after = path.strip_prefix('/').unwrap_or(path);
    let (token, rest) = after.split_once('/').unwrap_or((after, ""));
    let token_ok: bool = token.as_bytes().ct_eq(shared.token.as_bytes()).into();
    if !token_ok {
        return Ok(plain(StatusCode::UNAUTHORIZED, "wrong session token"));
    }
    let (name, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(route) = shared.routes.iter().find(|r| r.name == name) else {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "no such credential in this session",
        ));
    };
    let method = req.method().to_string();
    let upstream_path = {
        let joined = format!("{}{tail}", route.origin.prefix);
        if joined.is_empty() {
            "/".to_string()
        } else {
            joined
        }
    };
    let shared_ref = &shared;
    let refuse = |status: StatusCode, why: &str| {
        shared_ref.audit(route, &method, &upstream_path, status, Decision::Blocked);
        Ok(plain(status, why))
    };
    let query = req.uri().query().map(str::to_string);
    let placeholder_in_url = Search::contains(&route.placeholder, tail.as_bytes())
        || Search::contains(&route.placeholder, &percent_decode(tail.as_bytes()))
        || query.as_deref().is_some_and(|q| {
            Search::contains(&route.placeholder, q.as_bytes())
                || Search::contains(&route.placeholder, &percent_decode(q.as_bytes()))
        });
    if placeholder_in_url {
        return refuse(
            StatusCode::FORBIDDEN,
            "the request carries the placeholder in its URL; the key is never put into a request",
        );
    }
    if let Some(length) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > shared.max_request_body
    {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        );
    }
    let target = match &query {
        Some(q) => format!(
            "{}://{}{upstream_path}?{q}",
            route.origin.scheme, route.origin.authority
        ),
        None => format!(
            "{}://{}{upstream_path}",
            route.origin.scheme, route.origin.authority
        ),
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return refuse(StatusCode::BAD_REQUEST, "the path cannot be forwarded");
    };
    let (secret, scrub_patterns) = match route.secret().await {
        Ok(found) => found,
        Err(why) => {
            shared.audit(
                route,
                &method,
                &upstream_path,
                StatusCode::BAD_GATEWAY,
                Decision::Brokered,
            );
            return Ok(plain(
                StatusCode::BAD_GATEWAY,
                &format!("cannot get the credential: {why}"),
            ));
        }
    };
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers.remove(&route.header_name);
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    let value = route.header.value(secret.expose_secret());
    let Ok(mut credential) = HeaderValue::from_bytes(&value) else {
        return refuse(
            StatusCode::BAD_GATEWAY,
            "the credential cannot be sent in a header (control characters)",
        );
    };
    drop(value);
    credential.set_sensitive(true);
    headers.insert(route.header_name.clone(), credential);
    let verdict = Arc::new(Verdict::default());
    let body = ScanBody::new(
        body,
        route.placeholder.clone(),
        shared.max_request_body,
        verdict.clone(),
    );
    let mut upstream_req = Request::new(body);
    *upstream_req.method_mut() = parts.method;
    *upstream_req.uri_mut() = uri;
    *upstream_req.headers_mut() = headers;
    let outcome = shared.client.request(upstream_req).await;
    match verdict.get() {
        scrub::PLACEHOLDER => {
            return refuse(
                StatusCode::FORBIDDEN,
                "the request body carries the placeholder; the key is never put into a request",
            );
        }
        scrub::TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            );
        }
        _ => {}
    }
    let response = match outcome {
        Ok(response) => response,
        Err(e) => {
            let status = StatusCode::BAD_GATEWAY;
            shared.audit(route, &method, &upstream_path, status, Decision::Brokered);
            let why = if e.is_connect() {
                format!("cannot connect to {}", route.origin.authority)
            } else {
                format!("the connection to {} failed", route.origin.authority)
            };
            return Ok(plain(status, &why));
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The broker asked for `identity`; a compressed body anyway cannot be searched for the
    // key, so it is not passed on (fail closed rather than forward what was not checked).
    if scrub_patterns.is_some()
        && let Some(encoding) = parts.headers.get(header::CONTENT_ENCODING)
        && !encoding.as_bytes().eq_ignore_ascii_case(b"identity")
    {
        let shown = crate::util::output::escape(&String::from_utf8_lossy(encoding.as_bytes()));
        return refuse(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the upstream sent a compressed response (Content-Encoding {shown}) that the broker cannot check for the key; not passed on"
            ),
        );
    }
    if let Some(patterns) = &scrub_patterns {
        for value in parts.headers.values_mut() {
            if let Some(clean) = Search::scrub_all(patterns, value.as_bytes())
                && let Ok(clean) = HeaderValue::from_bytes(&clean)
            {
                *value = clean;
            }
        }
    }
    shared.audit(
        route,
        &method,
        &upstream_path,
        parts.status,
        Decision::Brokered,
    );
    let body = ScrubBody::new(body, scrub_patterns).boxed();
    Ok(Response::from_parts(parts, body))
}

/// `%XX` decoded (and `+` as a space): so that a query cannot hide the placeholder by
/// encoding characters that need no encoding.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'%' if i + 2 < text.len() => match (hex(text[i + 1]), hex(text[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}
