//! Where credential values live. The manifest records each credential's backend; reads go
//! through [`read`], which dispatches on it; writes are staged by `store::Txn`.
//! The age backend is a file in the store, the keychain backend an OS keychain item, the
//! vault backend a path in a Vault or OpenBao KV v2 engine.

pub mod age;
pub mod keychain;
pub mod vault;

use std::cell::OnceCell;
use std::path::Path;

use secrecy::SecretSlice;

use crate::crypto::identity::Identity;
use crate::crypto::integrity::StoreKey;
use crate::error::Result;
use crate::manifest::Entry;
use crate::model::credential::{BackendKind, CredentialName};

/// A Vault client made on first use: most commands never need one, and those that read
/// several `vault` values share one (one connection, one AppRole login).
pub struct LazyVault {
    settings: Option<vault::Settings>,
    store_id: String,
    client: OnceCell<vault::Vault>,
}

impl LazyVault {
    pub fn new(settings: Option<vault::Settings>, store_id: &str) -> Self {
        LazyVault {
            settings,
            store_id: store_id.to_string(),
            client: OnceCell::new(),
        }
    }

    pub fn settings(&self) -> Option<&vault::Settings> {
        self.settings.as_ref()
    }

    pub fn get(&self) -> Result<&vault::Vault> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = vault::Vault::new(self.settings.as_ref(), &self.store_id)?;
        Ok(self.client.get_or_init(|| client))
    }
}

/// Read a credential's value from wherever its entry says it lives. `vault` gives the
/// Vault client, asked for only when the entry is a `vault` one.
#[allow(clippy::too_many_arguments)]
pub fn read<'v>(
    secrets_dir: &Path,
    identity: &Identity,
    key: &StoreKey,
    store_id: &str,
    name: &CredentialName,
    entry: &Entry,
    vault: &dyn Fn() -> Result<&'v vault::Vault>,
) -> Result<SecretSlice<u8>> {
    match entry.backend {
        BackendKind::Age => age::read(secrets_dir, identity, store_id, name, entry),
        BackendKind::Keychain => keychain::read(key, store_id, name, entry),
        BackendKind::Vault => Ok(vault()?.read(key, store_id, name, entry)?.value),
    }
}
