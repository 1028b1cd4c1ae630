//! `Txn`: an exclusive, verified write transaction.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::ops::Bound;

use secrecy::ExposeSecret;

use crate::backend::{self, Backend};
use crate::crypto::identity::Identity;
use crate::crypto::integrity::{self, StoreKey, sha256_hex};
use crate::crypto::recipient::{self, Recipient};
use crate::error::{Error, Result};
use crate::manifest::excerpt::Keep;
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
    /// Every backend, each holding the work this transaction staged in it.
    pub(super) backends: Vec<Box<dyn Backend>>,
    pub(super) _lock: Option<File>,
    pub(super) key: StoreKey,
    /// The store's earlier keys, newest first (carried in `storekey.age`).
    pub(super) previous_keys: Vec<StoreKey>,
    /// `key` is a new one, made by [`Txn::change_recipients`].
    pub(super) key_rotated: bool,
    pub(super) recipients: Vec<Recipient>,
    pub(super) manifest: Manifest,
    /// Pending files in the store's root written by this transaction (the store key and
    /// `recipients.txt`), in the order they are renamed after the commit.
    pub(super) staged_root: Vec<(&'static str, &'static str)>,
    pub(super) removed: Vec<CredentialName>,
    pub(super) committed: bool,
    /// Begun by [`Store::begin_streamed`]: `manifest` holds no credentials, and the commit
    /// reads them from the committed file, changed as the plan says.
    pub(super) streamed: Option<StreamPlan>,
}

/// What a commit does to each entry it reads from the committed manifest, for a
/// transaction begun by [`Store::begin_streamed`].
pub(super) struct StreamPlan {
    /// How many credentials the committed manifest has (for `progress`).
    pub(super) count: usize,
    /// Write every value again for new recipients (a recipients change); the inner key is
    /// the one the values are tagged with when the store key was replaced.
    rewrite: Option<Option<StoreKey>>,
    marks: Vec<Mark>,
    /// The seal the store key made over the committed manifest when it was first read: the
    /// commit's read must give it again, so that it reads the same file (not another one
    /// sealed under the same key, or this one edited meanwhile).
    tag: String,
    /// The file's own seal must match too (all but `doctor --reseal`).
    sealed: bool,
}

/// A mark made on every entry of the backends `which` picks (see [`Txn::mark_every`]).
struct Mark {
    which: fn(BackendKind) -> bool,
    at: jiff::Timestamp,
    due: bool,
    action: &'static str,
    reason: Option<String>,
}

