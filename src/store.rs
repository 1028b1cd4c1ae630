//! The store directory: its files, its lock, and the two ways in.
//!
//! [`Reader`] takes a shared lock, verifies the seal and hands out entries and values.
//! [`Txn`] takes the exclusive lock, verifies everything, stages new values (secret files,
//! keychain items), and commits by renaming a new manifest into place. A failure before the
//! commit removes what was staged, so the store is left byte-for-byte as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use age::x25519;
use secrecy::SecretSlice;

use crate::backend::{self, age_file, keychain};
use crate::credential::{AgentName, BackendKind, CredentialName};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::identity::Identity;
use crate::integrity::{self, StoreKey, sha256_hex};
use crate::manifest::{self, Agent, Defaults, Entry, Header, Manifest};
use crate::state;

pub const RECIPIENTS: &str = "recipients.txt";
pub const STORE_KEY: &str = "storekey.age";
pub const SECRETS: &str = "secrets";
const LOCK: &str = ".lock";
/// How long a command waits for another one's store lock before giving up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
const GITIGNORE: &str = ".gitignore";
const GITIGNORE_TEXT: &str = "\
# Written by agentcred init: machine-local files that do not belong in git.
/cache/
/audit.jsonl
/.lock
/secrets/*.pending
.tmp-*
";

pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join(SECRETS)
    }

    fn io_err(&self, what: &str, e: io::Error) -> Error {
        Error::io(format!("cannot {what} in {}", self.root.display()), e)
    }

    /// Open an existing store, refusing one that others could write to.
    pub fn open(root: &Path) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        match std::fs::symlink_metadata(root.join(manifest::FILE_NAME)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::StoreNotFound {
                    path: root.to_path_buf(),
                });
            }
            Err(e) => return Err(store.io_err("read the manifest", e)),
        }
        for dir in [store.root.clone(), store.secrets_dir()] {
            // The store path itself may be a symlink the user made (~/.local/share/agentcred
            // pointing elsewhere): follow it. Inside the store, nothing is followed.
            let meta = if dir == store.root {
                std::fs::metadata(&dir)
            } else {
                std::fs::symlink_metadata(&dir)
            }
            .map_err(|e| store.io_err("inspect the store", e));
            let meta = match meta {
                Ok(meta) => meta,
                // A store whose secrets/ was never created (no credential yet in git).
                Err(_) if dir != store.root => continue,
                Err(e) => return Err(e),
            };
            if dir != store.root && !meta.is_dir() {
                return Err(Error::integrity(
                    SECRETS,
                    "it is not a directory (a symlink?)",
                ));
            }
            if meta.mode() & 0o022 != 0 {
                return Err(Error::StoreTooOpen { path: dir });
            }
        }
        Ok(store)
    }

    /// Create a new store: directories, recipients, store key, empty manifest. Returns the
    /// store and its key's fingerprint (for `AGENTCRED_STORE_FINGERPRINT`).
    pub fn create(root: &Path, recipients: &[x25519::Recipient]) -> Result<(Store, String)> {
        let store = Store {
            root: root.to_path_buf(),
        };
        if root.join(manifest::FILE_NAME).exists() {
            return Err(Error::StoreExists {
                path: root.to_path_buf(),
            });
        }
        let err = |e| store.io_err("create the store", e);
        fsutil::create_private_dir(root).map_err(err)?;
        fsutil::create_private_dir(&store.secrets_dir()).map_err(err)?;
        let recipients_text = render_recipients(recipients);
        let store_id = manifest::new_store_id()?;
        let key = StoreKey::generate()?;
        let key_file = integrity::encrypt_store_key(&key, &store_id, recipients)?;
        let mut manifest = Manifest::new(store_id, sha256_hex(recipients_text.as_bytes()));
        let text = manifest.render(&key);
        fsutil::write_atomic(root, RECIPIENTS, recipients_text.as_bytes()).map_err(err)?;
        fsutil::write_atomic(root, STORE_KEY, &key_file).map_err(err)?;
        fsutil::write_atomic(root, GITIGNORE, GITIGNORE_TEXT.as_bytes()).map_err(err)?;
        // The manifest last: until it exists, this is not a store.
        fsutil::write_atomic(root, manifest::FILE_NAME, text.as_bytes()).map_err(err)?;
        let fingerprint = key.fingerprint();
        state::check_store_key(root, &manifest.store_id, &fingerprint)?;
        Ok((store, fingerprint))
    }

    /// Take the store lock. A reader of a store it cannot write (a read-only checkout, a
    /// store owned by someone else) goes on without one: no writer can be at work there.
    fn lock(&self, exclusive: bool) -> Result<Option<File>> {
        let path = self.root.join(LOCK);
        let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let opened = match OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(&path)
        {
            Ok(file) if !exclusive => Ok(file),
            _ => OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(flags)
                .open(&path),
        };
        let file = match opened {
            Ok(file) => file,
            Err(e)
                if !exclusive
                    && matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.io_err("lock the store", e)),
        };
        // Writers hold the lock for milliseconds (seconds when re-encrypting a large store),
        // so a wait this long means something is stuck: say so rather than hang.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            let attempt = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match attempt {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::io(
                        format!("cannot lock the store in {}", self.root.display()),
                        io::Error::other(format!(
                            "another agentcred has held its lock for {} s",
                            LOCK_WAIT.as_secs()
                        )),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(self.io_err("lock the store", e));
                }
            }
        }
    }

    /// The manifest's text with line ends normalized once, here, so the seal check and every
    /// parse (including the fast paths that look for `[table.NAME]\n`) see the same bytes.
    /// A Windows checkout's CRLF reads as LF; a lone CR has no business in it and is refused.
    pub(crate) fn read_manifest(&self) -> Result<String> {
        let bytes = fsutil::read_nofollow(&self.root.join(manifest::FILE_NAME))
            .map_err(|e| self.io_err("read the manifest", e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::integrity(manifest::FILE_NAME, "it is not UTF-8 text"))?;
        manifest::normalize_line_ends(text)
    }

    pub(crate) fn store_key(&self, identity: &Identity, store_id: &str) -> Result<StoreKey> {
        let key = self.store_key_untrusted(identity, store_id)?;
        state::check_store_key(&self.root, store_id, &key.fingerprint())?;
        Ok(key)
    }

    /// The store key without checking it against what this machine remembers: only for
    /// `doctor --trust`, which shows it to the user before remembering it.
    pub(crate) fn store_key_untrusted(
        &self,
        identity: &Identity,
        store_id: &str,
    ) -> Result<StoreKey> {
        let bytes = fsutil::read_nofollow(&self.root.join(STORE_KEY)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::integrity(STORE_KEY, "it is missing")
            } else {
                self.io_err("read the store key", e)
            }
        })?;
        integrity::decrypt_store_key(identity, store_id, &bytes)
    }

    /// The recipients and the hash of `recipients.txt`.
    pub fn recipients(&self) -> Result<(Vec<x25519::Recipient>, String)> {
        let bytes = fsutil::read_nofollow(&self.root.join(RECIPIENTS))
            .map_err(|e| self.io_err("read recipients.txt", e))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::integrity(RECIPIENTS, "it is not UTF-8 text"))?;
        let mut recipients = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let recipient = line.parse::<x25519::Recipient>().map_err(|_| {
                Error::integrity(
                    RECIPIENTS,
                    format!("line {} is not an age recipient (age1...)", index + 1),
                )
            })?;
            recipients.push(recipient);
        }
        if recipients.is_empty() {
            return Err(Error::integrity(RECIPIENTS, "it names no recipient"));
        }
        Ok((recipients, sha256_hex(&bytes)))
    }

    /// Open for reading: shared lock, store key, seal verified.
    pub fn reader<'a>(&'a self, identity: &'a Identity) -> Result<Reader<'a>> {
        let lock = self.lock(false)?;
        let text = self.read_manifest()?;
        let header = manifest::header(&text)?;
        let key = self.store_key(identity, &header.store_id)?;
        if !manifest::seal_ok(&text, &key)? {
            // Parse everything to say what changed.
            Manifest::load(&text, Some(&key))?;
            return Err(Error::integrity(
                manifest::FILE_NAME,
                "the seal does not match",
            ));
        }
        warn_if_rolled_back(&header);
        Ok(Reader {
            store: self,
            identity,
            key,
            _lock: lock,
            text,
            header,
        })
    }

    /// Read the manifest without verifying it, for metadata commands run without an
    /// unlocked identity. Callers say so to the user.
    pub fn manifest_unverified(&self) -> Result<Manifest> {
        let _lock = self.lock(false)?;
        Manifest::load(&self.read_manifest()?, None)
    }

    /// Begin a write transaction.
    pub fn begin<'a>(&'a self, identity: &'a Identity) -> Result<Txn<'a>> {
        Ok(self.begin_with(identity, false)?.0)
    }

    /// What `doctor --trust` would remember: the store id, its key's fingerprint and the
    /// generation, from a store whose seal verifies under that key.
    pub fn trust_preview(&self, identity: &Identity) -> Result<(String, String, u64)> {
        let _lock = self.lock(false)?;
        let text = self.read_manifest()?;
        let header = manifest::header(&text)?;
        let key = self.store_key_untrusted(identity, &header.store_id)?;
        if !manifest::seal_ok(&text, &key)? {
            return Err(Error::integrity(
                manifest::FILE_NAME,
                "its seal does not match; check it and `agentcred doctor --reseal` first",
            ));
        }
        Ok((header.store_id, key.fingerprint(), header.generation))
    }

    /// Begin a transaction over a manifest that may have been edited by hand, for
    /// `doctor --reseal`: nothing is verified but that it parses and the store key opens.
    /// Returns what the edit changed, for the caller to show and confirm before committing.
    pub fn begin_reseal<'a>(&'a self, identity: &'a Identity) -> Result<(Txn<'a>, Reseal)> {
        let (txn, reseal) = self.begin_with(identity, true)?;
        Ok((txn, reseal.unwrap_or_default()))
    }

    fn begin_with<'a>(
        &'a self,
        identity: &'a Identity,
        reseal: bool,
    ) -> Result<(Txn<'a>, Option<Reseal>)> {
        let lock = self.lock(true)?;
        let text = self.read_manifest()?;
        let header = manifest::header(&text)?;
        let key = self.store_key(identity, &header.store_id)?;
        let (mut manifest, changes) = if reseal {
            let manifest = Manifest::parse_any(&text)?;
            let changes = Reseal {
                seal_matched: manifest::seal_ok(&text, &key)?,
                edits: manifest::hand_edits(&manifest, &key),
                recipients_changed: false,
            };
            (manifest, Some(changes))
        } else {
            (Manifest::load(&text, Some(&key))?, None)
        };
        if reseal {
            warn_if_rolled_back(&header);
        } else {
            refuse_if_rolled_back(&header)?;
        }
        let (recipients, recipients_sha256) = self.recipients()?;
        let mut changes = changes;
        if recipients_sha256 != manifest.recipients_sha256 {
            match changes.as_mut() {
                Some(changes) => {
                    changes.recipients_changed = true;
                    manifest.recipients_sha256 = recipients_sha256;
                }
                None => {
                    return Err(Error::integrity(
                        RECIPIENTS,
                        "it was changed outside agentcred; nothing will be encrypted to it until that is resolved",
                    ));
                }
            }
        }
        let committed_items = manifest
            .credentials
            .iter()
            .filter(|(_, entry)| entry.backend == BackendKind::Keychain)
            .filter_map(|(name, entry)| {
                let name = CredentialName::parse(name).ok()?;
                let account = keychain::entry_account(&manifest.store_id, &name, entry)?;
                Some((name, account))
            })
            .collect();
        let txn = Txn {
            store: self,
            _lock: lock,
            key,
            recipients,
            manifest,
            staged: Vec::new(),
            staged_items: Vec::new(),
            committed_items,
            removed: Vec::new(),
            committed: false,
        };
        txn.roll_forward()?;
        Ok((txn, changes))
    }
}

/// What `doctor --reseal` is about to accept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reseal {
    /// The seal already matched: there is nothing to reseal.
    pub seal_matched: bool,
    /// Entries changed or added by hand (see [`manifest::hand_edits`]).
    pub edits: Vec<String>,
    /// `recipients.txt` no longer matches the hash in the manifest.
    pub recipients_changed: bool,
}

fn warn_if_rolled_back(header: &Header) {
    if let Some(seen) = state::note_generation(&header.store_id, header.generation) {
        eprintln!(
            "warning: this store is at generation {}, older than generation {seen} seen on this machine (an old git checkout, or a rollback)",
            header.generation
        );
    }
}

/// Writes are refused on a store older than one this machine has seen: building on a
/// rollback could re-encrypt to a removed recipient or restore an agent's old rights.
fn refuse_if_rolled_back(header: &Header) -> Result<()> {
    match state::note_generation(&header.store_id, header.generation) {
        Some(seen) => Err(Error::RolledBack {
            generation: header.generation,
            seen,
        }),
        None => Ok(()),
    }
}

fn render_recipients(recipients: &[x25519::Recipient]) -> String {
    let mut text = String::from("# age recipients of this agentcred store, one per line.\n");
    for r in recipients {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    text
}

/// A verified, read-locked view of the store.
pub struct Reader<'a> {
    store: &'a Store,
    identity: &'a Identity,
    key: StoreKey,
    _lock: Option<File>,
    text: String,
    header: Header,
}

impl Reader<'_> {
    pub fn store_id(&self) -> &str {
        &self.header.store_id
    }

    /// One entry, through the fast path (no full parse).
    pub fn entry(&self, name: &CredentialName) -> Result<Entry> {
        manifest::find_entry(&self.text, name)?.ok_or_else(|| Error::CredentialNotFound {
            name: name.to_string(),
        })
    }

    /// The store's rotation defaults, without parsing every entry.
    pub fn defaults(&self) -> Result<Defaults> {
        manifest::find_defaults(&self.text)
    }

    /// One agent, through the fast path; `Ok(None)` when there is no such agent.
    pub fn agent(&self, name: &AgentName) -> Result<Option<Agent>> {
        manifest::find_agent(&self.text, name)
    }

    /// The whole manifest (already verified by its seal).
    pub fn manifest(&self) -> Result<Manifest> {
        Manifest::parse_sealed(&self.text)
    }

    pub fn value(&self, name: &CredentialName, entry: &Entry) -> Result<SecretSlice<u8>> {
        backend::read(
            self.store,
            self.identity,
            &self.key,
            &self.header.store_id,
            name,
            entry,
        )
    }
}

/// An exclusive, verified write transaction.
///
/// Values are staged where they will live: an age value as `secrets/NAME.age.pending`, a
/// keychain value as a new item whose account carries a version (see
/// [`backend::keychain`]). The manifest rename is the commit point. After it, pending
/// files are renamed into place and superseded keychain items deleted; without it
/// (an error, or the `Txn` dropped), staged files and items are removed again. The one
/// exception is `rm` of a keychain credential: a keychain has no rename, so its item is
/// deleted just before the commit, and a failure there leaves the manifest unchanged.
pub struct Txn<'a> {
    store: &'a Store,
    _lock: Option<File>,
    key: StoreKey,
    recipients: Vec<x25519::Recipient>,
    pub manifest: Manifest,
    /// Names with a `NAME.age.pending` written by this transaction.
    staged: Vec<CredentialName>,
    /// Keychain items written by this transaction: name and account.
    staged_items: Vec<(CredentialName, String)>,
    /// Keychain items the manifest referenced when the transaction began.
    committed_items: BTreeMap<CredentialName, String>,
    removed: Vec<CredentialName>,
    committed: bool,
}

impl Txn<'_> {
    /// Finish a commit that a killed writer left between its two renames, and drop
    /// pending files of commits that never happened.
    fn roll_forward(&self) -> Result<()> {
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
                fsutil::remove_if_exists(&dirent.path()).map_err(err)?;
                continue;
            }
            let Some(stem) = file_name.strip_suffix(".age.pending") else {
                continue;
            };
            let expected = CredentialName::parse(stem)
                .ok()
                .and_then(|name| self.manifest.entry(&name).and_then(|e| e.sha256.clone()));
            let bytes = fsutil::read_nofollow(&dirent.path()).map_err(err)?;
            if expected.is_some_and(|sha| sha == sha256_hex(&bytes)) {
                fsutil::rename_durable(&dir, file_name, &format!("{stem}.age")).map_err(err)?;
            } else {
                fsutil::remove_if_exists(&dirent.path()).map_err(err)?;
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
        }
    }

    /// Encrypt a value for `name` and stage it; returns the file's SHA-256 for the entry.
    fn stage_age_file(&mut self, name: &CredentialName, value: &[u8]) -> Result<String> {
        let plain = integrity::seal_value(&self.manifest.store_id, name.as_str(), value);
        let ciphertext = integrity::encrypt_to(&self.recipients, &plain)?;
        let dir = self.store.secrets_dir();
        let err = |e| self.store.io_err("write a secret", e);
        fsutil::create_private_dir(&dir).map_err(err)?;
        let temp = fsutil::write_temp(&dir, &ciphertext).map_err(err)?;
        temp.persist(dir.join(age_file::pending_name(name)))
            .map_err(|e| err(e.error))?;
        self.staged.push(name.clone());
        Ok(sha256_hex(&ciphertext))
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
        let staged = self
            .staged
            .iter()
            .map(|name| (name, BackendKind::Age))
            .chain(
                self.staged_items
                    .iter()
                    .map(|(name, _)| (name, BackendKind::Keychain)),
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
            fsutil::sync_dir(&dir).map_err(err)?;
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
            crate::keychain::probe().map_err(|reason| Error::Keychain {
                action: format!("delete credential {name} from"),
                reason,
                for_identity: false,
            })?;
        }
        self.manifest.generation += 1;
        let text = self.manifest.render(&self.key);
        fsutil::write_atomic(self.store.root(), manifest::FILE_NAME, text.as_bytes())
            .map_err(err)?;
        self.committed = true;

        let touched: BTreeSet<&CredentialName> = self
            .staged
            .iter()
            .chain(self.staged_items.iter().map(|(name, _)| name))
            .chain(&self.removed)
            .collect();
        let mut files_changed = false;
        for name in touched {
            let age_now = self
                .manifest
                .entry(name)
                .is_some_and(|entry| entry.backend == BackendKind::Age);
            if self.staged.contains(name) && age_now {
                fsutil::rename_durable(
                    &dir,
                    &age_file::pending_name(name),
                    &age_file::file_name(name),
                )
                .map_err(err)?;
            } else {
                if self.staged.contains(name) {
                    fsutil::remove_if_exists(&dir.join(age_file::pending_name(name)))
                        .map_err(err)?;
                }
                if !age_now {
                    files_changed |= fsutil::remove_if_exists(&dir.join(age_file::file_name(name)))
                        .map_err(err)?;
                }
            }
        }
        if files_changed {
            fsutil::sync_dir(&dir).map_err(err)?;
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
                    crate::keychain::SERVICE
                );
            }
        }
        state::note_generation(&self.manifest.store_id, self.manifest.generation);
        Ok(())
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.committed {
            for name in &self.staged {
                let _ = fsutil::remove_if_exists(
                    &self.store.secrets_dir().join(age_file::pending_name(name)),
                );
            }
            for (name, account) in &self.staged_items {
                if self.committed_items.get(name) != Some(account) {
                    let _ = keychain::delete(name, account);
                }
            }
        }
    }
}
