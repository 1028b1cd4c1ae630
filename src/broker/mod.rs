//! The broker (CONTRACT section 10): a reverse proxy on 127.0.0.1 that puts a credential on
//! the wire toward its upstream only, so the program it serves (an LLM agent) holds a
//! placeholder instead of the key.
//!
//! # Using it
//!
//! ```text
//! let broker = Broker::start(Config {
//!     routes: vec![RouteConfig { name, upstream, secret: SecretSource::Static(value), scrub_also: vec![] }],
//!     max_request_body: DEFAULT_MAX_REQUEST_BODY,
//!     audit: Some(Box::new(|event: AuditEvent| { /* append to the audit log */ })),
//! })?;
//! let route = broker.route("openai-api-key").unwrap();
//! // hand the program route.placeholder (in its key variable) and route.base_url
//! // (http://127.0.0.1:PORT/<session token>/<name>) in its base-URL variable
//! let reply = broker.send("openai-api-key", "GET", "/models", &[], b"", 1 << 20)?; // one request (MCP)
//! broker.stop(); // also on drop; waits until every audit event was handed over
//! ```
//!
//! From manifest entries (what `exec --broker` does, and what MCP's `http_request` can
//! reuse): [`session::split`] the selected `(name, entry, value)` triples, then
//! [`session::Session::start`]; `session.broker()` is the [`Broker`] above. An `oauth2`
//! credential there becomes a [`SecretSource::Minted`] route whose token is minted on
//! first use and again when it runs out.
//!
//! `start` binds 127.0.0.1:0 and serves on a thread of its own (a tokio current-thread
//! runtime), so callers stay synchronous. Each route gets a random placeholder shaped like
//! a key of its kind (a known prefix such as `sk-`, then `agentcred-` and random letters,
//! as long as the real value) and a base URL under a random session token.
//!
//! # What a request goes through ([`proxy`])
//!
//! 1. The session token (first path segment) is compared in constant time: 401 otherwise.
//!    The route is the second segment (404 if unknown); the rest of the path goes after
//!    the upstream's path prefix, with the query.
//! 2. The placeholder (or a base64 or URL-encoded form of it) in the path or query: 403,
//!    audited `blocked`. A declared `Content-Length` over the cap: 413.
//! 3. Hop-by-hop headers, `Host`, and any client-sent copy of the credential's header are
//!    dropped; the real header is set; `Accept-Encoding: identity` is asked for, so the
//!    response can be searched.
//! 4. The request body streams to the upstream while it is searched for the placeholder
//!    and counted. On a hit (also across chunk boundaries) or past the cap, the body ends
//!    with an error: hyper aborts the upstream request before its end, so the upstream
//!    never receives a complete request (and closes that connection), and the client gets
//!    403 (or 413). Bodies are not buffered: a large upload starts flowing at once.
//! 5. No redirect is followed (a 3xx goes back to the client). Response headers and body
//!    are searched for the real value (every encoded form [`crate::mask`] knows), which
//!    is overwritten by a filler of the same length; the body streams through as it comes
//!    (SSE events are not held back, except the few bytes that could start a value).
//! 6. One audit event per request (credential, method, host, path without query,
//!    status, decision), handed to the callback on a thread of its own so that a slow
//!    disk never delays a request. Never headers or bodies.
//!
//! A response with a `Content-Encoding` the upstream chose anyway cannot be searched; it
//! is passed on as it is.
//!
//! Upstream connections are HTTP/1.1 with keep-alive (a connection pool), TLS by rustls
//! (ring) with the built-in roots plus `SSL_CERT_FILE` ([`tls`]). Proxy variables
//! (`HTTPS_PROXY`) are not used for upstreams.

mod proxy;
pub mod scrub;
pub mod session;
pub mod tls;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice};

use crate::error::{Error, Result};
use crate::mask::Patterns;
use crate::model::upstream::Upstream;

/// The request body cap unless configured: large enough for images sent as base64.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 64 * 1024 * 1024;

/// How long a minted secret (an OAuth access token) is reused before the source is asked
/// again, when the source does not say.
const MINTED_REUSE: Duration = Duration::from_secs(30);

/// What a [`SecretSource::Minted`] function returns: the secret, and how long it may be
/// reused (`None`: ask again after 30 s).
pub type MintedSecret = (SecretSlice<u8>, Option<Duration>);

/// Where a route's secret comes from.
#[derive(Clone)]
pub enum SecretSource {
    /// The value itself (an API key).
    Static(SecretSlice<u8>),
    /// A function that returns a valid secret (an OAuth access token) and how long it may
    /// be used, called off the proxy's thread when the last one ran out. Its error is one
    /// line without a secret; the client gets 502.
    Minted(Arc<dyn Fn() -> std::result::Result<MintedSecret, String> + Send + Sync>),
}

/// One credential the broker serves.
pub struct RouteConfig {
    /// The credential's name: the path segment after the session token.
    pub name: String,
    pub upstream: Upstream,
    pub secret: SecretSource,
    /// Other values to scrub from responses (an OAuth client secret).
    pub scrub_also: Vec<SecretSlice<u8>>,
}

/// A proxied request, for the audit log. Never headers or bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub credential: String,
    pub method: String,
    pub host: String,
    /// The upstream path, without the query.
    pub path: String,
    pub status: u16,
    pub decision: Decision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Brokered,
    Blocked,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Brokered => "brokered",
            Decision::Blocked => "blocked",
        }
    }
}

pub type AuditFn = Box<dyn FnMut(AuditEvent) + Send>;

pub struct Config {
    pub routes: Vec<RouteConfig>,
    pub max_request_body: u64,
    pub audit: Option<AuditFn>,
}

