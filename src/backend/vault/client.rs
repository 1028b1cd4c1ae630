//! The HTTP side of the vault backend: one client per server and mount, its token (from
//! the environment, `~/.vault-token`, or an AppRole login kept for the process), and
//! requests with Vault's errors turned into ours.

use std::path::PathBuf;
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::model::credential::CredentialName;
use crate::util::http;
use crate::util::output::escape;

use super::*;

/// The file `vault login` and `bao login` keep their token in.
pub(crate) fn token_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".vault-token"))
}

/// Where the token comes from (named in messages; the token itself never is).
#[derive(Clone, Debug)]
pub(super) enum TokenSource {
    Env(&'static str),
    AppRole,
    File(PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(var) => write!(f, "the token from {var}"),
            TokenSource::AppRole => {
                write!(f, "the token from the AppRole login ({ENV_ROLE_ID})")
            }
            TokenSource::File(path) => write!(f, "the token in {}", path.display()),
        }
    }
}

/// A token obtained by an AppRole login, kept in memory for the rest of the process (one
/// login however many values a command reads), never written anywhere.
static APPROLE_TOKEN: Mutex<Option<(String, Zeroizing<String>)>> = Mutex::new(None);

/// A client for one Vault server and KV mount.
pub struct Vault {
    pub(super) addr: String,
    pub(super) mount: String,
    pub(super) prefix: String,
    pub(super) namespace: Option<String>,
    pub(super) agent: ureq::Agent,
}

/// One HTTP answer: status and body (which may hold a value or a token: zeroized).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Zeroizing<Vec<u8>>,
}

impl Answer {
    pub(super) fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first of Vault's `errors`, escaped and shortened.
    pub(super) fn error_text(&self) -> String {
        let first = self.json().and_then(|j| {
            j.get("errors")?
                .as_array()?
                .first()?
                .as_str()
                .map(String::from)
        });
        match first {
            Some(text) if !text.is_empty() => {
                let short: String = text.chars().take(200).collect();
                format!(": {}", escape(&short))
            }
            _ => String::new(),
        }
    }
}

