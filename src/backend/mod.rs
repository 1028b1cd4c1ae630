//! Where credential values live. The manifest records each credential's backend; reads go
//! through [`read`], which dispatches on it. The age backend is a file in the store; the OS
//! keychain and Vault/OpenBao backends join here as further arms of [`BackendKind`].

pub mod age_file;

use secrecy::SecretSlice;

use crate::credential::{BackendKind, CredentialName};
use crate::error::Result;
use crate::identity::Identity;
use crate::manifest::Entry;
use crate::store::Store;

/// Read a credential's value from wherever its entry says it lives.
pub fn read(
    store: &Store,
    identity: &Identity,
    store_id: &str,
    name: &CredentialName,
    entry: &Entry,
) -> Result<SecretSlice<u8>> {
    match entry.backend {
        BackendKind::Age => age_file::read(store, identity, store_id, name, entry),
    }
}
