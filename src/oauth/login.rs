//! `agentcred login NAME`: the authorization code grant with PKCE (RFC 6749 section 4.1,
//! RFC 7636 S256) and a loopback redirect (RFC 8252 section 7.3), or the device
//! authorization grant (RFC 8628, in `device`).
//!
//! The listener is on 127.0.0.1 only (an ephemeral port unless one is configured), answers
//! one redirect that carries this login's `state`, and gives up after a bounded wait. The
//! code is exchanged once; the refresh token obtained becomes the credential's value
//! (`refresh::store_login`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::crypto::identity::Identity;
use crate::error::{Error, Result};
use crate::model::credential::CredentialName;
use crate::store::Store;

use super::refresh::Stored;
use super::*;

/// The path the authorization server redirects to.
pub const CALLBACK_PATH: &str = "/callback";
/// The largest redirect request read.
const MAX_REQUEST: usize = 16 * 1024;

/// How `login` runs.
pub struct Options {
    /// Print the URL only; never start a browser.
    pub no_browser: bool,
    /// The device authorization grant instead of a browser redirect.
    pub device: bool,
    /// How long to wait for the person.
    pub timeout: Duration,
    /// A fixed redirect port (overrides the credential's).
    pub port: Option<u16>,
    /// Who logs in, for the credential's history.
    pub by: String,
}

/// Sign in and store the refresh token as `name`'s value.
pub fn login(
    store: &Store,
    identity: &Identity,
    name: &CredentialName,
    options: &Options,
) -> Result<()> {
    let (entry, value) = {
        let reader = store.reader(identity)?;
        let entry = reader.entry(name)?;
        let value = reader.value(name, &entry)?;
        (entry, value)
    };
    let config = match entry.oauth2.as_deref() {
        Some(config) if config.grant == Grant::AuthorizationCode => config,
        _ => {
            return Err(Error::Usage(format!(
                "{name} is not an oauth2 credential with --grant authorization_code; `agentcred login` signs in to those only"
            )));
        }
    };
    let stored = Stored::parse(name, value.expose_secret())?;
    let client = Client {
        name,
        config,
        secret: &value,
        client_secret: stored.client_secret.as_deref().map(str::as_bytes),
        refresh_token: None,
    };
    let (token, how) = if options.device {
        (super::device::obtain(&client, options.timeout)?, "device")
    } else {
        (browser(&client, options)?, "browser")
    };
    super::refresh::store_login(
        store,
        identity,
        name,
        config,
        stored.client_secret.clone(),
        token,
        crate::manifest::Event {
            at: crate::model::rotation::now(),
            action: "logged in".into(),
            by: options.by.as_str().into(),
            reason: Some(format!("authorization code ({how})")),
        },
    )
}

fn oauth_error(name: &CredentialName, detail: impl Into<String>) -> Error {
    Error::OAuth {
        name: name.to_string(),
        detail: detail.into(),
    }
}

/// `len` random bytes, base64url without padding.
pub(super) fn random_text(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        Error::io(
            "cannot get random bytes",
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(BASE64URL.encode(&bytes))
}

/// The PKCE S256 challenge of a verifier (RFC 7636 section 4.2).
pub fn challenge(verifier: &str) -> String {
    BASE64URL.encode(Sha256::digest(verifier.as_bytes()))
}

fn browser(client: &Client, options: &Options) -> Result<Token> {
    let name = client.name;
    let config = client.config;
    let Some(auth_url) = config.auth_url.as_deref() else {
        return Err(Error::Usage(format!(
            "{name} has no authorization URL: set it with `agentcred add {name} --force --auth-url URL ...`, or use `login --device`"
        )));
    };
    let port = options.port.or(config.redirect_port).unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        oauth_error(
            name,
            format!("cannot listen for the redirect on 127.0.0.1:{port}: {e}"),
        )
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the listener's port", e))?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    // RFC 7636 section 4.1: 32 random bytes give a 43-character verifier.
    let verifier = Zeroizing::new(random_text(32)?);
    let state = random_text(16)?;
    let mut url = String::from(auth_url);
    url.push(if auth_url.contains('?') { '&' } else { '?' });
    url.push_str("response_type=code&client_id=");
    url.push_str(&form_encode(config.client_id.as_bytes()));
    url.push_str("&redirect_uri=");
    url.push_str(&form_encode(redirect_uri.as_bytes()));
    if let Some(scope) = &config.scope {
        url.push_str("&scope=");
        url.push_str(&form_encode(scope.as_bytes()));
    }
    url.push_str("&state=");
    url.push_str(&state);
    url.push_str("&code_challenge=");
    url.push_str(&challenge(&verifier));
    url.push_str("&code_challenge_method=S256");
    eprintln!("To sign in to {name}, open this URL in a browser:\n\n  {url}\n");
    if !options.no_browser {
        open_browser(&url);
    }
    eprintln!(
        "Waiting up to {} s for the sign-in to finish (the redirect to {redirect_uri}) ...",
        options.timeout.as_secs()
    );
    let code = Zeroizing::new(wait_for_code(
        name,
        &listener,
        &state,
        Instant::now() + options.timeout,
    )?);
    drop(listener);
    let mut body = Zeroizing::new(String::from("grant_type=authorization_code&code="));
    body.push_str(&form_encode(code.as_bytes()));
    body.push_str("&redirect_uri=");
    body.push_str(&form_encode(redirect_uri.as_bytes()));
    body.push_str("&code_verifier=");
    body.push_str(&verifier);
    request(client, body).map_err(|e| match e {
        // A code is single-use: a refused one means this login failed, not the grant.
        Error::OAuthLoginNeeded { name, detail } => Error::OAuth {
            name,
            detail: format!("the code was not accepted: {detail}"),
        },
        e => e,
    })
}

/// Start the desktop's browser on `url` without waiting for it (and say so if there is
/// none); the URL is printed either way.
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return;
        }
        "xdg-open"
    };
    match Command::new(program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        // Reaped in the background: the browser may outlive this process or never exit.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(_) => eprintln!("note: could not start {program}; open the URL yourself"),
    }
}

