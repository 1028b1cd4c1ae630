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

use std::collections::{BTreeMap, BTreeSet};

use secrecy::SecretSlice;

use crate::backend::{Backend, Ctx};

use crate::crypto::integrity::{StoreKey, tags_equal};
use crate::crypto::os_keychain::{Keychain, Subject};
use crate::error::{Error, Result};
use crate::manifest::{Entry, Manifest};
use crate::model::credential::{BackendKind, CredentialName};

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

fn missing(name: &CredentialName) -> Error {
    Error::KeychainItemMissing {
        name: name.to_string(),
    }
}

/// Like [`read`]; `Ok(None)` when the item is not there.
fn find(
    key: &StoreKey,
    store_id: &str,
    name: &CredentialName,
    entry: &Entry,
) -> Result<Option<SecretSlice<u8>>> {
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
    let Some(mut value) =
        Keychain::for_process().get(&account, Subject::Credential(name.as_str()))?
    else {
        return Ok(None);
    };
    if !tags_equal(&key.value_tag(store_id, name.as_str(), &value), tag) {
        return Err(Error::KeychainItemChanged {
            name: name.to_string(),
        });
    }
    Ok(Some(SecretSlice::from(std::mem::take(&mut *value))))
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

/// The keychain backend's staged work: the items written by a transaction, and the items
/// the manifest named when it began (to delete those it no longer names, after the commit).
pub struct KeychainBackend {
    /// Items written by this transaction: name and account.
    staged: Vec<(CredentialName, String)>,
    /// Items the committed manifest references.
    committed: BTreeMap<CredentialName, String>,
}

impl KeychainBackend {
    pub fn new(manifest: Option<&Manifest>) -> Self {
        let committed = manifest
            .into_iter()
            .flat_map(|m| {
                m.credentials.iter().filter_map(|(name, entry)| {
                    let name = CredentialName::parse(name).ok()?;
                    let account = entry_account(&m.store_id, &name, entry)?;
                    Some((name, account))
                })
            })
            .collect();
        KeychainBackend {
            staged: Vec::new(),
            committed,
        }
    }
}

/// The account the manifest (as changed so far) names for `name`.
fn final_item(manifest: &Manifest, name: &CredentialName) -> Option<String> {
    let entry = manifest.entry(name)?;
    entry_account(&manifest.store_id, name, entry)
}

impl Backend for KeychainBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Keychain
    }

    fn read(
        &self,
        ctx: &Ctx,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<Option<SecretSlice<u8>>> {
        find(ctx.key, &ctx.store_id, name, entry)
    }

    fn missing(&self, _ctx: &Ctx, name: &CredentialName) -> Error {
        missing(name)
    }

    /// A new item whose account carries the value's tag; returns the tag.
    fn stage(&mut self, ctx: &Ctx, name: &CredentialName, value: &[u8]) -> Result<String> {
        let (tag, account) = write(ctx.key, &ctx.store_id, name, value)?;
        self.staged.push((name.clone(), account));
        Ok(tag)
    }

    fn staged(&self) -> Vec<&CredentialName> {
        self.staged.iter().map(|(name, _)| name).collect()
    }

    /// A removed credential's item is deleted only after the commit: deleting first would
    /// destroy the value when the commit then fails (a full disk), leaving the store naming
    /// an item that is gone. So the keychain must answer now, before anything changes; an
    /// item a later failure leaves behind carries a label naming its store and credential.
    fn before_commit(&mut self, _ctx: &Ctx, manifest: &mut Manifest) -> Result<()> {
        if let Some(name) = self
            .committed
            .keys()
            .find(|name| manifest.entry(name).is_none())
        {
            crate::crypto::os_keychain::probe().map_err(|reason| Error::Keychain {
                action: format!("delete credential {name} from"),
                reason,
                for_identity: false,
            })?;
        }
        Ok(())
    }

    /// Delete superseded items: the old value after a replacement, and any item staged but
    /// not kept.
    fn finish(
        &mut self,
        _ctx: &Ctx,
        manifest: &Manifest,
        _touched: &BTreeSet<CredentialName>,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        let mut superseded: Vec<(&CredentialName, &String)> = Vec::new();
        for (name, account) in &self.committed {
            if manifest.entry(name).is_none()
                || final_item(manifest, name).as_ref() != Some(account)
            {
                superseded.push((name, account));
            }
        }
        for (name, account) in &self.staged {
            if final_item(manifest, name).as_ref() != Some(account)
                && !self.committed.values().any(|a| a == account)
            {
                superseded.push((name, account));
            }
        }
        for (name, account) in superseded {
            if let Err(e) = delete(name, account) {
                warnings.push(format!(
                    "the old keychain item {}/{account} of {name} is left behind: {e}",
                    crate::crypto::os_keychain::SERVICE
                ));
            }
        }
        self.staged.clear();
        Ok(())
    }

    fn undo(&mut self, _ctx: &Ctx, _warnings: &mut Vec<String>) {
        for (name, account) in self.staged.drain(..) {
            if self.committed.get(&name) != Some(&account) {
                let _ = delete(&name, &account);
            }
        }
    }
}
