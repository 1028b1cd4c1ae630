//! The `vault` backend: values in a HashiCorp Vault or OpenBao KV v2 engine that every
//! machine of a fleet reads, while the manifest (metadata, agents, policy) stays in the
//! git-shared store.
//!
//! A value lives at `<mount>/data/<prefix>/<name>` as the KV fields `value_b64` (the bytes,
//! base64, so binary values round-trip), `version` (the KV version it was written as) and
//! `tag`: `HMAC-SHA256(store key, "agentcred/vault-value/v1", store_id, name, version,
//! value)`.
//!
//! Why a tag in Vault rather than a version pinned in the manifest: the manifest travels
//! by git, so another machine's copy may be older than the value in Vault. A rotation on
//! one machine must be seen by every other at its next read, so readers take the latest
//! version, whatever their manifest says. What they refuse (exit 6) is a value written by
//! anyone without the store key (a `bao kv put` by hand, a value moved from another
//! credential: the tag does not verify), and an old version put back (`bao kv rollback`
//! writes old fields as a new version: the version they claim is not the one they are).
//! The manifest entry records the value's tag (`sha256`, as for the keychain) and the
//! version it wrote (`vault_version`): a value of a lower version is refused too, and a
//! value with another tag is a newer one (rotated on another machine).
//!
//! Writes happen before the manifest commit (see `store::Txn`): the new version
//! is written (check-and-set against the version read just before), then the manifest is
//! committed; a transaction that does not commit writes the previous value back. A writer
//! killed in between leaves Vault one version ahead of the manifest: readers use it (as
//! they would a rotation from another machine), and `doctor` says so.
//!
//! Rotation dates are mirrored into the KV custom metadata (`rotated_at`, `due_at`,
//! `rotate_every`), so `bao kv metadata get` shows when a key is due.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::SecretSlice;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::integrity::{StoreKey, tags_equal};
use crate::error::{Error, Result};
use crate::manifest::{Defaults, Entry};
use crate::model::credential::CredentialName;
use crate::model::rotation::Policy;
use crate::util::http;
use crate::util::output::{self, escape};

pub use crate::model::settings::{
    DEFAULT_MOUNT, Requested, VaultSettings as Settings, check_addr, check_path, default_prefix,
};

/// Every request, from connecting to the last byte of the answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read (a value is at most 16 MiB, base64 makes it larger).
const MAX_RESPONSE: u64 = 32 * 1024 * 1024;

pub const ENV_ROLE_ID: &str = "AGENTCRED_VAULT_ROLE_ID";
pub const ENV_SECRET_ID: &str = "AGENTCRED_VAULT_SECRET_ID";
pub const ENV_APPROLE_PATH: &str = "AGENTCRED_VAULT_APPROLE_PATH";
pub const ENV_MOUNT: &str = "AGENTCRED_VAULT_MOUNT";
pub const ENV_PREFIX: &str = "AGENTCRED_VAULT_PREFIX";
const ENV_ADDR: [&str; 2] = ["VAULT_ADDR", "BAO_ADDR"];
const ENV_TOKEN: [&str; 2] = ["VAULT_TOKEN", "BAO_TOKEN"];
const ENV_NAMESPACE: [&str; 2] = ["VAULT_NAMESPACE", "BAO_NAMESPACE"];
fn env(names: &[&'static str]) -> Option<(&'static str, String)> {
    names
        .iter()
        .find_map(|&name| Some((name, std::env::var(name).ok().filter(|v| !v.is_empty())?)))
}

/// The mount and prefix in effect: the environment's, else the manifest's, else the
/// defaults.
pub fn mount_and_prefix(settings: Option<&Settings>, store_id: &str) -> (String, String) {
    let mount = env(&[ENV_MOUNT])
        .map(|(_, v)| v)
        .unwrap_or_else(|| settings.map_or_else(|| DEFAULT_MOUNT.to_string(), |s| s.mount.clone()));
    let prefix = env(&[ENV_PREFIX])
        .map(|(_, v)| v)
        .unwrap_or_else(|| settings.map_or_else(|| default_prefix(store_id), |s| s.prefix.clone()));
    (mount, prefix)
}

/// Where a credential's value lives, as `bao kv get` names it (`MOUNT/PREFIX/NAME`) and
/// as the HTTP API does (`MOUNT/data/PREFIX/NAME`).
pub fn kv_path(settings: Option<&Settings>, store_id: &str, name: &CredentialName) -> String {
    let (mount, prefix) = mount_and_prefix(settings, store_id);
    format!("{mount}/{prefix}/{name}")
}

/// The settings in effect and where each came from, for `vault show` (nothing is sent).
#[derive(Serialize)]
pub struct Effective {
    pub addr: Option<String>,
    /// `VAULT_ADDR`, `BAO_ADDR` or `manifest`.
    pub addr_from: Option<String>,
    pub mount: String,
    pub prefix: String,
    pub namespace: Option<String>,
    /// `VAULT_TOKEN`, `BAO_TOKEN`, `approle`, `~/.vault-token`, or null when there is none.
    pub token_from: Option<String>,
}

pub fn effective(settings: Option<&Settings>, store_id: &str) -> Effective {
    let (addr, addr_from) = match env(&ENV_ADDR) {
        Some((var, addr)) => (Some(addr), Some(var.to_string())),
        None => match settings.and_then(|s| s.addr.clone()) {
            Some(addr) => (Some(addr), Some("manifest".to_string())),
            None => (None, None),
        },
    };
    let (mount, prefix) = mount_and_prefix(settings, store_id);
    let token_from = if let Some((var, _)) = env(&ENV_TOKEN) {
        Some(var.to_string())
    } else if env(&[ENV_ROLE_ID]).is_some() && env(&[ENV_SECRET_ID]).is_some() {
        Some("approle".to_string())
    } else {
        token_file()
            .filter(|p| p.exists())
            .map(|_| "~/.vault-token".to_string())
    };
    Effective {
        addr,
        addr_from,
        mount,
        prefix,
        namespace: env(&ENV_NAMESPACE).map(|(_, v)| v),
        token_from,
    }
}

/// The file `vault login` and `bao login` keep their token in.
fn token_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".vault-token"))
}

