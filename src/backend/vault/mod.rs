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

mod client;
mod kv;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;

use secrecy::SecretSlice;

use crate::backend::{Backend, Ctx, LazyVault};
use crate::error::{Error, Result};
use crate::manifest::{Entry, Manifest};
use crate::model::credential::{BackendKind, CredentialName};

pub use crate::model::settings::{
    DEFAULT_MOUNT, Requested, VaultSettings as Settings, check_addr, check_path, default_prefix,
};
pub use client::Vault;
pub(crate) use client::token_file;
pub use kv::{Written, metadata};

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
/// Every variable that lets its holder into Vault (a token, or an AppRole's two halves):
/// never passed on to a program agentcred starts, which gets only what it was granted.
pub const ENV_UNLOCKING: [&str; 4] = [ENV_TOKEN[0], ENV_TOKEN[1], ENV_ROLE_ID, ENV_SECRET_ID];
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

/// The vault backend's staged work: the writes of a transaction with what each replaced,
/// and the `vault` credentials of the committed manifest with the metadata mirrored for
/// each (to know whose changed).
pub struct VaultBackend {
    client: Rc<LazyVault>,
    before: BTreeMap<CredentialName, BTreeMap<String, String>>,
    staged: Vec<(CredentialName, Written)>,
}

impl VaultBackend {
    pub fn new(manifest: Option<&Manifest>, client: Rc<LazyVault>) -> Self {
        let before = manifest
            .into_iter()
            .flat_map(|m| {
                m.credentials
                    .iter()
                    .filter(|(_, entry)| entry.backend == BackendKind::Vault)
                    .filter_map(|(name, entry)| {
                        let name = CredentialName::parse(name).ok()?;
                        Some((name, metadata(entry, &m.defaults)))
                    })
            })
            .collect();
        VaultBackend {
            client,
            before,
            staged: Vec::new(),
        }
    }
}

impl Backend for VaultBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Vault
    }

    fn read(
        &self,
        ctx: &Ctx,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<Option<SecretSlice<u8>>> {
        let found = self
            .client
            .get()?
            .find(ctx.key, &ctx.store_id, name, entry)?;
        Ok(found.map(|read| read.value))
    }

    fn missing(&self, ctx: &Ctx, name: &CredentialName) -> Error {
        match self.client.get() {
            Ok(client) => client.missing(name),
            Err(_) => Error::VaultValueMissing {
                name: name.to_string(),
                path: kv_path(self.client.settings(), &ctx.store_id, name),
            },
        }
    }

    /// A new KV version (check-and-set against the version read just before); returns
    /// its tag.
    fn stage(&mut self, ctx: &Ctx, name: &CredentialName, value: &[u8]) -> Result<String> {
        let written = self
            .client
            .get()?
            .write(ctx.key, &ctx.store_id, name, value)?;
        let tag = written.tag.clone();
        self.staged.push((name.clone(), written));
        Ok(tag)
    }

    fn staged(&self) -> Vec<&CredentialName> {
        self.staged.iter().map(|(name, _)| name).collect()
    }

    fn check_reachable(&self) -> Result<()> {
        self.client.get().map(|_| ())
    }

    /// The entry of a value written records the version written; a removed credential's
    /// path is deleted (there is no rename to wait for), and the rotation dates of every
    /// vault credential written or whose dates changed are mirrored.
    fn before_commit(&mut self, _ctx: &Ctx, manifest: &mut Manifest) -> Result<()> {
        for (name, written) in &self.staged {
            if let Some(entry) = manifest.credentials.get_mut(name.as_str())
                && entry.backend == BackendKind::Vault
                && entry.sha256.as_deref() == Some(written.tag.as_str())
            {
                entry.vault_version = Some(written.version);
            }
        }
        for name in self.before.keys() {
            if manifest.entry(name).is_none() {
                self.client.get()?.delete(name)?;
            }
        }
        for (name, entry) in &manifest.credentials {
            if entry.backend != BackendKind::Vault {
                continue;
            }
            let Ok(name) = CredentialName::parse(name) else {
                continue;
            };
            let metadata = metadata(entry, &manifest.defaults);
            let staged = self.staged.iter().any(|(n, _)| *n == name);
            if staged || self.before.get(&name) != Some(&metadata) {
                self.client.get()?.set_metadata(&name, &metadata)?;
            }
        }
        Ok(())
    }

    /// A credential moved out of Vault (`add --force --backend age`) leaves its path.
    fn finish(
        &mut self,
        _ctx: &Ctx,
        manifest: &Manifest,
        _touched: &BTreeSet<CredentialName>,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        for name in self.before.keys() {
            let moved = manifest
                .entry(name)
                .is_some_and(|entry| entry.backend != BackendKind::Vault);
            if moved && let Err(e) = self.client.get().and_then(|v| v.delete(name)) {
                warnings.push(format!("the old value of {name} is left in Vault: {e}"));
            }
        }
        self.staged.clear();
        Ok(())
    }

    /// Put back what each write replaced, newest first, tagged under the key that stays.
    fn undo(&mut self, ctx: &Ctx, warnings: &mut Vec<String>) {
        for (name, written) in self.staged.drain(..).rev() {
            let restored = self
                .client
                .get()
                .and_then(|v| v.restore(ctx.key, &ctx.store_id, &name, &written));
            if let Err(e) = restored {
                warnings.push(format!(
                    "the new value of {name} stays in Vault, though nothing was committed: {e}"
                ));
            }
        }
    }
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
