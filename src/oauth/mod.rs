//! OAuth 2.0 access tokens for `oauth2` credentials: what a program receives is an access
//! token, never the stored value. The value is a client secret (client credentials,
//! RFC 6749 section 4.4), a service-account key (`jwt`, RFC 7523), or the refresh token of
//! a person's sign-in (`login`, `device`, and `refresh`, which stores a rotated one before
//! the access token is used).
//!
//! Minting costs a network round trip and the token endpoint may rate-limit, so tokens are
//! cached per credential in `<store>/cache/oauth2/NAME.age`: age-encrypted to the user's own
//! identity (the cache is machine-local and never shared, so no other recipient needs it),
//! 0600 in a 0700 directory. Inside, an HMAC keyed with the client secret covers the store,
//! the credential's name, its endpoint configuration and the token, so a changed
//! configuration, a rotated secret, or a file planted with the public recipient is never
//! used: it is simply a cache miss. A cached token is used while more than
//! max(60 s, 10% of its lifetime) is left ([`is_fresh`]), so a program always starts with
//! at least a minute (or a tenth of the lifetime) to use it.
//!
//! Concurrent processes that need a refresh make one request: each takes an exclusive lock
//! on `cache/oauth2/NAME.lock` (waiting at most [`LOCK_WAIT`]), looks at the cache again,
//! and only then asks the endpoint. No error message ever holds the secret or a token.

mod cache;
pub mod device;
pub mod jwt;
pub mod login;
pub mod refresh;

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

use crate::crypto::identity::Identity;
use crate::error::{Error, Result};
use crate::manifest::Entry;
use crate::model::credential::{CredentialName, Kind};
use crate::store::Store;
use crate::util;
use crate::util::http;
use crate::util::output::{self, escape};

pub use crate::model::settings::{AuthMethod, ClientConfig, Grant, check_token_url};
pub use cache::TokenCache;
use cache::{lock_file, token_file};

/// The whole token request, from connecting to the last byte of the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for another process refreshing the same credential's token: its
/// request's own timeout, with room to spare.
pub const LOCK_WAIT: Duration = Duration::from_secs(20);
/// The least time a cached token must have left to be used.
pub const MIN_LEFT: SignedDuration = SignedDuration::from_secs(60);
/// The largest answer read from a token endpoint.
const MAX_RESPONSE: u64 = 1024 * 1024;
/// Longer lifetimes are read as this (no overflow, and a token is refreshed at least yearly).
const MAX_LIFETIME_SECS: i64 = 366 * 24 * 3600;
/// How much of a server's `error` and `error_description` is shown.
const MAX_ERROR_CODE: usize = 64;
const MAX_ERROR_DESCRIPTION: usize = 200;

const CACHE_DIR: &str = "cache";
const TOKENS_DIR: &str = "oauth2";
const TOKEN_MAGIC: &str = "agentcred-oauth2-token/v1";
const TOKEN_MAC_DOMAIN: &[u8] = b"agentcred/oauth2-token/v1";

/// Whether a token obtained at `obtained_at` and expiring at `expires_at` may still be
/// handed out at `now`: more than max(60 s, 10% of its lifetime) must be left.
pub fn is_fresh(obtained_at: Timestamp, expires_at: Timestamp, now: Timestamp) -> bool {
    let lifetime = expires_at.duration_since(obtained_at);
    let margin = MIN_LEFT.max(lifetime / 10);
    expires_at.duration_since(now) > margin
}

/// One selected credential and its value, as `exec` reads them.
pub type Selected = (CredentialName, Entry, SecretSlice<u8>);

/// Replace the value of every `oauth2` credential (its client secret) with an access
/// token, from the cache or freshly minted; other credentials pass through unchanged.
/// Called with the store unlocked, since a request may take [`REQUEST_TIMEOUT`].
pub fn access_tokens(
    store: &Store,
    identity: &Identity,
    store_id: &str,
    selected: Vec<Selected>,
    verbose: bool,
) -> Result<Vec<Selected>> {
    let cache = TokenCache::new(store, identity, store_id);
    selected
        .into_iter()
        .map(|(name, entry, value)| {
            if entry.kind != Kind::Oauth2 {
                return Ok((name, entry, value));
            }
            let token = access_token(&cache, &name, &entry, &value, verbose)?;
            Ok((name, entry, token))
        })
        .collect()
}