impl Txn<'_> {
    /// Finish a commit that a killed writer left between its two renames, and drop
    /// staged work of commits that never happened, in every backend.
    pub(super) fn roll_forward(&self) -> Result<()> {
        let ctx = self.ctx(&self.key);
        for backend in &self.backends {
            backend.recover(&ctx, &self.manifest)?;
        }
        Ok(())
    }

    /// What the backends need from this transaction, with `key` to tag values.
    fn ctx<'k>(&'k self, key: &'k StoreKey) -> backend::Ctx<'k> {
        self.store.backend_ctx(
            self.identity,
            key,
            &self.manifest.store_id,
            &self.recipients,
        )
    }

    /// A value as the committed `entry` records it.
    pub(super) fn read_value(
        &self,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<secrecy::SecretSlice<u8>> {
        self.read_value_with(&self.key, name, entry)
    }

    /// A value, checked against tags made with `key`.
    fn read_value_with(
        &self,
        key: &StoreKey,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<secrecy::SecretSlice<u8>> {
        let ctx = self.ctx(key);
        let backend = self.backend(entry.backend)?;
        backend
            .read(&ctx, name, entry)?
            .ok_or_else(|| backend.missing(&ctx, name))
    }

    fn backend(&self, kind: BackendKind) -> Result<&dyn Backend> {
        backend_of(&self.backends, kind)
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
        let ctx = self.store.backend_ctx(
            self.identity,
            &self.key,
            &self.manifest.store_id,
            &self.recipients,
        );
        backend_of_mut(&mut self.backends, backend)?.stage(&ctx, name, value)
    }

    /// The fingerprint of the store key this transaction commits with.
    pub fn key_fingerprint(&self) -> String {
        self.key.fingerprint()
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
        match self.streamed.as_mut() {
            // The values are written again as the commit reads their entries.
            Some(plan) => plan.rewrite = Some(old_key),
            None => self.rewrite_every_value(old_key.as_ref(), progress)?,
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

    /// Stage every value that a change of recipients writes again, recording each new hash
    /// or tag in its entry; values are read under `old_key` when the store key was replaced.
    fn rewrite_every_value(
        &mut self,
        old_key: Option<&StoreKey>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        // One entry at a time, found after the one before: not a copy of every entry (with
        // their history, 5 MB for 10,000), nor of every name.
        let total = self.manifest.credentials.len();
        let mut last: Option<String> = None;
        for done in 0..total {
            let next = match &last {
                None => self.manifest.credentials.iter().next(),
                Some(last) => self
                    .manifest
                    .credentials
                    .range::<str, _>((Bound::Excluded(last.as_str()), Bound::Unbounded))
                    .next(),
            };
            let Some((key, entry)) = next else {
                break;
            };
            let (key, entry) = (key.clone(), entry.clone());
            let name = CredentialName::parse(&key);
            last = Some(key);
            let Ok(name) = name else {
                continue;
            };
            if let (Some(sha256), Some(entry)) = (
                self.rewritten(&name, &entry, old_key)?,
                self.manifest.credentials.get_mut(name.as_str()),
            ) {
                entry.sha256 = Some(sha256);
            }
            progress(done + 1, total);
        }
        Ok(())
    }

    /// Stage `name`'s value again for a change of recipients when its backend needs that;
    /// returns what its entry's `sha256` becomes.
    fn rewritten(
        &mut self,
        name: &CredentialName,
        entry: &Entry,
        old_key: Option<&StoreKey>,
    ) -> Result<Option<String>> {
        if !self
            .backend(entry.backend)?
            .rewrite_on_recipients(old_key.is_some())
        {
            return Ok(None);
        }
        // Read under the key the value was tagged with, write under the new one.
        let value = self.read_value_with(old_key.unwrap_or(&self.key), name, entry)?;
        self.stage_value_for(entry.backend, name, value.expose_secret())
            .map(Some)
    }

    /// Record `action` (and make due, with `due`) on every entry whose backend `which`
    /// picks: `recipients rm` on all that the removed member could read.
    pub fn mark_every(
        &mut self,
        which: fn(BackendKind) -> bool,
        at: jiff::Timestamp,
        due: bool,
        action: &'static str,
        reason: Option<String>,
    ) {
        let mark = Mark {
            which,
            at,
            due,
            action,
            reason,
        };
        match self.streamed.as_mut() {
            Some(plan) => plan.marks.push(mark),
            None => {
                for entry in self.manifest.credentials.values_mut() {
                    mark.apply(entry);
                }
            }
        }
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

    /// Refuse to commit an entry whose backend is not where its value was staged (a value
    /// staged in the keychain under an entry that says `age` would be lost).
    fn check_staged_backends(&self) -> Result<()> {
        for backend in &self.backends {
            for name in backend.staged() {
                if let Some(entry) = self.manifest.entry(name)
                    && entry.backend != backend.kind()
                {
                    return Err(Error::io(
                        format!("cannot commit credential {name}"),
                        io::Error::other(format!(
                            "its value was staged in {} but its entry names {} (a bug in agentcred)",
                            backend.kind().as_str(),
                            entry.backend.as_str()
                        )),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Write the new manifest (the commit point), then move staged files into place and
    /// delete what the new manifest no longer names.
    pub fn commit(self) -> Result<()> {
        self.commit_with(&mut |_, _| {}, &mut || Ok(()))
    }

    /// [`Txn::commit`]; `progress` hears (done, total) after each credential that a
    /// streamed commit (see [`Store::begin_streamed`]) writes, and `ready` is called once
    /// all is staged, just before the commit point: its error stops the commit (the audit
    /// event is written there, after a streamed commit has read every value).
    pub fn commit_with(
        mut self,
        progress: &mut dyn FnMut(usize, usize),
        ready: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        if let Some(plan) = self.streamed.take() {
            return self.commit_streamed(plan, progress, ready);
        }
        self.check_staged_backends()?;
        let err = |e| self.store.io_err("commit", e);
        if !self.staged_root.is_empty() {
            util::fs::sync_dir(self.store.root()).map_err(err)?;
        }
        let ctx = self.store.backend_ctx(
            self.identity,
            &self.key,
            &self.manifest.store_id,
            &self.recipients,
        );
        for backend in &mut self.backends {
            backend.before_commit(&ctx, &mut self.manifest)?;
        }
        ready()?;
        self.manifest.generation += 1;
        let (manifest, key) = (&mut self.manifest, &self.key);
        let temp =
            util::fs::write_temp_with(self.store.root(), |out| manifest.render_into(key, out))
                .map_err(err)?;
        Self::commit_point(self.store, temp, &mut self.committed)?;

        let touched: BTreeSet<CredentialName> = self
            .backends
            .iter()
            .flat_map(|backend| backend.staged())
            .chain(&self.removed)
            .cloned()
            .collect();
        let mut warnings = Vec::new();
        let finished = self
            .backends
            .iter_mut()
            .try_for_each(|backend| backend.finish(&ctx, &self.manifest, &touched, &mut warnings));
        for warning in warnings {
            self.store.say(&format!("warning: {warning}"));
        }
        finished?;
        self.after_commit(false)
    }

    /// The commit point: the written manifest renamed into place. The transaction is
    /// committed from the rename on, even if making it durable then fails: what is staged
    /// belongs to the manifest in place, and is not to be undone.
    /// (`committed` is the transaction's flag, taken apart from it for the borrows of the
    /// commit's context.)
    fn commit_point(
        store: &Store,
        written: tempfile::TempPath,
        committed: &mut bool,
    ) -> Result<()> {
        let err = |e| store.io_err("commit", e);
        written
            .persist(store.root().join(manifest::FILE_NAME))
            .map_err(|e| err(e.error))?;
        *committed = true;
        util::fs::sync_dir(store.root()).map_err(err)
    }

    /// What follows the commit of the manifest and the backends' values: the files in the
    /// store's root, the memory of the key and generation, the value cache. `streamed`:
    /// the commit read the entries from the file and `self` holds none of them.
    fn after_commit(&self, streamed: bool) -> Result<()> {
        let err = |e| self.store.io_err("commit", e);
        // The store key before recipients.txt: `roll_forward_root` relies on this order.
        for (pending, target) in &self.staged_root {
            util::fs::rename_durable(self.store.root(), pending, target).map_err(err)?;
        }
        if self.key_rotated {
            state::remember_store_key(&self.manifest.store_id, &self.key.fingerprint());
        }
        // The value cache: a recipients change removes it (every file was encrypted again,
        // and `rm` replaced the key); any other commit drops the records it made stale.
        let cache = match (self.staged_root.is_empty(), streamed) {
            (true, false) => value_cache::prune(self.store.root(), &self.manifest),
            // No value changed (`doctor --reseal`): nothing in the cache is stale, and
            // `self` has no entries to keep its records by.
            (true, true) => Ok(()),
            (false, _) => value_cache::remove(self.store.root()).map(|_| ()),
        };
        if let Err(e) = cache {
            self.store.note(&format!(
                "agentcred: value cache not updated ({e}); it is checked at every read"
            ));
        }
        // Remember the new generation; a pin above it was already refused at `begin`.
        let _ = state::note_generation(&self.manifest.store_id, self.manifest.generation);
        Ok(())
    }
}

impl Txn<'_> {
    /// The commit of a transaction begun by [`Store::begin_streamed`]: the committed
    /// manifest is read again a section at a time, under the lock held since `begin`, and
    /// each entry is changed as `plan` says (its value written again, a mark) on its way
    /// to the new manifest, so that one entry at a time is in memory. The read checks the
    /// seal again: a manifest that changed since `begin` (written by something that ignored
    /// the lock) fails the commit, and everything staged is taken back.
    fn commit_streamed(
        mut self,
        plan: StreamPlan,
        progress: &mut dyn FnMut(usize, usize),
        ready: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let store = self.store;
        let err = |e| store.io_err("commit", e);
        if !self.staged_root.is_empty() {
            util::fs::sync_dir(store.root()).map_err(err)?;
        }
        // The committed manifest is sealed under the key `begin` found.
        let seal_key = committed_key(self.key_rotated, &self.key, &self.previous_keys).duplicate();
        let key = self.key.duplicate();
        let generation = self.manifest.generation;
        // The entries go from the file to the new one; `self` keeps the store's identity
        // for the backends meanwhile.
        let stand_in = Manifest::new(
            self.manifest.store_id.clone(),
            self.manifest.recipients_sha256.clone(),
        );
        let mut manifest = std::mem::replace(&mut self.manifest, stand_in);
        manifest.generation += 1;
        let mut failure = None;
        let written = util::fs::write_temp_with(store.root(), |out| {
            manifest.render_streamed(&key, out, &mut |put| {
                self.stream_entries(&plan, &seal_key, generation, put, progress, &mut failure)
            })?;
            // Every value staged is on disk before the manifest that names it.
            let ctx = store.backend_ctx(self.identity, &key, &manifest.store_id, &self.recipients);
            let staged = (self.backends.iter_mut())
                .try_for_each(|backend| backend.before_commit(&ctx, &mut manifest))
                .and_then(|()| ready());
            staged.map_err(|e| {
                failure = Some(e);
                io::Error::other("the commit stopped")
            })
        });
        self.manifest = manifest;
        let temp = written.map_err(|e| failure.take().unwrap_or_else(|| err(e)))?;
        Self::commit_point(self.store, temp, &mut self.committed)?;
        let ctx = self.store.backend_ctx(
            self.identity,
            &self.key,
            &self.manifest.store_id,
            &self.recipients,
        );
        let mut finished = Ok(());
        for backend in &mut self.backends {
            finished = finished.and_then(|()| backend.finish_in_place(&ctx));
        }
        finished?;
        self.after_commit(true)
    }

    /// Hand each credential of the committed manifest to `put`, as the commit of `plan`
    /// changes it, reading the file a section at a time and checking its seal under
    /// `seal_key`. An error of agentcred's goes to `failure` (the `io::Error` returned
    /// then only stops the write).
    fn stream_entries(
        &mut self,
        plan: &StreamPlan,
        seal_key: &StoreKey,
        generation: u64,
        put: &mut dyn FnMut(&str, Entry) -> io::Result<()>,
        progress: &mut dyn FnMut(usize, usize),
        failure: &mut Option<Error>,
    ) -> io::Result<()> {
        let changed = changed_under_lock;
        let stop = |failure: &mut Option<Error>, e: Error| {
            failure.get_or_insert(e);
            io::Error::other("the commit stopped")
        };
        let (mut input, head) = match self.store.reopen_manifest() {
            Ok(Some(opened)) => opened,
            Ok(None) => return Err(stop(failure, changed())),
            Err(e) => return Err(stop(failure, e)),
        };
        if head.header.generation != generation {
            return Err(stop(failure, changed()));
        }
        let mut done = 0;
        let mut put_failed = None;
        let mut each = |name: String, mut entry: Entry| {
            // `begin_streamed` took only names valid as stored.
            let Some(name) = CredentialName::stored(name) else {
                failure.get_or_insert_with(changed);
                return false;
            };
            if let Err(e) = self.change_entry(plan, &name, &mut entry) {
                failure.get_or_insert(e);
                return false;
            }
            if let Err(e) = put(name.as_str(), entry) {
                put_failed = Some(e);
                return false;
            }
            done += 1;
            progress(done, plan.count);
            true
        };
        let read = {
            let mut section = manifest::excerpt::hands_parsed(Keep::ForWrite, &mut each);
            manifest::excerpt::read_rest_tagged(&mut input, head, seal_key, &mut section)
        };
        if let Some(e) = put_failed {
            return Err(e);
        }
        let same = read?.is_some_and(|read| {
            integrity::tags_equal(&plan.tag, &read.tag) && (read.sealed || !plan.sealed)
        });
        match same {
            true => Ok(()),
            false => Err(stop(failure, changed())),
        }
    }

    /// One entry of a streamed commit, changed as `plan` says.
    fn change_entry(
        &mut self,
        plan: &StreamPlan,
        name: &CredentialName,
        entry: &mut Entry,
    ) -> Result<()> {
        // `begin_streamed` found only `age` entries, whose values stay in their backend.
        if entry.backend != BackendKind::Age {
            return Err(changed_under_lock());
        }
        if let Some(old_key) = &plan.rewrite
            && let Some(sha256) = self.rewritten(name, entry, old_key.as_ref())?
        {
            entry.sha256 = Some(sha256);
        }
        for mark in &plan.marks {
            mark.apply(entry);
        }
        Ok(())
    }
}

impl StreamPlan {
    /// The plan of a transaction over `count` credentials that changes nothing yet.
    pub(super) fn over(count: usize, tag: String, sealed: bool) -> StreamPlan {
        StreamPlan {
            count,
            rewrite: None,
            marks: Vec::new(),
            tag,
            sealed,
        }
    }
}

impl Mark {
    fn apply(&self, entry: &mut Entry) {
        if (self.which)(entry.backend) {
            domain::mark_entry(entry, self.at, self.due, self.action, self.reason.clone());
        }
    }
}

/// The key the committed store is under: `key`, or, when this transaction made a new one
/// (`key_rotated`), the one it replaced, which a recipients change put first among the
/// earlier keys.
fn committed_key<'k>(
    key_rotated: bool,
    key: &'k StoreKey,
    previous_keys: &'k [StoreKey],
) -> &'k StoreKey {
    match (key_rotated, previous_keys.first()) {
        (true, Some(old)) => old,
        _ => key,
    }
}

/// The error for a committed manifest that is not what `begin` read.
fn changed_under_lock() -> Error {
    Error::integrity(
        manifest::FILE_NAME,
        "it changed while a transaction held the lock (written by something that does not take it); nothing was committed",
    )
}

fn backend_of(backends: &[Box<dyn Backend>], kind: BackendKind) -> Result<&dyn Backend> {
    backends
        .iter()
        .find(|b| b.kind() == kind)
        .map(|b| b.as_ref())
        .ok_or_else(|| no_backend(kind))
}

fn backend_of_mut(
    backends: &mut [Box<dyn Backend>],
    kind: BackendKind,
) -> Result<&mut Box<dyn Backend>> {
    backends
        .iter_mut()
        .find(|b| b.kind() == kind)
        .ok_or_else(|| no_backend(kind))
}

fn no_backend(kind: BackendKind) -> Error {
    Error::io(
        format!("cannot use the {} backend", kind.as_str()),
        io::Error::other("it was not opened (a bug in agentcred)"),
    )
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.committed {
            for (pending, _) in &self.staged_root {
                let _ = util::fs::remove_if_exists(&self.store.root().join(pending));
            }
            // Undo under the key that stays (not a new one this transaction made).
            let ctx = self.store.backend_ctx(
                self.identity,
                committed_key(self.key_rotated, &self.key, &self.previous_keys),
                &self.manifest.store_id,
                &self.recipients,
            );
            let mut warnings = Vec::new();
            for backend in &mut self.backends {
                backend.undo(&ctx, &mut warnings);
            }
            for warning in warnings {
                self.store.say(&format!("warning: {warning}"));
            }
        }
    }
}