/// What a program is handed for one route.
pub struct RouteInfo {
    pub name: String,
    /// Stands in for the key in the program's environment. Not a secret, but the broker
    /// refuses requests that carry it in a query or body.
    pub placeholder: String,
    /// `http://127.0.0.1:PORT/<session token>/<name>`.
    pub base_url: String,
}

/// A response to [`Broker::send`]: scrubbed, and cut at the cap.
#[allow(dead_code)] // the API of MCP's http_request (issue 18)
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than the cap and was cut.
    pub truncated: bool,
}

/// A running broker. Stops when dropped.
pub struct Broker {
    port: u16,
    routes: Vec<RouteInfo>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    auditor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Random letters and digits (rejection sampling, so each of the 62 is equally likely).
pub fn random_alphanumeric(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::getrandom(&mut buf)
            .map_err(|e| Error::io("cannot get random bytes", std::io::Error::other(e)))?;
        for &b in &buf {
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// A placeholder for `value`: its known key prefix, `agentcred-`, then random letters to
/// the value's length (at least 32 random ones).
pub fn placeholder_for(value: Option<&[u8]>) -> Result<String> {
    let prefix = value.map_or("", crate::model::provider::key_prefix);
    let head = format!("{prefix}agentcred-");
    let len = value.map_or(0, <[u8]>::len).clamp(head.len() + 32, 256);
    Ok(format!("{head}{}", random_alphanumeric(len - head.len())?))
}

fn compile(values: &[&[u8]]) -> Result<Option<Arc<Patterns>>> {
    let built = Patterns::build(values.iter().map(|v| (String::new(), *v)))?;
    Ok(built.patterns.map(Arc::new))
}

impl Broker {
    /// Bind 127.0.0.1:0 and serve `config.routes` until [`Broker::stop`] (or drop).
    pub fn start(config: Config) -> Result<Broker> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|e| Error::io("cannot listen on 127.0.0.1 for the broker", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot set up the broker's socket", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("cannot set up the broker's socket", e))?
            .port();
        let token = random_alphanumeric(32)?;
        let tls = tls::client_config()?;
        let mut infos = Vec::with_capacity(config.routes.len());
        let mut routes = Vec::with_capacity(config.routes.len());
        for route in config.routes {
            let origin = route.upstream.origin()?;
            let header = route.upstream.header_template()?;
            let value = match &route.secret {
                SecretSource::Static(v) => Some(v.expose_secret()),
                SecretSource::Minted(_) => None,
            };
            let placeholder = placeholder_for(value)?;
            let placeholder_patterns = compile(&[placeholder.as_bytes()])?
                .ok_or_else(|| Error::Usage("the placeholder is too short".into()))?;
            let mut scrub: Vec<&[u8]> =
                route.scrub_also.iter().map(|s| s.expose_secret()).collect();
            scrub.extend(value);
            let scrub_static = compile(&scrub)?;
            infos.push(RouteInfo {
                name: route.name.clone(),
                placeholder: placeholder.clone(),
                base_url: format!("http://127.0.0.1:{port}/{token}/{}", route.name),
            });
            routes.push(proxy::Route::new(
                route.name,
                origin,
                header,
                route.secret,
                route.scrub_also,
                placeholder_patterns,
                scrub_static,
            ));
        }
        let (audit_tx, audit_rx) = mpsc::channel::<AuditEvent>();
        let auditor = config.audit.map(|mut callback| {
            std::thread::spawn(move || {
                for event in audit_rx {
                    callback(event);
                }
            })
        });
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the broker", e))?;
        let shared = proxy::Shared::new(
            token,
            routes,
            config.max_request_body,
            auditor.is_some().then_some(audit_tx),
            tls,
        );
        let server = std::thread::Builder::new()
            .name("agentcred-broker".into())
            .spawn(move || runtime.block_on(proxy::serve(listener, shared, stopped)))
            .map_err(|e| Error::io("cannot start the broker", e))?;
        Ok(Broker {
            port,
            routes: infos,
            shutdown: Some(shutdown),
            server: Some(server),
            auditor,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn routes(&self) -> &[RouteInfo] {
        &self.routes
    }

    #[allow(dead_code)] // the API of MCP's http_request (issue 18)
    pub fn route(&self, name: &str) -> Option<&RouteInfo> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Send ONE request through a route, as a program would (the same checks, scrubbing
    /// and audit), and read at most `max_response` bytes of the answer: for MCP's
    /// `http_request` tool. `path` is relative to the upstream's base (`/models?x=1`).
    /// Blocking; call it off any async runtime.
    #[allow(dead_code)] // the API of MCP's http_request (issue 18)
    pub fn send(
        &self,
        route: &str,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
        max_response: usize,
    ) -> Result<Reply> {
        use std::io::Read;
        let info = self
            .route(route)
            .ok_or_else(|| Error::CredentialNotFound { name: route.into() })?;
        let path = if path.starts_with('/') || path.is_empty() {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let url = format!("{}{path}", info.base_url);
        let agent = crate::util::http::agent(true, Duration::from_secs(300));
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(body.to_vec())
            .map_err(|e| Error::Usage(format!("invalid request: {e}")))?;
        let response = agent
            .run(request)
            .map_err(|e| Error::Usage(format!("the broker did not answer: {e}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        let limit = u64::try_from(max_response)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        response
            .into_body()
            .into_reader()
            .take(limit)
            .read_to_end(&mut body)
            .map_err(|e| Error::io("cannot read the upstream's answer", e))?;
        let truncated = body.len() > max_response;
        body.truncate(max_response);
        Ok(Reply {
            status,
            headers,
            body,
            truncated,
        })
    }

    /// Stop serving (open streams are cut) and wait until every audit event has been
    /// handed to the callback.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        if let Some(auditor) = self.auditor.take() {
            let _ = auditor.join();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

#[cfg(test)]
mod tests;