/// A valid access token for one `oauth2` credential whose client secret is `secret`.
pub fn access_token(
    cache: &TokenCache,
    name: &CredentialName,
    entry: &Entry,
    secret: &SecretSlice<u8>,
    verbose: bool,
) -> Result<SecretSlice<u8>> {
    let config = config_of(name, entry)?;
    if config.grant == Grant::AuthorizationCode {
        // The value is a refresh token that the server may rotate: read again under the lock.
        return refresh::access_token(cache, name, config, secret, verbose);
    }
    let client = Client {
        name,
        config,
        secret,
        client_secret: Some(secret.expose_secret()),
        refresh_token: None,
    };
    let say = |text: String| {
        if verbose {
            (cache.say)(&format!("agentcred: {name}: {text}"));
        }
    };
    if let Some(token) = cache.fresh(&client) {
        say(format!(
            "using the cached access token ({})",
            token.expiry()
        ));
        return Ok(token.into_value());
    }
    let _lock = cache.lock(name)?;
    // Another process may have refreshed it while this one waited for the lock.
    if let Some(token) = cache.fresh(&client) {
        say(format!(
            "using the access token another agentcred just obtained ({})",
            token.expiry()
        ));
        return Ok(token.into_value());
    }
    let token = match config.grant {
        Grant::JwtBearer => jwt::request(&client)?,
        _ => request(&client, client_credentials_body(config))?,
    };
    report_type(cache, &client, &token);
    say(format!("obtained a new access token ({})", token.expiry()));
    cache_token(cache, &client, &token, &say);
    Ok(token.into_value())
}

fn report_type(cache: &TokenCache, client: &Client, token: &Token) {
    let name = client.name;
    if let Some(kind) = token.token_type.as_deref()
        && !kind.eq_ignore_ascii_case("bearer")
    {
        (cache.say)(&format!(
            "note: the token endpoint of {name} issued a token of type {}, not Bearer; it is injected as is",
            escape(&truncate(&redact(kind, &client.secrets()), MAX_ERROR_CODE))
        ));
    }
}

/// Keep a token in the cache when it lives long enough to be worth it.
fn cache_token(cache: &TokenCache, client: &Client, token: &Token, say: &dyn Fn(String)) {
    match token.expires_at {
        Some(expires_at) if is_fresh(token.obtained_at, expires_at, token.obtained_at) => {
            if let Err(e) = cache.save(client, token, expires_at) {
                (cache.say)(&format!(
                    "warning: the access token of {} was not cached: {e}",
                    client.name
                ));
            }
        }
        Some(_) => say("not cached: its lifetime is 60 s or less".into()),
        None => say("not cached: the endpoint did not say when it expires".into()),
    }
}

/// A new access token minted with `secret`, neither taken from the cache nor put in it:
/// for `rotate --verify`, which must show that a new client secret works before it is
/// stored (and the cache is keyed with the secret in use).
pub fn mint(
    name: &CredentialName,
    entry: &Entry,
    secret: &SecretSlice<u8>,
) -> Result<SecretSlice<u8>> {
    let config = config_of(name, entry)?;
    let client = Client {
        name,
        config,
        secret,
        client_secret: Some(secret.expose_secret()),
        refresh_token: None,
    };
    match config.grant {
        Grant::ClientCredentials => {
            Ok(request(&client, client_credentials_body(config))?.into_value())
        }
        Grant::JwtBearer => Ok(jwt::request(&client)?.into_value()),
        Grant::AuthorizationCode => Err(Error::Unsupported(format!(
            "{name} holds a refresh token: `agentcred login {name}` replaces it"
        ))),
    }
}

