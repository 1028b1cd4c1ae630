//! Where credential values live. The manifest records each credential's backend; reads go
//! through [`read`], which dispatches on it; writes are staged by [`crate::store::Txn`].
//! The age backend is a file in the store, the keychain backend an OS keychain item;
//! Vault/OpenBao joins here as a further arm of [`BackendKind`].

pub mod age_file;
pub mod keychain;

use secrecy::SecretSlice;

use crate::credential::{BackendKind, CredentialName};
use crate::error::Result;
use crate::identity::Identity;
use crate::integrity::StoreKey;
use crate::manifest::Entry;
use crate::store::Store;

/// Read a credential's value from wherever its entry says it lives.
pub fn read(
    store: &Store,
    identity: &Identity,
    key: &StoreKey,
    store_id: &str,
    name: &CredentialName,
    entry: &Entry,
) -> Result<SecretSlice<u8>> {
    match entry.backend {
        BackendKind::Age => age_file::read(store, identity, store_id, name, entry),
        BackendKind::Keychain => keychain::read(key, store_id, name, entry),
    }
}
