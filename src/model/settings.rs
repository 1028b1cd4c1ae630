//! VaultSettings a store records for its backends and clients: the `[vault]` table and an
//! `oauth2` credential's token endpoint. Plain, validated data, read by the manifest and
//! used by the vault backend and the OAuth client; nothing here is secret.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::http;
use crate::util::output::escape;

pub const DEFAULT_MOUNT: &str = "secret";

/// The non-secret parts, in the manifest's `[vault]` table (sealed with the rest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    pub mount: String,
    pub prefix: String,
}

impl VaultSettings {
    /// Settings for a store, the defaults filled in: mount `secret`, prefix
    /// `agentcred/STORE_ID`.
    pub fn new(
        addr: Option<String>,
        mount: Option<String>,
        prefix: Option<String>,
        store_id: &str,
    ) -> Result<VaultSettings> {
        let settings = VaultSettings {
            addr,
            mount: mount.unwrap_or_else(|| DEFAULT_MOUNT.into()),
            prefix: prefix.unwrap_or_else(|| default_prefix(store_id)),
        };
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(addr) = &self.addr {
            check_addr(addr)?;
        }
        check_path("Vault mount", &self.mount)?;
        check_path("Vault prefix", &self.prefix)
    }
}

/// What `init --vault-addr URL [--vault-mount M] [--vault-prefix P]` asks for.
pub struct Requested {
    pub addr: String,
    pub mount: Option<String>,
    pub prefix: Option<String>,
}

pub fn default_prefix(store_id: &str) -> String {
    format!("agentcred/{store_id}")
}

/// Refuse an address that is not `https://`, except `http://` to a loopback address.
pub fn check_addr(url: &str) -> Result<()> {
    check_url(
        url,
        &UrlRule {
            what: "Vault address",
            example: "https://vault.example.com:8200",
            userinfo: "give the token with VAULT_TOKEN",
            refuse_query: true,
            plain_http: "Vault tokens and values only travel over https",
            other_scheme: "only https:// Vault addresses are supported",
        },
    )
}

/// What [`check_url`] says for one kind of URL.
struct UrlRule {
    what: &'static str,
    example: &'static str,
    /// Where the credential goes instead of the URL's user name or password.
    userinfo: &'static str,
    refuse_query: bool,
    plain_http: &'static str,
    other_scheme: &'static str,
}

/// The one URL policy of agentcred's own HTTPS clients: at most 2048 characters, a
/// scheme and an authority, no user name or password in it, and `https://` (plain
/// `http://` only to 127.0.0.0/8, ::1 or localhost, where nothing leaves the machine).
fn check_url(url: &str, rule: &UrlRule) -> Result<()> {
    let invalid = |reason: String| Error::InvalidValue {
        what: rule.what,
        input: escape(url),
        reason,
    };
    if url.len() > 2048 {
        return Err(invalid("it is longer than 2048 characters".into()));
    }
    let not_a_url = || invalid(format!("it is not a URL like {}", rule.example));
    let uri: ureq::http::Uri = url.parse().map_err(|_| not_a_url())?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(not_a_url());
    };
    if authority.as_str().contains('@') {
        return Err(invalid(format!(
            "it holds a user name or password; {}",
            rule.userinfo
        )));
    }
    if rule.refuse_query && uri.query().is_some() {
        return Err(invalid("it has a query string".into()));
    }
    match scheme {
        "https" => Ok(()),
        "http" if http::is_loopback(authority.host()) => Ok(()),
        "http" => Err(invalid(format!(
            "{} (plain http only to 127.0.0.0/8, ::1 or localhost)",
            rule.plain_http
        ))),
        _ => Err(invalid(rule.other_scheme.into())),
    }
}

/// A mount or prefix: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none `.` or `..`.
pub fn check_path(what: &'static str, path: &str) -> Result<()> {
    let ok = !path.is_empty()
        && path.len() <= 256
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what,
            input: escape(path),
            reason: "it must be /-separated names of A-Z, a-z, 0-9, '.', '_' and '-'".into(),
        })
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 section 2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded id and secret (client_secret_basic)
    #[default]
    Basic,
    /// client_id and client_secret in the request body (client_secret_post)
    Post,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Basic => "basic",
            AuthMethod::Post => "post",
        }
    }
}

/// How an `oauth2` credential obtains access tokens, and so what its stored value is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// The agent acts as itself: the value is the client secret (RFC 6749 section 4.4)
    #[default]
    #[value(name = "client_credentials", alias = "client-credentials")]
    ClientCredentials,
    /// The agent acts for a person who signs in with `agentcred login`: the value is the
    /// refresh token (RFC 6749 section 4.1, PKCE)
    #[value(name = "authorization_code", alias = "authorization-code")]
    AuthorizationCode,
    /// A service-account key signs a JWT for each token (RFC 7523): the value is the key file
    #[value(name = "jwt-bearer", alias = "jwt_bearer")]
    JwtBearer,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::AuthorizationCode => "authorization_code",
            Grant::JwtBearer => "jwt-bearer",
        }
    }

    fn is_client_credentials(&self) -> bool {
        *self == Grant::ClientCredentials
    }
}

/// An `oauth2` credential's token endpoint, in its manifest entry (so covered by the entry
/// MAC and the seal). Nothing here is secret. Fields beyond the client-credentials ones are
/// left out when unset, so older manifests (and the token cache's MAC over this) keep
/// their bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub token_url: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default)]
    pub auth_method: AuthMethod,
    #[serde(default, skip_serializing_if = "Grant::is_client_credentials")]
    pub grant: Grant,
    /// The authorization endpoint (`authorization_code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// The device authorization endpoint (RFC 8628), for `login --device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_auth_url: Option<String>,
    /// A fixed port for the login redirect listener, for servers that register one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_port: Option<u16>,
}

impl ClientConfig {
    /// Check every field as `add` does.
    pub fn validate(&self) -> Result<()> {
        check_token_url(&self.token_url)?;
        check_text("client id", &self.client_id)?;
        if let Some(scope) = &self.scope {
            check_text("scope", scope)?;
        }
        if let Some(audience) = &self.audience {
            check_text("audience", audience)?;
        }
        for url in [&self.auth_url, &self.device_auth_url]
            .into_iter()
            .flatten()
        {
            check_token_url(url)?;
        }
        Ok(())
    }
}

/// Refuse a token URL that is not `https://`, except `http://` to a loopback address
/// (127.0.0.0/8, ::1, localhost), where nothing leaves the machine.
pub fn check_token_url(url: &str) -> Result<()> {
    check_url(
        url,
        &UrlRule {
            what: "token URL",
            example: "https://auth.example.com/oauth/token",
            userinfo: "give the client id with --client-id",
            refuse_query: false,
            plain_http: "client secrets are only sent over https",
            other_scheme: "only https:// token URLs are supported",
        },
    )
}

/// Client ids, scopes and audiences are shown to people and sent in requests: one line,
/// no control characters.
pub fn check_text(what: &'static str, text: &str) -> Result<()> {
    if text.is_empty() || text.len() > 1024 || text.chars().any(char::is_control) {
        return Err(Error::InvalidValue {
            what,
            input: escape(text),
            reason: "it must be one line of 1 to 1024 bytes, without control characters".into(),
        });
    }
    Ok(())
}