/// What minting needs besides the credential when the server rotates its value (a
/// refresh token, `authorization_code`): the store to write the new one to. Owned and
/// `Send`, for the broker, whose requests run on their own threads.
#[derive(Clone)]
pub struct StoreAccess {
    pub root: std::path::PathBuf,
    pub identity: std::sync::Arc<Identity>,
    pub store_id: String,
}

/// Whether `rotate` may replace this credential's value. A login record is not typed in:
/// the server rotates its refresh token, and a person replaces it by signing in again.
pub fn check_rotatable(name: &CredentialName, entry: &Entry) -> Result<()> {
    match entry.oauth2.as_deref().map(|c| c.grant) {
        Some(Grant::AuthorizationCode) => Err(Error::Usage(format!(
            "{name} holds the refresh token of a person's sign-in, which the server rotates by itself; to replace it, sign in again: run agentcred login {name}"
        ))),
        _ => Ok(()),
    }
}

/// Check a new value for `rotate` before it is stored: a jwt-bearer credential's must be a
/// service-account key that signs, for the account its tokens are minted as.
pub fn check_new_value(
    name: &CredentialName,
    entry: &Entry,
    value: &SecretSlice<u8>,
) -> Result<()> {
    let Some(config) = entry.oauth2.as_deref() else {
        return Ok(());
    };
    if config.grant != Grant::JwtBearer {
        return Ok(());
    }
    let key = jwt::KeyFile::parse(name, value.expose_secret())?;
    if key.client_email != config.client_id {
        return Err(Error::Usage(format!(
            "the new key of {name} is for {}, but {name} mints tokens as {}; to change the account, add it again with --force",
            escape(&key.client_email),
            escape(&config.client_id)
        )));
    }
    jwt::assertion(name, &key, config.scope.as_deref(), &config.token_url, 0).map(drop)
}

/// A new access token for the broker, which keeps it in memory, and how long it may be
/// used: its lifetime less the margin [`is_fresh`] keeps (none when the endpoint gave no
/// lifetime). Client credentials and jwt-bearer are minted and not cached (the broker asks
/// again only when this one runs out); an `authorization_code` token goes through the same
/// refresh as `token` and `exec` (the cache, the lock, a rotated refresh token stored
/// first), so a broker and other agentcred processes never refresh twice.
pub fn mint_for_broker(
    store: Option<&StoreAccess>,
    name: &CredentialName,
    entry: &Entry,
    secret: &SecretSlice<u8>,
) -> Result<(SecretSlice<u8>, Option<std::time::Duration>)> {
    let config = config_of(name, entry)?;
    let client = Client {
        name,
        config,
        secret,
        client_secret: Some(secret.expose_secret()),
        refresh_token: None,
    };
    let token = match config.grant {
        Grant::ClientCredentials => request(&client, client_credentials_body(config))?,
        Grant::JwtBearer => jwt::request(&client)?,
        Grant::AuthorizationCode => {
            let Some(access) = store else {
                return Err(Error::Unsupported(format!(
                    "{name} holds a refresh token, which only a caller with the store can use"
                )));
            };
            let quiet: output::Say = std::rc::Rc::new(|_: &str| {});
            let store = Store::open(&access.root, quiet)?;
            let cache = TokenCache::new(&store, &access.identity, &access.store_id);
            refresh::token(&cache, name, config, secret, false)?
        }
    };
    Ok((
        token.value(),
        token.usable_for(crate::model::rotation::now()),
    ))
}

/// The secrets an `oauth2` credential's stored value holds, for scrubbing and guarding:
/// the value itself, and for `authorization_code` the refresh token and client secret
/// inside its login record (which appear on their own, never as the record).
pub fn secrets_of(entry: &Entry, value: &SecretSlice<u8>) -> Vec<SecretSlice<u8>> {
    let mut secrets = vec![value.clone()];
    let login = entry
        .oauth2
        .as_deref()
        .is_some_and(|c| c.grant == Grant::AuthorizationCode);
    if login && let Ok(stored) = serde_json::from_slice::<refresh::Stored>(value.expose_secret()) {
        for secret in [&stored.refresh_token, &stored.client_secret]
            .into_iter()
            .flatten()
        {
            secrets.push(SecretSlice::from(secret.as_bytes().to_vec()));
        }
    }
    secrets
}

