//! The device authorization grant (RFC 8628), for `agentcred login NAME --device` on a
//! machine without a browser: ask the device authorization endpoint for a user code, print
//! it with the verification URI, and poll the token endpoint at the server's interval
//! (slower after `slow_down`) until the person has approved, denied, or the code expired.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

use super::*;

/// The poll interval when the server names none (RFC 8628 section 3.2).
const DEFAULT_INTERVAL: u64 = 5;
/// `slow_down` adds this to the interval (RFC 8628 section 3.5).
const SLOW_DOWN: u64 = 5;
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Run the grant for `client`: a token with a refresh token, or an error saying why not.
pub(super) fn obtain(client: &Client, timeout: Duration) -> Result<Token> {
    let name = client.name;
    let config = client.config;
    let err = |detail: String| Error::OAuth {
        name: name.to_string(),
        detail,
    };
    let Some(url) = config.device_auth_url.as_deref() else {
        return Err(Error::Usage(format!(
            "{name} has no device authorization URL: set it with `agentcred add {name} --force --device-auth-url URL ...`"
        )));
    };
    check_token_url(url)?;
    let endpoint = format!("the device authorization endpoint {}", escape(url));
    let loopback = url
        .parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.host().map(http::is_loopback))
        .unwrap_or(false);
    let agent = http::agent(loopback, REQUEST_TIMEOUT);
    let mut body = Zeroizing::new(String::new());
    if let Some(scope) = &config.scope {
        body.push_str(&format!("scope={}&", *form_encode(scope.as_bytes())));
    }
    let id = form_encode(config.client_id.as_bytes());
    let mut post = agent
        .post(url)
        .header("Accept", "application/json")
        .content_type("application/x-www-form-urlencoded");
    match (client.client_secret, config.auth_method) {
        (Some(secret), AuthMethod::Basic) => {
            let pair = Zeroizing::new(format!("{}:{}", *id, *form_encode(secret)));
            let header = Zeroizing::new(format!("Basic {}", BASE64.encode(pair.as_bytes())));
            post = post.header("Authorization", header.as_str());
        }
        (Some(secret), AuthMethod::Post) => body.push_str(&format!(
            "client_id={}&client_secret={}",
            *id,
            *form_encode(secret)
        )),
        (None, _) => body.push_str(&format!("client_id={}", *id)),
    }
    let mut response = post
        .send(body.as_bytes())
        .map_err(|e| err(describe_transport(&endpoint, e)))?;
    let status = response.status();
    let answer = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(|e| err(describe_transport(&endpoint, e)))?;
    let json: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(&answer) {
        Ok(json) => json,
        Err(_) => {
            return Err(err(format!(
                "{endpoint} answered HTTP {} but not with JSON",
                status.as_u16()
            )));
        }
    };
    if !status.is_success() {
        let why = server_error(&json, &client.secrets())
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(err(format!(
            "{endpoint} answered HTTP {}{why}",
            status.as_u16()
        )));
    }
    let text = |key: &str| match json.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let (Some(device_code), Some(user_code), Some(verification_uri)) = (
        text("device_code").map(Zeroizing::new),
        text("user_code"),
        text("verification_uri"),
    ) else {
        return Err(err(format!(
            "{endpoint} answered without device_code, user_code and verification_uri"
        )));
    };
    let expires_in = json
        .get("expires_in")
        .and_then(lifetime_secs)
        .unwrap_or(600)
        .max(1);
    let mut interval = json
        .get("interval")
        .and_then(lifetime_secs)
        .map_or(DEFAULT_INTERVAL, |s| s.max(1) as u64);
    eprintln!(
        "To sign in to {name}, open {} and enter the code {}",
        escape(&verification_uri),
        escape(&user_code)
    );
    if let Some(complete) = text("verification_uri_complete") {
        eprintln!("  (or open {} directly)", escape(&complete));
    }
    let expires = Duration::from_secs(expires_in as u64);
    let deadline = Instant::now() + expires.min(timeout);
    eprintln!(
        "Waiting up to {} s for the sign-in ...",
        expires.min(timeout).as_secs()
    );
    loop {
        std::thread::sleep(Duration::from_secs(interval));
        if Instant::now() >= deadline {
            return Err(err(format!(
                "nobody approved the code {} before it expired; run `agentcred login {name} --device` again",
                escape(&user_code)
            )));
        }
        let mut poll = Zeroizing::new(format!(
            "grant_type={}&device_code=",
            form_encode(GRANT_TYPE.as_bytes()).as_str()
        ));
        poll.push_str(&form_encode(device_code.as_bytes()));
        match request_inner(client, poll) {
            Ok(token) => return Ok(token),
            Err(Failure::Pending) => {}
            Err(Failure::SlowDown) => interval += SLOW_DOWN,
            Err(Failure::Client(detail)) => {
                return Err(Error::OAuthClientRejected {
                    name: name.to_string(),
                    detail,
                    sign_in: true,
                });
            }
            Err(Failure::Grant(detail) | Failure::Other(detail)) => return Err(err(detail)),
        }
    }
}
