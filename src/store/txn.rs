//! `Txn`: an exclusive, verified write transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;

use secrecy::ExposeSecret;

use crate::backend::{self, LazyVault, age, keychain};
use crate::crypto::identity::Identity;
use crate::crypto::integrity::{self, StoreKey, sha256_hex};
use crate::crypto::recipient::{self, Recipient};
use crate::error::{Error, Result};
use crate::manifest::{self, Entry, Manifest};
use crate::model::credential::{BackendKind, CredentialName};
use crate::util;

use super::*;

/// An exclusive, verified write transaction.
///
/// Values are staged where they will live: an age value as `secrets/NAME.age.pending`, a
/// keychain value as a new item whose account carries a version (see
/// [`backend::keychain`]), a vault value as a new KV version (see [`backend::vault`]); a
/// recipients change also stages `storekey.age.pending` and `recipients.txt.pending`. The
/// manifest rename is the commit point. After it, pending files are renamed into place
/// and superseded keychain items deleted; without it (an error, or the `Txn` dropped),
/// staged files and items are removed again and vault writes undone. The exception is
/// `rm` of a keychain or vault credential: neither has a rename, so its value is deleted
/// just before the commit, and a failure there leaves the manifest unchanged.
pub struct Txn<'a> {
    pub(super) store: &'a Store,
    pub(super) identity: &'a Identity,
    /// The Vault client, made on first use.
    pub(super) vault: LazyVault,
    /// The `vault` credentials when the transaction began, with the metadata mirrored
    /// for each (to know whose changed).
    pub(super) vault_before: BTreeMap<CredentialName, BTreeMap<String, String>>,
    /// Vault writes made by this transaction, with what they replaced.
    pub(super) staged_vault: Vec<(CredentialName, backend::vault::Written)>,
    pub(super) _lock: Option<File>,
    pub(super) key: StoreKey,
    /// The store's earlier keys, newest first (carried in `storekey.age`).
    pub(super) previous_keys: Vec<StoreKey>,
    /// `key` is a new one, made by [`Txn::change_recipients`].
    pub(super) key_rotated: bool,
    pub(super) recipients: Vec<Recipient>,
    pub manifest: Manifest,
    /// Pending files in the store's root written by this transaction (the store key and
    /// `recipients.txt`), in the order they are renamed after the commit.
    pub(super) staged_root: Vec<(&'static str, &'static str)>,
    /// Names with a `NAME.age.pending` written by this transaction.
    pub(super) staged: Vec<CredentialName>,
    /// Keychain items written by this transaction: name and account.
    pub(super) staged_items: Vec<(CredentialName, String)>,
    /// Keychain items the manifest referenced when the transaction began.
    pub(super) committed_items: BTreeMap<CredentialName, String>,
    pub(super) removed: Vec<CredentialName>,
    pub(super) committed: bool,
}