fn config_of<'e>(name: &CredentialName, entry: &'e Entry) -> Result<&'e ClientConfig> {
    entry.oauth2.as_deref().ok_or_else(|| {
        Error::integrity(
            crate::manifest::FILE_NAME,
            format!("credential {name} is of kind oauth2 but has no token endpoint"),
        )
    })
}

/// Remove a credential's cached token (after `rm`). Best effort: a stale file can never be
/// used, since its MAC is keyed with the secret.
pub fn forget(store: &Store, name: &CredentialName) {
    let dir = store.root().join(CACHE_DIR).join(TOKENS_DIR);
    for file in [token_file(name), lock_file(name)] {
        let _ = util::fs::remove_if_exists(&dir.join(file));
    }
}

/// What a token request needs: the credential's name (for messages and the cache), its
/// endpoint, its stored value (which keys the cache's MAC) and the client secret it
/// authenticates with (none for a public client, which sends its id in the body).
struct Client<'a> {
    name: &'a CredentialName,
    config: &'a ClientConfig,
    secret: &'a SecretSlice<u8>,
    client_secret: Option<&'a [u8]>,
    /// The refresh token sent (refresh grant): never echoed in a message either.
    refresh_token: Option<&'a [u8]>,
}

impl Client<'_> {
    /// Everything secret this request holds, for blotting out of what a server says.
    fn secrets(&self) -> Vec<&[u8]> {
        [
            Some(self.secret.expose_secret()),
            self.client_secret,
            self.refresh_token,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// An access token and what is known about its lifetime. Not `Debug`.
pub struct Token {
    access_token: Zeroizing<String>,
    /// A refresh token, when the server issued one (code exchange, refresh rotation).
    refresh_token: Option<Zeroizing<String>>,
    token_type: Option<String>,
    obtained_at: Timestamp,
    expires_at: Option<Timestamp>,
}

impl Token {
    fn into_value(self) -> SecretSlice<u8> {
        self.value()
    }

    fn value(&self) -> SecretSlice<u8> {
        SecretSlice::from(self.access_token.as_bytes().to_vec())
    }

    /// How long from `now` the token may be handed out: until the margin [`is_fresh`]
    /// keeps. `None` when its lifetime is unknown.
    fn usable_for(&self, now: Timestamp) -> Option<std::time::Duration> {
        let expires_at = self.expires_at?;
        let lifetime = expires_at.duration_since(self.obtained_at);
        let last = expires_at - MIN_LEFT.max(lifetime / 10);
        Some(std::time::Duration::try_from(last.duration_since(now)).unwrap_or_default())
    }

    fn expiry(&self) -> String {
        match self.expires_at {
            Some(at) => format!(
                "expires {}",
                output::relative(at, crate::model::rotation::now())
            ),
            None => "no expiry given".into(),
        }
    }
}

/// `application/x-www-form-urlencoded` (the WHATWG serializer): bytes kept are
/// `A-Za-z0-9*-._`, a space is `+`, everything else `%XX`.
fn form_encode(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 3));
    for &b in bytes {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// Why a request failed, before it is put into words.
enum Failure {
    /// The client was refused (`invalid_client`, or HTTP 401): exit 5.
    Client(String),
    /// The grant is gone (`invalid_grant`, RFC 6749 section 5.2): exit 5, log in again.
    Grant(String),
    /// RFC 8628 section 3.5: the person has not answered yet; poll again.
    Pending,
    /// RFC 8628 section 3.5: poll less often.
    SlowDown,
    Other(String),
}

/// The body of a client-credentials request (RFC 6749 section 4.4.2).
fn client_credentials_body(config: &ClientConfig) -> Zeroizing<String> {
    let mut body = Zeroizing::new(String::from("grant_type=client_credentials"));
    for (key, value) in [("scope", &config.scope), ("audience", &config.audience)] {
        if let Some(value) = value {
            body.push_str(&format!("&{key}={}", *form_encode(value.as_bytes())));
        }
    }
    body
}

/// Send one token request with the grant's form `body` (the client's authentication is
/// added here) and read the token response.
fn request(client: &Client, body: Zeroizing<String>) -> Result<Token> {
    request_inner(client, body).map_err(|failure| match failure {
        Failure::Client(detail) => Error::OAuthClientRejected {
            name: client.name.to_string(),
            detail,
            sign_in: client.config.grant == Grant::AuthorizationCode,
        },
        Failure::Grant(detail) => Error::OAuthLoginNeeded {
            name: client.name.to_string(),
            detail,
        },
        Failure::Pending | Failure::SlowDown => Error::OAuth {
            name: client.name.to_string(),
            detail: "the token endpoint answered as if to a device login".into(),
        },
        Failure::Other(detail) => Error::OAuth {
            name: client.name.to_string(),
            detail,
        },
    })
}

fn request_inner(
    client: &Client,
    mut body: Zeroizing<String>,
) -> std::result::Result<Token, Failure> {
    let config = client.config;
    check_token_url(&config.token_url).map_err(|e| Failure::Other(e.to_string()))?;
    let uri: ureq::http::Uri = config
        .token_url
        .parse()
        .map_err(|_| Failure::Other("the token URL is not valid".into()))?;
    let loopback = uri.host().is_some_and(http::is_loopback);
    // No redirects: a token request is never sent anywhere but the configured endpoint.
    let agent = http::agent(loopback, REQUEST_TIMEOUT);
    let id = form_encode(config.client_id.as_bytes());
    let mut post = agent
        .post(&config.token_url)
        .header("Accept", "application/json")
        .content_type("application/x-www-form-urlencoded");
    let secret = client.client_secret.map(form_encode);
    match (&secret, config.auth_method) {
        // A public client (RFC 6749 section 2.1): only its id. A jwt-bearer assertion
        // authenticates by itself and needs no client at all.
        _ if config.grant == Grant::JwtBearer => {}
        (None, _) => body.push_str(&format!("&client_id={}", *id)),
        (Some(secret), AuthMethod::Basic) => {
            let pair = Zeroizing::new(format!("{}:{}", *id, **secret));
            let header = Zeroizing::new(format!("Basic {}", BASE64.encode(pair.as_bytes())));
            post = post.header("Authorization", header.as_str());
        }
        (Some(secret), AuthMethod::Post) => {
            body.push_str(&format!("&client_id={}&client_secret={}", *id, **secret));
        }
    }
    let endpoint = format!("the token endpoint {}", escape(&config.token_url));
    let obtained_at = crate::model::rotation::now();
    let mut response = post
        .send(body.as_bytes())
        .map_err(|e| Failure::Other(describe_transport(&endpoint, e)))?;
    drop(body);
    let status = response.status();
    let answer = Zeroizing::new(
        response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| Failure::Other(describe_transport(&endpoint, e)))?,
    );
    let json: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(&answer).ok();
    let status_text = format!(
        "HTTP {}{}",
        status.as_u16(),
        status
            .canonical_reason()
            .map(|r| format!(" {r}"))
            .unwrap_or_default()
    );
    if !status.is_success() {
        let oauth_error = json
            .as_ref()
            .and_then(|j| server_error(j, &client.secrets()));
        let detail = format!(
            "{endpoint} answered {status_text}{}",
            oauth_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        // A service-account key refused (revoked, deleted, not the account's) comes back
        // as invalid_grant (RFC 7523 section 3.1): the client's own credential, as with
        // invalid_client.
        let refused = status.as_u16() == 401
            || oauth_error.as_ref().is_some_and(|e| {
                e.code == "invalid_client"
                    || (e.code == "invalid_grant" && config.grant == Grant::JwtBearer)
            });
        let grant_gone = oauth_error
            .as_ref()
            .is_some_and(|e| e.code == "invalid_grant")
            && config.grant == Grant::AuthorizationCode;
        match oauth_error.as_ref().map(|e| e.code.as_str()) {
            Some("authorization_pending") => return Err(Failure::Pending),
            Some("slow_down") => return Err(Failure::SlowDown),
            _ => {}
        }
        return Err(if status.is_redirection() {
            Failure::Other(format!(
                "{detail}; token requests do not follow redirects: set the final URL with `agentcred add NAME --force --token-url URL ...`"
            ))
        } else if grant_gone {
            Failure::Grant(detail)
        } else if refused {
            Failure::Client(detail)
        } else {
            Failure::Other(detail)
        });
    }
    let Some(mut json) = json else {
        return Err(Failure::Other(format!(
            "{endpoint} answered {status_text} but not with a JSON token response"
        )));
    };
    let access_token = match json.remove("access_token") {
        Some(serde_json::Value::String(token)) if !token.is_empty() => Zeroizing::new(token),
        _ => {
            let why = server_error(&json, &client.secrets())
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(Failure::Other(format!(
                "{endpoint} answered {status_text} without an access_token{why}"
            )));
        }
    };
    if access_token.contains('\0') || access_token.len() >= crate::model::credential::MAX_ENV_VALUE
    {
        return Err(Failure::Other(format!(
            "{endpoint} issued an access token that cannot be an environment variable"
        )));
    }
    let token_type = match json.get("token_type") {
        Some(serde_json::Value::String(kind)) => Some(kind.clone()),
        _ => None,
    };
    let refresh_token = match json.remove("refresh_token") {
        Some(serde_json::Value::String(token)) if !token.is_empty() => Some(Zeroizing::new(token)),
        _ => None,
    };
    let expires_at = json.get("expires_in").and_then(lifetime_secs).map(|secs| {
        obtained_at
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap_or(obtained_at)
    });
    Ok(Token {
        access_token,
        refresh_token,
        token_type,
        obtained_at,
        expires_at,
    })
}

/// `expires_in` as seconds: a number (or, leniently, a string of digits), capped at a year.
fn lifetime_secs(value: &serde_json::Value) -> Option<i64> {
    let secs = match value {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(secs.clamp(0, MAX_LIFETIME_SECS))
}

/// An RFC 6749 section 5.2 error response, as shown to people.
struct ServerError {
    code: String,
    description: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)?;
        if let Some(description) = &self.description {
            write!(f, ": \"{description}\"")?;
        }
        Ok(())
    }
}

/// The `error` and `error_description` of a response, escaped and truncated, with the
/// client's secrets (client secret, refresh token) blotted out should a server echo them.
fn server_error(
    json: &serde_json::Map<String, serde_json::Value>,
    secrets: &[&[u8]],
) -> Option<ServerError> {
    let text = |key: &str, max: usize| match json.get(key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => {
            Some(escape(&truncate(&redact(s, secrets), max)))
        }
        _ => None,
    };
    Some(ServerError {
        code: text("error", MAX_ERROR_CODE)?,
        description: text("error_description", MAX_ERROR_DESCRIPTION),
    })
}

/// `text` without the secrets in any form a server may echo: as is, base64 (a Basic
/// header), percent- or form-encoded (as it was sent), JSON-escaped, or cut short.
fn redact(text: &str, secrets: &[&[u8]]) -> String {
    let sent: Vec<Zeroizing<String>> = secrets.iter().map(|s| form_encode(s)).collect();
    let mut all: Vec<&[u8]> = secrets.to_vec();
    all.extend(sent.iter().map(|s| s.as_bytes()));
    crate::mask::redact(text, &all)
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max).collect();
    short.push_str("...");
    short
}

