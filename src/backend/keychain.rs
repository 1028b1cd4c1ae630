//! The `keychain` backend: the value is an item in the OS keychain, the manifest keeps the
//! metadata.
//!
//! An item is named service `agentcred`, account `STORE_ID/NAME/VERSION`, with the label
//! `agentcred: NAME (store STORE_ID)`. The store id keeps two stores' credentials of one
//! name apart. The entry's `sha256` field holds the value's tag (HMAC-SHA256 under the
//! store key, see [`crate::crypto::integrity::StoreKey::value_tag`]); the entry MAC covers it, and
//! its first 16 hex digits are the VERSION. So the manifest names exactly one item, and a
//! value changed in the keychain behind agentcred's back no longer matches its tag
//! (exit 6).
//!
//! A keychain has no transactions, so a write mirrors the `*.age.pending` design: the new
//! value goes to a new item (its own version) before the manifest is committed, and the
//! old item is deleted after. A writer that dies in between leaves an unreferenced item,
//! never an entry without its value. See `store::Txn`.

use secrecy::SecretSlice;

use crate::crypto::integrity::{StoreKey, tags_equal};
use crate::crypto::os_keychain::{Keychain, Subject};
use crate::error::{Error, Result};
use crate::manifest::Entry;
use crate::model::credential::CredentialName;

/// Hex digits of the tag that name an item's version.
const VERSION_LEN: usize = 16;

/// The account of the item holding the value whose tag is `tag`.
pub fn account(store_id: &str, name: &CredentialName, tag: &str) -> String {
    let version = tag.get(..VERSION_LEN).unwrap_or(tag);
    format!("{store_id}/{name}/{version}")
}

/// What people see in a keychain manager.
pub fn label(store_id: &str, name: &CredentialName) -> String {
    format!("agentcred: {name} (store {store_id})")
}

/// The account an entry's value lives under, if it is a keychain entry with a tag.
pub fn entry_account(store_id: &str, name: &CredentialName, entry: &Entry) -> Option<String> {
    match (entry.backend, entry.sha256.as_deref()) {
        (crate::model::credential::BackendKind::Keychain, Some(tag)) => {
            Some(account(store_id, name, tag))
        }
        _ => None,
    }
}

pub fn read(
    key: &StoreKey,
    store_id: &str,
    name: &CredentialName,
    entry: &Entry,
) -> Result<SecretSlice<u8>> {
    let tag = entry
        .sha256
        .as_deref()
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            Error::integrity(
                format!("credential {name}"),
                "the manifest records no keychain tag for it",
            )
        })?;
    let account = account(store_id, name, tag);
    let mut value = Keychain::for_process()
        .get(&account, Subject::Credential(name.as_str()))?
        .ok_or_else(|| Error::KeychainItemMissing {
            name: name.to_string(),
        })?;
    if !tags_equal(&key.value_tag(store_id, name.as_str(), &value), tag) {
        return Err(Error::KeychainItemChanged {
            name: name.to_string(),
        });
    }
    Ok(SecretSlice::from(std::mem::take(&mut *value)))
}

/// Write a value to a new item; returns the tag to record in the entry and the account.
pub fn write(
    key: &StoreKey,
    store_id: &str,
    name: &CredentialName,
    value: &[u8],
) -> Result<(String, String)> {
    let tag = key.value_tag(store_id, name.as_str(), value);
    let account = account(store_id, name, &tag);
    Keychain::for_process().set(
        &account,
        &label(store_id, name),
        value,
        Subject::Credential(name.as_str()),
    )?;
    Ok((tag, account))
}

/// Delete an item; `Ok(false)` when it was already gone.
pub fn delete(name: &CredentialName, account: &str) -> Result<bool> {
    Keychain::for_process().delete(account, Subject::Credential(name.as_str()))
}