/// Where the token comes from (named in messages; the token itself never is).
#[derive(Clone, Debug)]
enum TokenSource {
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
    addr: String,
    mount: String,
    prefix: String,
    namespace: Option<String>,
    agent: ureq::Agent,
}

/// One HTTP answer: status and body (which may hold a value or a token: zeroized).
struct Answer {
    status: u16,
    body: Zeroizing<Vec<u8>>,
}

impl Answer {
    fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first of Vault's `errors`, escaped and shortened.
    fn error_text(&self) -> String {
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

/// The KV fields of a value, as written.
#[derive(Serialize, Deserialize)]
struct Fields {
    value_b64: String,
    version: u64,
    tag: String,
}

impl Drop for Fields {
    fn drop(&mut self) {
        self.value_b64.zeroize();
    }
}

/// The current version of a path: its fields (JSON; `None` when it has no live version)
/// and its number (also known for a deleted latest version).
type Current = (Option<Zeroizing<Vec<u8>>>, Option<u64>);

/// A write, and what it replaced (to put it back if the transaction does not commit).
pub struct Written {
    /// The value's tag, for the entry's `sha256`.
    pub tag: String,
    /// The KV version written, for the entry's `vault_version`.
    pub version: u64,
    /// The previous version's fields (JSON), or `None` when there was no value.
    previous: Option<Zeroizing<Vec<u8>>>,
}

/// What a read found beyond the value.
pub struct Read {
    pub value: SecretSlice<u8>,
    /// The value is not the one this manifest last wrote, but a newer one (rotated on
    /// another machine, or a write whose commit never happened).
    pub newer: bool,
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

    fn data_path(&self, name: &CredentialName) -> String {
        format!("{}/data/{}/{name}", self.mount, self.prefix)
    }

    fn metadata_path(&self, name: &CredentialName) -> String {
        format!("{}/metadata/{}/{name}", self.mount, self.prefix)
    }

    fn endpoint(&self) -> String {
        format!("Vault at {}", escape(&self.addr))
    }

    /// Send one request; `token` as `X-Vault-Token` when given.
    fn send(
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
    fn token(&self) -> Result<(Zeroizing<String>, TokenSource)> {
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

    fn approle_login(&self, role_id: &str, secret_id: &str) -> Result<Zeroizing<String>> {
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
    fn call(&self, op: &str, method: &str, path: &str, body: Option<&[u8]>) -> Result<Answer> {
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
    fn refused(&self, op: &str, path: &str, token: &str, source: &TokenSource) -> Error {
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
    fn unexpected(&self, op: &str, answer: &Answer) -> Error {
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

    /// The current version's fields (raw JSON) and number; `None` fields when the path
    /// has no live version (never written, or its latest version deleted).
    fn current(&self, op: &str, name: &CredentialName) -> Result<Current> {
        let answer = self.call(op, "GET", &self.data_path(name), None)?;
        let json = answer.json();
        let version = json
            .as_ref()
            .and_then(|j| j.get("data")?.get("metadata")?.get("version")?.as_u64());
        match answer.status {
            200 => {
                let fields = json
                    .as_ref()
                    .and_then(|j| j.get("data")?.get("data"))
                    .filter(|d| d.is_object())
                    .and_then(|d| serde_json::to_vec(d).ok())
                    .map(Zeroizing::new);
                Ok((fields, version))
            }
            404 => Ok((None, version)),
            _ => Err(self.unexpected(op, &answer)),
        }
    }

    /// Read and check a credential's value.
    pub fn read(
        &self,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<Read> {
        let op = format!("read credential {name} from Vault");
        let (fields, version) = self.current(&op, name)?;
        let fields = fields.ok_or_else(|| Error::VaultValueMissing {
            name: name.to_string(),
            path: self.kv_path(name),
        })?;
        let changed = |detail: &str| Error::VaultValueChanged {
            name: name.to_string(),
            path: self.kv_path(name),
            detail: detail.into(),
        };
        let fields: Fields = serde_json::from_slice(&fields).map_err(|_| {
            changed("it does not hold an agentcred value (value_b64, version, tag)")
        })?;
        let value = Zeroizing::new(
            BASE64
                .decode(&fields.value_b64)
                .map_err(|_| changed("its value_b64 is not base64"))?,
        );
        let expected = key.vault_tag(store_id, name.as_str(), fields.version, &value);
        if !tags_equal(&fields.tag, &expected) {
            return Err(changed(
                "its tag does not verify: it was written without the store key (changed outside agentcred), or the store key was replaced on another machine (pull the store)",
            ));
        }
        if version != Some(fields.version) {
            return Err(changed(&format!(
                "version {} holds the value agentcred wrote as version {}: an old version was put back (bao kv rollback?)",
                version.map_or_else(|| "?".into(), |v| v.to_string()),
                fields.version
            )));
        }
        if let Some(recorded) = entry.vault_version
            && fields.version < recorded
        {
            return Err(changed(&format!(
                "it holds version {}, but the manifest records a later write (version {recorded}): an old value was put back, or the credential was removed and added again elsewhere (pull the store)",
                fields.version
            )));
        }
        let tag = key.value_tag(store_id, name.as_str(), &value);
        let newer = !entry.sha256.as_deref().is_some_and(|t| tags_equal(t, &tag));
        Ok(Read {
            value: SecretSlice::from(value.to_vec()),
            newer,
        })
    }

    /// Write a new version holding `value` (check-and-set against the version read just
    /// before); returns what the entry records and what the write replaced, for
    /// [`Vault::restore`].
    pub fn write(
        &self,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        value: &[u8],
    ) -> Result<Written> {
        let op = format!("write credential {name} to Vault");
        let (previous, current) = self.current(&op, name)?;
        let version = self.put_value(&op, key, store_id, name, value, current.unwrap_or(0))?;
        Ok(Written {
            tag: key.value_tag(store_id, name.as_str(), value),
            version,
            previous,
        })
    }

    /// Write `value` as the version after `cas`; returns that version.
    fn put_value(
        &self,
        op: &str,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        value: &[u8],
        cas: u64,
    ) -> Result<u64> {
        let version = cas + 1;
        let fields = Fields {
            value_b64: BASE64.encode(value),
            version,
            tag: key.vault_tag(store_id, name.as_str(), version, value),
        };
        match self.put(op, name, &fields, cas)? {
            Some(written) if written != version => Err(Error::VaultFailed {
                detail: format!(
                    "cannot {op}: Vault wrote version {written}, not {version}; write it again"
                ),
            }),
            _ => Ok(version),
        }
    }

    fn put(
        &self,
        op: &str,
        name: &CredentialName,
        fields: &impl Serialize,
        cas: u64,
    ) -> Result<Option<u64>> {
        let mut body = serde_json::json!({ "data": fields, "options": { "cas": cas } });
        let bytes = Zeroizing::new(
            serde_json::to_vec(&body).map_err(|e| Error::io("cannot encode a value", e.into()))?,
        );
        if let Some(data) = body.get_mut("data") {
            zero_json(data);
        }
        let answer = self.call(op, "POST", &self.data_path(name), Some(&bytes))?;
        match answer.status {
            200 | 204 => Ok(answer
                .json()
                .and_then(|j| j.get("data")?.get("version")?.as_u64())),
            400 if answer.error_text().contains("check-and-set") => Err(Error::VaultFailed {
                detail: format!(
                    "cannot {op}: it was changed in Vault meanwhile (by another machine?); nothing was written, try again"
                ),
            }),
            _ => Err(self.unexpected(op, &answer)),
        }
    }

    /// Undo a write whose transaction did not commit: write the previous value again
    /// (tagged for its new version, under `key`, the committed store key), or delete a
    /// value that did not exist before. Fields that were not agentcred's go back as they
    /// were.
    pub fn restore(
        &self,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        written: &Written,
    ) -> Result<()> {
        let op = format!("restore the previous value of {name} in Vault");
        let Some(previous) = &written.previous else {
            return self.delete(name);
        };
        let ours = serde_json::from_slice::<Fields>(previous)
            .ok()
            .and_then(|fields| {
                let value = Zeroizing::new(BASE64.decode(&fields.value_b64).ok()?);
                let tag = key.vault_tag(store_id, name.as_str(), fields.version, &value);
                tags_equal(&fields.tag, &tag).then_some(value)
            });
        match ours {
            Some(value) => self
                .put_value(&op, key, store_id, name, &value, written.version)
                .map(|_| ()),
            None => {
                let mut fields: serde_json::Value = serde_json::from_slice(previous)
                    .map_err(|e| Error::io("cannot decode a value", e.into()))?;
                let result = self.put(&op, name, &fields, written.version);
                zero_json(&mut fields);
                result.map(|_| ())
            }
        }
    }

    /// Delete every version and the metadata of a credential's path. Idempotent.
    pub fn delete(&self, name: &CredentialName) -> Result<()> {
        let op = format!("delete credential {name} from Vault");
        let answer = self.call(&op, "DELETE", &self.metadata_path(name), None)?;
        match answer.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(self.unexpected(&op, &answer)),
        }
    }

    /// Mirror a credential's rotation dates into its KV custom metadata.
    pub fn set_metadata(
        &self,
        name: &CredentialName,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let op = format!("update the metadata of {name} in Vault");
        let body = serde_json::to_vec(&serde_json::json!({ "custom_metadata": metadata }))
            .map_err(|e| Error::io("cannot encode metadata", e.into()))?;
        let answer = self.call(&op, "POST", &self.metadata_path(name), Some(&body))?;
        match answer.status {
            200 | 204 => Ok(()),
            _ => Err(self.unexpected(&op, &answer)),
        }
    }
}

/// Overwrite the strings of a JSON value that held a secret before it is dropped.
fn zero_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Object(map) => map.values_mut().for_each(zero_json),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zero_json),
        _ => {}
    }
}

/// The custom metadata mirrored for an entry: `rotated_at`, `due_at` (RFC 3339, or
/// `never`), `rotate_every` (a period, `never`, or `-` when a date or an expiry decides),
/// and who manages the path.
pub fn metadata(entry: &Entry, defaults: &Defaults) -> BTreeMap<String, String> {
    let due = entry
        .due_at(defaults)
        .map_or_else(|| "never".to_string(), output::rfc3339);
    let every = match entry.policy() {
        Policy::Every(period) => period.to_string(),
        Policy::Default => defaults.rotate_every.to_string(),
        Policy::Never => "never".into(),
        Policy::Due(_) | Policy::Expiry(_) => "-".into(),
    };
    BTreeMap::from([
        ("managed_by".to_string(), "agentcred".to_string()),
        ("rotated_at".to_string(), output::rfc3339(entry.rotated_at)),
        ("due_at".to_string(), due),
        ("rotate_every".to_string(), every),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_https_or_loopback() {
        for ok in [
            "https://vault.example.com:8200",
            "https://vault.example.com/",
            "http://127.0.0.1:8200",
            "http://localhost:8200",
            "http://[::1]:8200",
        ] {
            assert!(check_addr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://vault.example.com:8200",
            "ftp://127.0.0.1",
            "https://user:pw@vault.example.com",
            "https://vault.example.com/?x=1",
            "vault.example.com",
            "",
        ] {
            let err = check_addr(bad).unwrap_err();
            assert_eq!(err.exit(), crate::exit::Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn paths_are_plain_segments() {
        for ok in ["secret", "kv/team-a", "agentcred/0123abcd", "a.b_c-d"] {
            assert!(check_path("p", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/secret", "secret/", "a//b", "a/../b", "a b", "a?b", "a%2fb", ".",
        ] {
            assert!(check_path("p", bad).is_err(), "{bad}");
        }
        let s = Settings::new(None, None, None, "0123").unwrap();
        assert_eq!(
            (s.mount.as_str(), s.prefix.as_str()),
            ("secret", "agentcred/0123")
        );
    }
}