fn describe_transport(endpoint: &str, e: ureq::Error) -> String {
    http::describe_transport(endpoint, e, REQUEST_TIMEOUT, MAX_RESPONSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        for ok in [
            "https://auth.example.com/oauth/token",
            "https://auth.example.com:8443/t?x=1",
            "http://127.0.0.1:8080/token",
            "http://127.1.2.3/token",
            "http://localhost:9/token",
            "http://LOCALHOST./token",
            "http://[::1]:8080/token",
            "http://[::ffff:127.0.0.1]/token",
        ] {
            assert!(check_token_url(ok).is_ok(), "{ok} refused");
        }
        for bad in [
            "http://auth.example.com/token",
            "http://10.0.0.1/token",
            "http://128.0.0.1/token",
            "http://localhost.example.com/token",
            "http://[::2]/token",
            "ftp://127.0.0.1/token",
            "https://user:pw@auth.example.com/token",
            "auth.example.com/token",
            "/token",
            "",
            "https://auth.example.com/\ntoken",
        ] {
            let err = check_token_url(bad).unwrap_err();
            assert_eq!(err.exit(), crate::exit::Exit::Usage, "{bad}");
        }
        let err = check_token_url("http://auth.example.com/token")
            .unwrap_err()
            .to_string();
        assert!(err.contains("https"), "{err}");
    }

    #[test]
    fn freshness_needs_a_minute_or_a_tenth_of_the_lifetime() {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        // An hour's token: the tenth (360 s) is larger than a minute.
        assert!(is_fresh(t(0), t(3600), t(3239)));
        assert!(!is_fresh(t(0), t(3600), t(3240)));
        // Five minutes: a minute is larger than the tenth (30 s).
        assert!(is_fresh(t(0), t(300), t(239)));
        assert!(!is_fresh(t(0), t(300), t(240)));
        // A minute or less is never fresh: it is used once, not cached.
        assert!(!is_fresh(t(0), t(60), t(0)));
        assert!(is_fresh(t(0), t(61), t(0)));
        // Past expiry, and a clock that went far back, are both handled by the arithmetic.
        assert!(!is_fresh(t(0), t(3600), t(4000)));
    }

    #[test]
    fn form_encoding_follows_the_whatwg_serializer() {
        assert_eq!(*form_encode(b"a-Z_0.9*"), "a-Z_0.9*");
        assert_eq!(
            *form_encode(b"a b+c:d/e%f&g=h"),
            "a+b%2Bc%3Ad%2Fe%25f%26g%3Dh"
        );
        assert_eq!(*form_encode("é\n\0".as_bytes()), "%C3%A9%0A%00");
    }

    #[test]
    fn lifetimes_are_read_leniently_and_capped() {
        use serde_json::json;
        assert_eq!(lifetime_secs(&json!(3600)), Some(3600));
        assert_eq!(lifetime_secs(&json!(3600.7)), Some(3600));
        assert_eq!(lifetime_secs(&json!("120")), Some(120));
        assert_eq!(lifetime_secs(&json!(-5)), Some(0));
        assert_eq!(lifetime_secs(&json!(1e300)), Some(MAX_LIFETIME_SECS));
        assert_eq!(lifetime_secs(&json!("soon")), None);
        assert_eq!(lifetime_secs(&json!(null)), None);
    }

    #[test]
    fn server_errors_are_escaped_truncated_and_never_echo_the_secret() {
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"error":"invalid_scope","error_description":"bad \u001b[31m scope for s3cr3t-value"}"#,
        )
        .unwrap();
        let shown = server_error(&json, &[b"s3cr3t-value"]).unwrap().to_string();
        assert_eq!(
            shown,
            "invalid_scope: \"bad \\u{1b}[31m scope for <redacted>\""
        );
        let long: serde_json::Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({"error": "x".repeat(500)})).unwrap();
        let shown = server_error(&long, &[b"secret"]).unwrap().to_string();
        assert_eq!(shown.len(), MAX_ERROR_CODE + 3);
        let none: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"error_description":"no code"}"#).unwrap();
        assert!(server_error(&none, &[b"secret"]).is_none());
    }
}