impl Vault {
    /// A client from the manifest's settings and the environment (`VAULT_ADDR` or
    /// `BAO_ADDR`, `AGENTCRED_VAULT_MOUNT`, `AGENTCRED_VAULT_PREFIX`, `VAULT_NAMESPACE`).
    /// Nothing is sent yet.
    pub fn new(settings: Option<&Settings>, store_id: &str) -> Result<Vault> {
        let addr = match env(&ENV_ADDR) {
            Some((_, addr)) => addr,
            None => settings
                .and_then(|s| s.addr.clone())
                .ok_or(Error::VaultNotConfigured)?,
        };
        check_addr(&addr)?;
        let (mount, prefix) = mount_and_prefix(settings, store_id);
        check_path("Vault mount", &mount)?;
        check_path("Vault prefix", &prefix)?;
        let loopback = addr
            .parse::<ureq::http::Uri>()
            .ok()
            .and_then(|u| u.host().map(http::is_loopback))
            .unwrap_or(false);
        Ok(Vault {
            addr: addr.trim_end_matches('/').to_string(),
            mount,
            prefix,
            namespace: env(&ENV_NAMESPACE).map(|(_, v)| v),
            agent: http::agent(loopback, TIMEOUT),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `MOUNT/PREFIX/NAME`, as the `bao kv` commands name it.
    pub fn kv_path(&self, name: &CredentialName) -> String {
        format!("{}/{}/{name}", self.mount, self.prefix)
    }

    pub(super) fn data_path(&self, name: &CredentialName) -> String {
        format!("{}/data/{}/{name}", self.mount, self.prefix)
    }

    pub(super) fn metadata_path(&self, name: &CredentialName) -> String {
        format!("{}/metadata/{}/{name}", self.mount, self.prefix)
    }

    pub(super) fn endpoint(&self) -> String {
        format!("Vault at {}", escape(&self.addr))
    }

    /// Send one request; `token` as `X-Vault-Token` when given.
    pub(super) fn send(
        &self,
        op: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        token: Option<&str>,
    ) -> Result<Answer> {
        let url = format!("{}/v1/{path}", self.addr);
        let transport = |e| Error::VaultUnavailable {
            detail: format!(
                "cannot {op}: {}",
                http::describe_transport(&self.endpoint(), e, TIMEOUT, MAX_RESPONSE)
            ),
        };
        macro_rules! headers {
            ($request:expr) => {{
                let mut request = $request.header("Accept", "application/json");
                if let Some(token) = token {
                    request = request.header("X-Vault-Token", token);
                }
                if let Some(namespace) = &self.namespace {
                    request = request.header("X-Vault-Namespace", namespace.as_str());
                }
                request
            }};
        }
        let response = match method {
            "GET" => headers!(self.agent.get(&url)).call(),
            "DELETE" => headers!(self.agent.delete(&url)).call(),
            _ => headers!(self.agent.post(&url))
                .content_type("application/json")
                .send(body.unwrap_or(b"{}")),
        };
        let mut response = response.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(transport)?;
        Ok(Answer {
            status,
            body: Zeroizing::new(body),
        })
    }

    /// The token to send, and where it came from: `VAULT_TOKEN` or `BAO_TOKEN`, else an
    /// AppRole login with `AGENTCRED_VAULT_ROLE_ID` and `AGENTCRED_VAULT_SECRET_ID`, else
    /// the file `vault login` and `bao login` write (`~/.vault-token`).
    pub(super) fn token(&self) -> Result<(Zeroizing<String>, TokenSource)> {
        if let Some((var, token)) = env(&ENV_TOKEN) {
            return Ok((Zeroizing::new(token), TokenSource::Env(var)));
        }
        if let (Some((_, role_id)), Some((_, secret_id))) =
            (env(&[ENV_ROLE_ID]), env(&[ENV_SECRET_ID]))
        {
            let secret_id = Zeroizing::new(secret_id);
            return self
                .approle_login(&role_id, &secret_id)
                .map(|t| (t, TokenSource::AppRole));
        }
        if let Some(path) = token_file()
            && let Ok(Some(bytes)) = crate::util::fs::read_optional(&path)
        {
            let bytes = Zeroizing::new(bytes);
            if let Ok(text) = std::str::from_utf8(&bytes)
                && !text.trim().is_empty()
            {
                return Ok((
                    Zeroizing::new(text.trim().to_string()),
                    TokenSource::File(path),
                ));
            }
        }
        Err(Error::VaultNoToken)
    }

    pub(super) fn approle_login(
        &self,
        role_id: &str,
        secret_id: &str,
    ) -> Result<Zeroizing<String>> {
        let mut cached = APPROLE_TOKEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((addr, token)) = cached.as_ref()
            && *addr == self.addr
        {
            return Ok(token.clone());
        }
        let mount = env(&[ENV_APPROLE_PATH]).map_or_else(|| "approle".to_string(), |(_, v)| v);
        check_path("AppRole path", &mount)?;
        let op = "log in to Vault with AppRole";
        let body = Zeroizing::new(
            serde_json::to_vec(&serde_json::json!({"role_id": role_id, "secret_id": secret_id}))
                .map_err(|e| Error::io("cannot encode the login", e.into()))?,
        );
        let answer = self.send(
            op,
            "POST",
            &format!("auth/{mount}/login"),
            Some(&body),
            None,
        )?;
        if answer.status != 200 {
            return Err(Error::VaultRefused {
                detail: format!(
                    "cannot {op}: {} answered HTTP {}{}",
                    self.endpoint(),
                    answer.status,
                    answer.error_text()
                ),
                hint: Some(format!(
                    "check {ENV_ROLE_ID} and {ENV_SECRET_ID} (a secret id expires, or is used up)"
                )),
            });
        }
        let token = answer
            .json()
            .and_then(|j| Some(j.get("auth")?.get("client_token")?.as_str()?.to_string()))
            .map(Zeroizing::new)
            .ok_or_else(|| Error::VaultFailed {
                detail: format!("cannot {op}: {} sent no client token", self.endpoint()),
            })?;
        *cached = Some((self.addr.clone(), token.clone()));
        Ok(token)
    }

    /// An authenticated request; a refusal is put into words (a bad token, or a policy
    /// that does not allow `op` on `path`).
    pub(super) fn call(
        &self,
        op: &str,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer> {
        let (token, source) = self.token()?;
        let answer = self.send(op, method, path, body, Some(&token))?;
        match answer.status {
            401 | 403 => Err(self.refused(op, path, &token, &source)),
            503 => Err(Error::VaultUnavailable {
                detail: format!(
                    "cannot {op}: {} is sealed or not ready (HTTP 503){}",
                    self.endpoint(),
                    answer.error_text()
                ),
            }),
            status if status >= 500 => Err(Error::VaultUnavailable {
                detail: format!(
                    "cannot {op}: {} answered HTTP {status}{}",
                    self.endpoint(),
                    answer.error_text()
                ),
            }),
            _ => Ok(answer),
        }
    }

    /// Why Vault said 403: ask about the token itself to tell a bad token from a policy.
    pub(super) fn refused(&self, op: &str, path: &str, token: &str, source: &TokenSource) -> Error {
        let token_ok = self
            .send(op, "GET", "auth/token/lookup-self", None, Some(token))
            .is_ok_and(|a| a.status == 200);
        if token_ok {
            Error::VaultRefused {
                detail: format!(
                    "cannot {op}: permission denied on {path} ({source} is valid, but its policy does not allow this)"
                ),
                hint: Some(format!(
                    "grant the token's policy read, create, update and delete on {}/data/{}/* and {}/metadata/{}/*",
                    self.mount, self.prefix, self.mount, self.prefix
                )),
            }
        } else {
            Error::VaultRefused {
                detail: format!(
                    "cannot {op}: {} refused {source} (invalid or expired)",
                    self.endpoint()
                ),
                hint: Some(
                    "set a valid VAULT_TOKEN (or BAO_TOKEN), or AGENTCRED_VAULT_ROLE_ID and AGENTCRED_VAULT_SECRET_ID for an AppRole login".into(),
                ),
            }
        }
    }

    /// Another status than expected, in words (exit 1).
    pub(super) fn unexpected(&self, op: &str, answer: &Answer) -> Error {
        Error::VaultFailed {
            detail: format!(
                "cannot {op}: {} answered HTTP {}{}",
                self.endpoint(),
                answer.status,
                answer.error_text()
            ),
        }
    }

    /// Check the token (for `doctor`): where it comes from, once Vault accepted it.
    pub fn check_token(&self) -> Result<String> {
        let (_, source) = self.token()?;
        let op = "check the Vault token";
        let answer = self.call(op, "GET", "auth/token/lookup-self", None)?;
        if answer.status != 200 {
            return Err(self.unexpected(op, &answer));
        }
        Ok(source.to_string())
    }
}