impl Txn<'_> {
    /// Finish a commit that a killed writer left between its two renames, and drop
    /// pending files of commits that never happened.
    pub(super) fn roll_forward(&self) -> Result<()> {
        let dir = self.store.secrets_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.store.io_err("list secrets", e)),
        };
        let err = |e| self.store.io_err("clean up secrets", e);
        for dirent in entries {
            let dirent = dirent.map_err(err)?;
            let file_name = dirent.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if file_name.starts_with(".tmp-") {
                util::fs::remove_if_exists(&dirent.path()).map_err(err)?;
                continue;
            }
            let Some(stem) = file_name.strip_suffix(".age.pending") else {
                continue;
            };
            let expected = CredentialName::parse(stem)
                .ok()
                .and_then(|name| self.manifest.entry(&name).and_then(|e| e.sha256.clone()));
            let bytes = util::fs::read_nofollow(&dirent.path()).map_err(err)?;
            if expected.is_some_and(|sha| sha == sha256_hex(&bytes)) {
                util::fs::rename_durable(&dir, file_name, &format!("{stem}.age")).map_err(err)?;
            } else {
                util::fs::remove_if_exists(&dirent.path()).map_err(err)?;
            }
        }
        Ok(())
    }

    pub fn store_id(&self) -> &str {
        &self.manifest.store_id
    }

    /// Stage a new value for `name` in the backend its entry names (`age` for a name not
    /// in the manifest yet); returns what to record in the entry's `sha256`.
    pub fn stage_value(&mut self, name: &CredentialName, value: &[u8]) -> Result<String> {
        let backend = self
            .manifest
            .entry(name)
            .map_or(BackendKind::Age, |entry| entry.backend);
        self.stage_value_for(backend, name, value)
    }

    /// Stage a new value for `name` in `backend`; returns what to record in the entry's
    /// `sha256` (and the entry must name `backend`): for `age` the file's SHA-256, for
    /// `keychain` the value's tag, which also names the new item.
    pub fn stage_value_for(
        &mut self,
        backend: BackendKind,
        name: &CredentialName,
        value: &[u8],
    ) -> Result<String> {
        match backend {
            BackendKind::Age => self.stage_age_file(name, value),
            BackendKind::Keychain => {
                let (tag, account) =
                    keychain::write(&self.key, &self.manifest.store_id, name, value)?;
                self.staged_items.push((name.clone(), account));
                Ok(tag)
            }
            BackendKind::Vault => {
                let written =
                    self.vault
                        .get()?
                        .write(&self.key, &self.manifest.store_id, name, value)?;
                let tag = written.tag.clone();
                self.staged_vault.push((name.clone(), written));
                Ok(tag)
            }
        }
    }

    /// The fingerprint of the store key this transaction commits with.
    pub fn key_fingerprint(&self) -> String {
        self.key.fingerprint()
    }

    /// The Vault client of this store (for checks before anything is staged).
    pub fn vault(&self) -> Result<&backend::vault::Vault> {
        self.vault.get()
    }

    /// Encrypt a value for `name` and stage it; returns the file's SHA-256 for the entry.
    fn stage_age_file(&mut self, name: &CredentialName, value: &[u8]) -> Result<String> {
        let plain = integrity::seal_value(&self.manifest.store_id, name.as_str(), value);
        let ciphertext = integrity::encrypt_to(&self.recipients, &plain)?;
        let dir = self.store.secrets_dir();
        let err = |e| self.store.io_err("write a secret", e);
        util::fs::create_private_dir(&dir).map_err(err)?;
        let temp = util::fs::write_temp(&dir, &ciphertext).map_err(err)?;
        temp.persist(dir.join(age::pending_name(name)))
            .map_err(|e| err(e.error))?;
        self.staged.push(name.clone());
        Ok(sha256_hex(&ciphertext))
    }

    /// Change who the store is encrypted to: re-encrypt every `age` value and the store key
    /// to the recipients of `text` (the new `recipients.txt`), staged as pending files
    /// like any other write. With `new_key`, the store key is replaced too (the old one
    /// joins the chain of earlier keys in `storekey.age`), and the values kept outside the
    /// store, whose tags the key makes, are tagged again. `progress` hears (done, total)
    /// after each credential. Every value is read (and checked) first; a value this
    /// identity cannot read fails the whole change.
    pub fn change_recipients(
        &mut self,
        text: &str,
        new_key: bool,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        let lines = recipient::parse_file(text).map_err(|line| {
            Error::Usage(format!(
                "line {line} of the new recipients is not a recipient"
            ))
        })?;
        if lines.is_empty() {
            return Err(Error::Usage("a store needs at least one recipient".into()));
        }
        // The old key joins the chain at once: an undo on the way out needs it.
        let old_key = if new_key {
            let old = std::mem::replace(&mut self.key, StoreKey::generate()?);
            let copy = old.duplicate();
            self.previous_keys.insert(0, old);
            self.key_rotated = true;
            Some(copy)
        } else {
            None
        };
        self.recipients = lines.into_iter().map(|l| l.recipient).collect();
        let store_id = self.manifest.store_id.clone();
        let entries: Vec<(CredentialName, Entry)> = self
            .manifest
            .credentials
            .iter()
            .filter_map(|(name, entry)| Some((CredentialName::parse(name).ok()?, entry.clone())))
            .collect();
        let total = entries.len();
        for (done, (name, entry)) in entries.into_iter().enumerate() {
            let sha256 = match (entry.backend, &old_key) {
                (BackendKind::Age, _) => {
                    let value = age::read(
                        &self.store.secrets_dir(),
                        self.identity,
                        &store_id,
                        &name,
                        &entry,
                    )?;
                    Some(self.stage_age_file(&name, value.expose_secret())?)
                }
                (BackendKind::Keychain, Some(old_key)) => {
                    let value = keychain::read(old_key, &store_id, &name, &entry)?;
                    Some(self.stage_value_for(
                        BackendKind::Keychain,
                        &name,
                        value.expose_secret(),
                    )?)
                }
                (BackendKind::Vault, Some(old_key)) => {
                    let read = self.vault.get()?.read(old_key, &store_id, &name, &entry)?;
                    Some(self.stage_value_for(
                        BackendKind::Vault,
                        &name,
                        read.value.expose_secret(),
                    )?)
                }
                _ => None,
            };
            if let (Some(sha256), Some(entry)) =
                (sha256, self.manifest.credentials.get_mut(name.as_str()))
            {
                entry.sha256 = Some(sha256);
            }
            progress(done + 1, total);
        }
        let key_file = integrity::encrypt_store_key(
            &self.key,
            &self.previous_keys,
            &store_id,
            &self.recipients,
        )?;
        self.stage_root(PENDING_STORE_KEY, STORE_KEY, &key_file)?;
        self.stage_root(PENDING_RECIPIENTS, RECIPIENTS, text.as_bytes())?;
        self.manifest.recipients_sha256 = sha256_hex(text.as_bytes());
        Ok(())
    }

    /// Write a pending file in the store's root, to be renamed to `target` at commit.
    fn stage_root(
        &mut self,
        pending: &'static str,
        target: &'static str,
        bytes: &[u8],
    ) -> Result<()> {
        let root = self.store.root();
        let err = |e| self.store.io_err("write a pending file", e);
        let temp = util::fs::write_temp(root, bytes).map_err(err)?;
        self.staged_root.push((pending, target));
        temp.persist(root.join(pending)).map_err(|e| err(e.error))?;
        Ok(())
    }

    /// Remove a credential's entry and, at commit, its file.
    pub fn remove(&mut self, name: &CredentialName) -> Option<Entry> {
        let entry = self.manifest.credentials.remove(name.as_str())?;
        self.removed.push(name.clone());
        Some(entry)
    }

    /// Rename a credential: its value moves to the new name in the same backend (an `age`
    /// file binds its name, so it is encrypted again; a keychain item or vault path is
    /// named after the credential), its entry, history and agents' grants follow, and the
    /// old value goes at commit as for [`Txn::remove`]. `event` is appended to the history.
    /// Returns the agents whose grants were moved.
    pub fn rename(
        &mut self,
        old: &CredentialName,
        new: &CredentialName,
        event: manifest::Event,
    ) -> Result<Vec<String>> {
        let Some(mut entry) = self.manifest.entry(old).cloned() else {
            return Err(Error::CredentialNotFound {
                name: old.to_string(),
            });
        };
        if self.manifest.entry(new).is_some() {
            return Err(Error::Exists {
                name: new.to_string(),
            });
        }
        let store_id = self.manifest.store_id.clone();
        let value = backend::read(
            &self.store.secrets_dir(),
            self.identity,
            &self.key,
            &store_id,
            old,
            &entry,
            &|| self.vault.get(),
        )?;
        entry.sha256 = Some(self.stage_value_for(entry.backend, new, value.expose_secret())?);
        entry.vault_version = None;
        entry.history.push(event);
        self.remove(old);
        self.manifest.credentials.insert(new.to_string(), entry);
        let mut agents = Vec::new();
        for (agent_name, agent) in &mut self.manifest.agents {
            if agent.allow.remove(old.as_str()) {
                agent.allow.insert(new.to_string());
                agents.push(agent_name.clone());
            }
        }
        Ok(agents)
    }

    /// Refuse to commit an entry whose backend is not where its value was staged (a value
    /// staged in the keychain under an entry that says `age` would be lost).
    fn check_staged_backends(&self) -> Result<()> {
        let staged = self
            .staged
            .iter()
            .map(|name| (name, BackendKind::Age))
            .chain(
                self.staged_items
                    .iter()
                    .map(|(name, _)| (name, BackendKind::Keychain)),
            )
            .chain(
                self.staged_vault
                    .iter()
                    .map(|(name, _)| (name, BackendKind::Vault)),
            );
        for (name, backend) in staged {
            if let Some(entry) = self.manifest.entry(name)
                && entry.backend != backend
            {
                return Err(Error::io(
                    format!("cannot commit credential {name}"),
                    io::Error::other(format!(
                        "its value was staged in {} but its entry names {} (a bug in agentcred)",
                        backend.as_str(),
                        entry.backend.as_str()
                    )),
                ));
            }
        }
        Ok(())
    }

    /// The keychain account the manifest (as changed so far) names for `name`.
    fn final_item(&self, name: &CredentialName) -> Option<String> {
        let entry = self.manifest.entry(name)?;
        keychain::entry_account(&self.manifest.store_id, name, entry)
    }

    /// Write the new manifest (the commit point), then move staged files into place and
    /// delete what the new manifest no longer names.
    pub fn commit(mut self) -> Result<()> {
        self.check_staged_backends()?;
        let dir = self.store.secrets_dir();
        let err = |e| self.store.io_err("commit", e);
        if !self.staged.is_empty() {
            util::fs::sync_dir(&dir).map_err(err)?;
        }
        if !self.staged_root.is_empty() {
            util::fs::sync_dir(self.store.root()).map_err(err)?;
        }
        // A removed keychain credential's item is deleted only after the commit (below):
        // deleting first would destroy the value when the commit then fails (a full disk),
        // leaving the store naming an item that is gone. So the keychain must answer now,
        // before anything changes; an item a later failure leaves behind carries a label
        // naming its store and credential.
        if let Some(name) = self
            .committed_items
            .keys()
            .find(|name| self.manifest.entry(name).is_none())
        {
            crate::crypto::os_keychain::probe().map_err(|reason| Error::Keychain {
                action: format!("delete credential {name} from"),
                reason,
                for_identity: false,
            })?;
        }
        // The entry of a value written to Vault records the version written.
        for (name, written) in &self.staged_vault {
            if let Some(entry) = self.manifest.credentials.get_mut(name.as_str())
                && entry.backend == BackendKind::Vault
                && entry.sha256.as_deref() == Some(written.tag.as_str())
            {
                entry.vault_version = Some(written.version);
            }
        }
        // Likewise a removed vault credential's path; and the rotation dates of every
        // vault credential written or whose dates changed are mirrored before the commit.
        for name in self.vault_before.keys() {
            if self.manifest.entry(name).is_none() {
                self.vault.get()?.delete(name)?;
            }
        }
        for (name, entry) in &self.manifest.credentials {
            if entry.backend != BackendKind::Vault {
                continue;
            }
            let Ok(name) = CredentialName::parse(name) else {
                continue;
            };
            let metadata = backend::vault::metadata(entry, &self.manifest.defaults);
            let staged = self.staged_vault.iter().any(|(n, _)| *n == name);
            if staged || self.vault_before.get(&name) != Some(&metadata) {
                self.vault.get()?.set_metadata(&name, &metadata)?;
            }
        }
        self.manifest.generation += 1;
        let text = self.manifest.render(&self.key);
        util::fs::write_atomic(self.store.root(), manifest::FILE_NAME, text.as_bytes())
            .map_err(err)?;
        self.committed = true;

        let touched: BTreeSet<&CredentialName> = self
            .staged
            .iter()
            .chain(self.staged_items.iter().map(|(name, _)| name))
            .chain(self.staged_vault.iter().map(|(name, _)| name))
            .chain(&self.removed)
            .collect();
        let mut files_changed = false;
        for name in touched {
            let age_now = self
                .manifest
                .entry(name)
                .is_some_and(|entry| entry.backend == BackendKind::Age);
            if self.staged.contains(name) && age_now {
                util::fs::rename_durable(&dir, &age::pending_name(name), &age::file_name(name))
                    .map_err(err)?;
            } else {
                if self.staged.contains(name) {
                    util::fs::remove_if_exists(&dir.join(age::pending_name(name))).map_err(err)?;
                }
                if !age_now {
                    files_changed |=
                        util::fs::remove_if_exists(&dir.join(age::file_name(name))).map_err(err)?;
                }
            }
        }
        if files_changed {
            util::fs::sync_dir(&dir).map_err(err)?;
        }
        // The store key before recipients.txt: `roll_forward_root` relies on this order.
        for (pending, target) in &self.staged_root {
            util::fs::rename_durable(self.store.root(), pending, target).map_err(err)?;
        }
        if self.key_rotated {
            state::remember_store_key(&self.manifest.store_id, &self.key.fingerprint());
        }
        // Superseded keychain items: the old value after a replacement, and any item staged
        // but not kept. The commit has happened, so a failure is only worth a warning.
        let mut superseded: Vec<(&CredentialName, &String)> = Vec::new();
        for (name, account) in &self.committed_items {
            if self.manifest.entry(name).is_none()
                || self.final_item(name).as_ref() != Some(account)
            {
                superseded.push((name, account));
            }
        }
        for (name, account) in &self.staged_items {
            if self.final_item(name).as_ref() != Some(account)
                && !self.committed_items.values().any(|a| a == account)
            {
                superseded.push((name, account));
            }
        }
        for (name, account) in superseded {
            if let Err(e) = keychain::delete(name, account) {
                eprintln!(
                    "warning: the old keychain item {}/{account} of {name} is left behind: {e}",
                    crate::crypto::os_keychain::SERVICE
                );
            }
        }
        // A credential moved out of Vault (`add --force --backend age`) leaves its path.
        for name in self.vault_before.keys() {
            let moved = self
                .manifest
                .entry(name)
                .is_some_and(|entry| entry.backend != BackendKind::Vault);
            if moved && let Err(e) = self.vault.get().and_then(|v| v.delete(name)) {
                eprintln!("warning: the old value of {name} is left in Vault: {e}");
            }
        }
        state::note_generation(&self.manifest.store_id, self.manifest.generation);
        Ok(())
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.committed {
            for (pending, _) in &self.staged_root {
                let _ = util::fs::remove_if_exists(&self.store.root().join(pending));
            }
            for name in &self.staged {
                let _ = util::fs::remove_if_exists(
                    &self.store.secrets_dir().join(age::pending_name(name)),
                );
            }
            for (name, account) in &self.staged_items {
                if self.committed_items.get(name) != Some(account) {
                    let _ = keychain::delete(name, account);
                }
            }
            // Put back what each Vault write replaced, newest first, tagged under the
            // key that stays (not a new one this transaction made).
            let key = match (self.key_rotated, self.previous_keys.first()) {
                (true, Some(old)) => old,
                _ => &self.key,
            };
            let store_id = &self.manifest.store_id;
            for (name, written) in self.staged_vault.iter().rev() {
                let restored = self
                    .vault
                    .get()
                    .and_then(|v| v.restore(key, store_id, name, written));
                if let Err(e) = restored {
                    eprintln!(
                        "warning: the new value of {name} stays in Vault, though nothing was committed: {e}"
                    );
                }
            }
        }
    }
}