/// Why a redirect was not the one awaited.
enum Redirect {
    Code(String),
    /// Not for us (another path, a favicon): answered 404 and ignored.
    Ignore,
}

/// Accept connections until one brings this login's redirect, or the deadline passes.
fn wait_for_code(
    name: &CredentialName,
    listener: &TcpListener,
    state: &str,
    deadline: Instant,
) -> Result<String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot set up the redirect listener", e))?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => match answer(name, stream, state)? {
                Redirect::Code(code) => return Ok(code),
                Redirect::Ignore => continue,
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(oauth_error(
                        name,
                        "nobody finished signing in before the wait ran out; run `agentcred login` again (--timeout SECS waits longer; --device signs in from another machine)",
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(Error::io("cannot accept the redirect", e)),
        }
    }
}

/// Read one request and answer it.
fn answer(name: &CredentialName, mut stream: TcpStream, state: &str) -> Result<Redirect> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < MAX_REQUEST {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let line = request
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or("");
    let target = match line.trim_end().split(' ').collect::<Vec<_>>()[..] {
        ["GET", target, _] => target,
        _ => {
            respond(&mut stream, 400, "Not a sign-in redirect.");
            return Ok(Redirect::Ignore);
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        respond(&mut stream, 404, "Not found.");
        return Ok(Redirect::Ignore);
    }
    let params = parse_query(query);
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if get("state") != Some(state) {
        respond(
            &mut stream,
            400,
            "This redirect does not belong to the sign-in agentcred is waiting for. Nothing was stored.",
        );
        return Err(oauth_error(
            name,
            "the redirect's state did not match this login (a redirect from another sign-in, or a forged one); nothing was stored: run `agentcred login` again",
        ));
    }
    if let Some(error) = get("error") {
        respond(
            &mut stream,
            400,
            "The sign-in was refused. agentcred stored nothing; see the terminal.",
        );
        let description = get("error_description")
            .map(|d| format!(": \"{}\"", escape(&truncate(d, MAX_ERROR_DESCRIPTION))))
            .unwrap_or_default();
        return Err(oauth_error(
            name,
            format!(
                "the authorization server answered {}{description}",
                escape(&truncate(error, MAX_ERROR_CODE))
            ),
        ));
    }
    match get("code") {
        Some(code) if !code.is_empty() => {
            respond(
                &mut stream,
                200,
                "Signed in. agentcred has what it needs; you can close this tab.",
            );
            Ok(Redirect::Code(code.to_string()))
        }
        _ => {
            respond(&mut stream, 400, "The redirect carries no code.");
            Err(oauth_error(
                name,
                "the redirect carried neither a code nor an error; run `agentcred login` again",
            ))
        }
    }
}

fn respond(stream: &mut TcpStream, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>agentcred</title></head><body><p>{text}</p></body></html>\n"
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// `a=1&b=x+y%21` as pairs, percent-decoded (invalid UTF-8 replaced).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn queries_are_percent_decoded() {
        assert_eq!(
            parse_query("code=a%2Fb+c&state=xy&&error&bad=%zz%4"),
            vec![
                ("code".into(), "a/b c".into()),
                ("state".into(), "xy".into()),
                ("error".into(), "".into()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn decoding_inverts_form_encoding_and_takes_any_junk() {
        for text in ["", "a b", "%", "%%41", "é€\u{10FFFF}", "&=+?#", "\0\n\r"] {
            assert_eq!(decode(&form_encode(text.as_bytes())), text);
            let _ = parse_query(text);
        }
        for byte in 0..=255u8 {
            let text = format!("%{byte:02x}x%{byte:X}");
            let _ = parse_query(&text);
        }
    }
}
