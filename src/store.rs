//! The store directory: its files, its lock, and the two ways in.
//!
//! [`Reader`] takes a shared lock, verifies the seal and hands out entries and values.
//! [`Txn`] takes the exclusive lock, verifies everything, stages new values (secret files,
//! keychain items, Vault versions, a new store key and recipients), and commits by renaming
//! a new manifest into place. A failure before the commit removes what was staged, so the
//! store is left byte-for-byte as it was.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretSlice};

use crate::backend::{self, LazyVault, age_file, keychain, vault};
use crate::credential::{AgentName, BackendKind, CredentialName};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::identity::Identity;
use crate::integrity::{self, StoreKey, StoreKeyFile, sha256_hex};
use crate::manifest::{self, Agent, Defaults, Entry, Header, Manifest};
use crate::recipient::{self, Recipient};
use crate::state;

pub const RECIPIENTS: &str = "recipients.txt";
pub const STORE_KEY: &str = "storekey.age";
/// The new `recipients.txt` and `storekey.age` of a recipients change, before its commit.
pub const PENDING_RECIPIENTS: &str = "recipients.txt.pending";
pub const PENDING_STORE_KEY: &str = "storekey.age.pending";
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
/*.pending
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
    /// `vault` is where `vault` credentials will live (`init --vault-addr`).
    pub fn create(
        root: &Path,
        recipients: &[Recipient],
        vault: Option<vault::Requested>,
    ) -> Result<(Store, String)> {
        let store = Store {
            root: root.to_path_buf(),
        };
        if root.join(manifest::FILE_NAME).exists() {
            return Err(Error::StoreExists {
                path: root.to_path_buf(),
            });
        }
        let store_id = manifest::new_store_id()?;
        let vault = vault
            .map(|v| vault::Settings::new(Some(v.addr), v.mount, v.prefix, &store_id))
            .transpose()?;
        let err = |e| store.io_err("create the store", e);
        fsutil::create_private_dir(root).map_err(err)?;
        fsutil::create_private_dir(&store.secrets_dir()).map_err(err)?;
        let recipients_text = recipient::render_file(recipients);
        let key = StoreKey::generate()?;
        let key_file = integrity::encrypt_store_key(&key, &[], &store_id, recipients)?;
        let mut manifest = Manifest::new(store_id, sha256_hex(recipients_text.as_bytes()));
        manifest.vault = vault;
        let text = manifest.render(&key);
        fsutil::write_atomic(root, RECIPIENTS, recipients_text.as_bytes()).map_err(err)?;
        fsutil::write_atomic(root, STORE_KEY, &key_file).map_err(err)?;
        fsutil::write_atomic(root, GITIGNORE, GITIGNORE_TEXT.as_bytes()).map_err(err)?;
        // The manifest last: until it exists, this is not a store.
        fsutil::write_atomic(root, manifest::FILE_NAME, text.as_bytes()).map_err(err)?;
        let fingerprint = key.fingerprint();
        state::check_store_key(root, &manifest.store_id, &fingerprint, &[])?;
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

    /// Decrypt a store key file (`storekey.age` or its pending replacement).
    fn read_key_file(
        &self,
        identity: &Identity,
        store_id: &str,
        file: &str,
    ) -> Result<Option<StoreKeyFile>> {
        let Some(bytes) = fsutil::read_optional(&self.root.join(file))
            .map_err(|e| self.io_err("read the store key", e))?
        else {
            return Ok(None);
        };
        integrity::decrypt_store_key(identity, store_id, &bytes, file).map(Some)
    }

    /// The store key that seals `text`, and whether it does. That is `storekey.age`, or,
    /// when a writer died between committing a recipients change and renaming its files
    /// (the pending `recipients.txt` is the one the manifest names), the pending key file.
    /// When neither seals the manifest, the key of `storekey.age` (the caller then says
    /// what changed). The key is checked against what this machine remembers.
    pub(crate) fn key_for(
        &self,
        identity: &Identity,
        header: &Header,
        text: &str,
    ) -> Result<(StoreKeyFile, bool)> {
        let (file, sealed) = self.key_for_untrusted(identity, header, text)?;
        state::check_store_key(
            &self.root,
            &header.store_id,
            &file.key.fingerprint(),
            &file.previous_fingerprints(),
        )?;
        Ok((file, sealed))
    }

    /// [`Store::key_for`] without checking the key against what this machine remembers:
    /// only for `doctor --trust`, which shows it to the user before remembering it.
    pub(crate) fn key_for_untrusted(
        &self,
        identity: &Identity,
        header: &Header,
        text: &str,
    ) -> Result<(StoreKeyFile, bool)> {
        let store_id = &header.store_id;
        let missing = || Error::integrity(STORE_KEY, "it is missing");
        let seals = |file: &StoreKeyFile| manifest::seal_ok(text, &file.key);
        let main = self.read_key_file(identity, store_id, STORE_KEY);
        let (file, sealed) = match main {
            Ok(Some(file)) if seals(&file)? => (file, true),
            main if self.change_committed(&header.recipients_sha256) => {
                match self.read_key_file(identity, store_id, PENDING_STORE_KEY) {
                    Ok(Some(pending)) if seals(&pending)? => (pending, true),
                    // The committed change removed us: its key is not ours to open.
                    Err(e @ Error::NotARecipient { .. }) => return Err(e),
                    _ => (main?.ok_or_else(missing)?, false),
                }
            }
            main => (main?.ok_or_else(missing)?, false),
        };
        Ok((file, sealed))
    }

    /// Whether a recipients change is committed but not yet renamed into place: the
    /// pending `recipients.txt` is the one the manifest names.
    fn change_committed(&self, recipients_sha256: &str) -> bool {
        matches!(
            fsutil::read_optional(&self.root.join(PENDING_RECIPIENTS)),
            Ok(Some(bytes)) if sha256_hex(&bytes) == recipients_sha256
        )
    }

    /// `recipients.txt`: its recipients and its hash.
    pub fn recipients(&self) -> Result<RecipientsFile> {
        self.recipients_file(RECIPIENTS)?
            .ok_or_else(|| Error::integrity(RECIPIENTS, "it is missing"))
    }

    /// The recipients a manifest committed to (its `recipients_sha256`): `recipients.txt`,
    /// or the pending file a writer killed after its commit left, if that is the one.
    pub fn committed_recipients(&self, recipients_sha256: &str) -> Result<RecipientsFile> {
        let current = self.recipients();
        if matches!(&current, Ok(file) if file.sha256 == recipients_sha256) {
            return current;
        }
        match self.recipients_file(PENDING_RECIPIENTS) {
            Ok(Some(pending)) if pending.sha256 == recipients_sha256 => Ok(pending),
            _ => current,
        }
    }

    fn recipients_file(&self, file: &str) -> Result<Option<RecipientsFile>> {
        let Some(bytes) = fsutil::read_optional(&self.root.join(file))
            .map_err(|e| self.io_err("read recipients.txt", e))?
        else {
            return Ok(None);
        };
        let text =
            String::from_utf8(bytes).map_err(|_| Error::integrity(file, "it is not UTF-8 text"))?;
        let lines = recipient::parse_file(&text).map_err(|line| {
            Error::integrity(
                file,
                format!(
                    "line {line} is not an age recipient (age1...) or an SSH public key (ssh-ed25519, ssh-rsa)"
                ),
            )
        })?;
        if lines.is_empty() {
            return Err(Error::integrity(file, "it names no recipient"));
        }
        Ok(Some(RecipientsFile {
            sha256: sha256_hex(text.as_bytes()),
            text,
            lines,
        }))
    }

    /// Finish a recipients change that a killed writer committed but did not rename into
    /// place (its pending `recipients.txt` is the one the manifest names), or drop the
    /// pending files of one that never committed. Also removes temp files of interrupted
    /// atomic writes.
    fn roll_forward_root(&self, recipients_sha256: &str) -> Result<()> {
        let err = |e| self.io_err("finish an interrupted write", e);
        if self.change_committed(recipients_sha256) {
            // The order of the commit: the key file first, then the recipients.
            if self.root.join(PENDING_STORE_KEY).exists() {
                fsutil::rename_durable(&self.root, PENDING_STORE_KEY, STORE_KEY).map_err(err)?;
            }
            fsutil::rename_durable(&self.root, PENDING_RECIPIENTS, RECIPIENTS).map_err(err)?;
        } else {
            for file in [PENDING_STORE_KEY, PENDING_RECIPIENTS] {
                fsutil::remove_if_exists(&self.root.join(file)).map_err(err)?;
            }
        }
        let entries = std::fs::read_dir(&self.root).map_err(err)?;
        for dirent in entries {
            let dirent = dirent.map_err(err)?;
            if dirent.file_name().to_string_lossy().starts_with(".tmp-") {
                fsutil::remove_if_exists(&dirent.path()).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Open for reading: shared lock, store key, seal verified. A store older than the
    /// generation this machine saw gets a warning (an old checkout may be deliberate).
    pub fn reader<'a>(&'a self, identity: &'a Identity) -> Result<Reader<'a>> {
        self.reader_with(identity, false)
    }

    /// [`reader`](Self::reader) for handing credentials to a program (`exec`): a rolled
    /// back store is refused, since a rollback can bring back a revoked grant.
    pub fn reader_for_exec<'a>(&'a self, identity: &'a Identity) -> Result<Reader<'a>> {
        self.reader_with(identity, true)
    }

    fn reader_with<'a>(&'a self, identity: &'a Identity, strict: bool) -> Result<Reader<'a>> {
        let lock = self.lock(false)?;
        let text = self.read_manifest()?;
        let header = manifest::header(&text)?;
        let (key_file, sealed) = self.key_for(identity, &header, &text)?;
        let key = key_file.key;
        if !sealed {
            // Parse everything to say what changed.
            Manifest::load(&text, Some(&key))?;
            return Err(Error::integrity(
                manifest::FILE_NAME,
                "the seal does not match",
            ));
        }
        if strict {
            refuse_if_rolled_back(&header, "run a program from")?;
        } else {
            warn_if_rolled_back(&header)?;
        }
        Ok(Reader {
            store: self,
            identity,
            key,
            _lock: lock,
            text,
            header,
            vault: OnceCell::new(),
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
        let (file, sealed) = self.key_for_untrusted(identity, &header, &text)?;
        let key = file.key;
        if !sealed {
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
        let (key_file, _) = self.key_for(identity, &header, &text)?;
        let StoreKeyFile { key, previous } = key_file;
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
            warn_if_rolled_back(&header)?;
        } else {
            refuse_if_rolled_back(&header, "write over")?;
        }
        self.roll_forward_root(&manifest.recipients_sha256)?;
        let recipients_file = self.recipients()?;
        let recipients = recipients_file.recipients();
        let mut changes = changes;
        if recipients_file.sha256 != manifest.recipients_sha256 {
            match changes.as_mut() {
                Some(changes) => {
                    changes.recipients_changed = true;
                    manifest.recipients_sha256 = recipients_file.sha256;
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
        let vault_before = manifest
            .credentials
            .iter()
            .filter(|(_, entry)| entry.backend == BackendKind::Vault)
            .filter_map(|(name, entry)| {
                let name = CredentialName::parse(name).ok()?;
                Some((name, backend::vault::metadata(entry, &manifest.defaults)))
            })
            .collect();
        let vault = LazyVault::new(manifest.vault.clone(), &manifest.store_id);
        let txn = Txn {
            store: self,
            identity,
            vault,
            vault_before,
            staged_vault: Vec::new(),
            _lock: lock,
            key,
            previous_keys: previous,
            key_rotated: false,
            recipients,
            manifest,
            staged_root: Vec::new(),
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

fn warn_if_rolled_back(header: &Header) -> Result<()> {
    if let Some(rollback) = state::note_generation(&header.store_id, header.generation)? {
        eprintln!(
            "warning: this store is at generation {}, older than generation {} {} (an old git checkout, or a rollback)",
            header.generation,
            rollback.seen,
            if rollback.pinned {
                "pinned by AGENTCRED_MIN_GENERATION"
            } else {
                "seen on this machine"
            }
        );
    }
    Ok(())
}

/// Writes are refused on a store older than one this machine has seen: building on a
/// rollback could re-encrypt to a removed recipient or restore an agent's old rights.
/// So is handing credentials to a program (`doing`: what is refused).
fn refuse_if_rolled_back(header: &Header, doing: &'static str) -> Result<()> {
    match state::note_generation(&header.store_id, header.generation)? {
        Some(rollback) => Err(Error::RolledBack {
            generation: header.generation,
            seen: rollback.seen,
            pinned: rollback.pinned,
            doing,
        }),
        None => Ok(()),
    }
}

/// A recipients file as read: its text, its recipient lines and its SHA-256.
pub struct RecipientsFile {
    pub text: String,
    pub lines: Vec<recipient::Line>,
    pub sha256: String,
}

impl RecipientsFile {
    pub fn recipients(&self) -> Vec<Recipient> {
        self.lines.iter().map(|l| l.recipient.clone()).collect()
    }
}

/// A verified, read-locked view of the store.
pub struct Reader<'a> {
    store: &'a Store,
    identity: &'a Identity,
    key: StoreKey,
    _lock: Option<File>,
    text: String,
    header: Header,
    vault: OnceCell<LazyVault>,
}

impl Reader<'_> {
    pub fn store_id(&self) -> &str {
        &self.header.store_id
    }

    /// The recipients the verified manifest committed to.
    pub fn recipients(&self) -> Result<RecipientsFile> {
        let file = self
            .store
            .committed_recipients(&self.header.recipients_sha256)?;
        if file.sha256 != self.header.recipients_sha256 {
            return Err(Error::integrity(
                RECIPIENTS,
                "it was changed outside agentcred; nothing will be encrypted to it until that is resolved",
            ));
        }
        Ok(file)
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

    /// The store's Vault settings and client (made on first use).
    pub fn vault(&self) -> Result<&LazyVault> {
        if let Some(vault) = self.vault.get() {
            return Ok(vault);
        }
        let settings = manifest::find_vault(&self.text)?;
        Ok(self
            .vault
            .get_or_init(|| LazyVault::new(settings, &self.header.store_id)))
    }

    pub fn value(&self, name: &CredentialName, entry: &Entry) -> Result<SecretSlice<u8>> {
        backend::read(
            self.store,
            self.identity,
            &self.key,
            &self.header.store_id,
            name,
            entry,
            &|| self.vault()?.get(),
        )
    }
}

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
    store: &'a Store,
    identity: &'a Identity,
    /// The Vault client, made on first use.
    vault: LazyVault,
    /// The `vault` credentials when the transaction began, with the metadata mirrored
    /// for each (to know whose changed).
    vault_before: BTreeMap<CredentialName, BTreeMap<String, String>>,
    /// Vault writes made by this transaction, with what they replaced.
    staged_vault: Vec<(CredentialName, backend::vault::Written)>,
    _lock: Option<File>,
    key: StoreKey,
    /// The store's earlier keys, newest first (carried in `storekey.age`).
    previous_keys: Vec<StoreKey>,
    /// `key` is a new one, made by [`Txn::change_recipients`].
    key_rotated: bool,
    recipients: Vec<Recipient>,
    pub manifest: Manifest,
    /// Pending files in the store's root written by this transaction (the store key and
    /// `recipients.txt`), in the order they are renamed after the commit.
    staged_root: Vec<(&'static str, &'static str)>,
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
        fsutil::create_private_dir(&dir).map_err(err)?;
        let temp = fsutil::write_temp(&dir, &ciphertext).map_err(err)?;
        temp.persist(dir.join(age_file::pending_name(name)))
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
                    let value =
                        age_file::read(self.store, self.identity, &store_id, &name, &entry)?;
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
        let temp = fsutil::write_temp(root, bytes).map_err(err)?;
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
            fsutil::sync_dir(&dir).map_err(err)?;
        }
        if !self.staged_root.is_empty() {
            fsutil::sync_dir(self.store.root()).map_err(err)?;
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
        fsutil::write_atomic(self.store.root(), manifest::FILE_NAME, text.as_bytes())
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
        // The store key before recipients.txt: `roll_forward_root` relies on this order.
        for (pending, target) in &self.staged_root {
            fsutil::rename_durable(self.store.root(), pending, target).map_err(err)?;
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
                    crate::keychain::SERVICE
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
        // Remember the new generation; a pin above it was already refused at `begin`.
        let _ = state::note_generation(&self.manifest.store_id, self.manifest.generation);
        Ok(())
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if !self.committed {
            for (pending, _) in &self.staged_root {
                let _ = fsutil::remove_if_exists(&self.store.root().join(pending));
            }
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
