//! The store directory: its files, its lock, and the two ways in.
//!
//! [`Reader`] takes a shared lock, verifies the seal and hands out entries and values.
//! [`Txn`] takes the exclusive lock, verifies everything, stages new values (secret files,
//! keychain items, Vault versions, a new store key and recipients), and commits by renaming
//! a new manifest into place. A failure before the commit removes what was staged, so the
//! store is left byte-for-byte as it was.

mod domain;
mod reader;
pub mod state;
mod txn;
pub mod value_cache;

pub use domain::{EntryEdit, NewEntry};
pub use reader::{CacheWrite, Reader, Slot};
pub use txn::Txn;

use std::cell::OnceCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::backend::{self, vault};
use crate::crypto::identity::Identity;
use crate::crypto::integrity::{self, StoreKey, StoreKeyFile, sha256_hex};
use crate::crypto::recipient::{self, Recipient};
use crate::error::{Error, Result};
use crate::manifest::excerpt::Keep;
use crate::manifest::{self, Header, Manifest};
use crate::model::credential::CredentialName;
use crate::util;
use crate::util::output::Say;

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

/// A manifest read in pieces ([`Store::stream_manifest`]): the lock, still held, the
/// store key that verified the seal (with the earlier keys its file carries), and the kept
/// text and its header.
pub(crate) struct Streamed {
    pub lock: Option<File>,
    pub key_file: StoreKeyFile,
    pub text: String,
    pub header: manifest::Header,
}

pub struct Store {
    root: PathBuf,
    /// Where warnings go (see [`Say`]).
    say: Say,
    /// `-v`: also give notes (what the value cache did).
    verbose: bool,
}

/// What a streamed reader keeps of the credentials' sections.
#[derive(Clone, Copy)]
enum Reading<'n> {
    /// This credential's section, unparsed (`get`).
    One(&'n crate::model::credential::CredentialName),
    /// Every credential, parsed as the `Keep` says: without history (`list`), or
    /// without history, description or MAC too (`exec`, `export`).
    Every(Keep),
}

impl Store {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join(SECRETS)
    }

    /// What a backend needs from this store.
    pub fn backend_ctx<'a>(
        &self,
        identity: &'a Identity,
        key: &'a StoreKey,
        store_id: &str,
        recipients: &'a [Recipient],
    ) -> backend::Ctx<'a> {
        backend::Ctx {
            root: self.root.clone(),
            secrets_dir: self.secrets_dir(),
            identity,
            key,
            store_id: store_id.to_string(),
            recipients,
        }
    }

    /// Give a warning or note to the caller.
    pub fn say(&self, line: &str) {
        (self.say)(line)
    }

    /// Give notes under `-v` too (see [`Store::note`]).
    pub fn with_verbose(mut self, verbose: bool) -> Store {
        self.verbose = verbose;
        self
    }

    /// Give a `-v` note to the caller.
    pub fn note(&self, line: &str) {
        if self.verbose {
            (self.say)(line)
        }
    }

    /// Where this store's warnings go, for a feature working on it.
    pub fn sayer(&self) -> Say {
        Rc::clone(&self.say)
    }

    fn io_err(&self, what: &str, e: io::Error) -> Error {
        Error::io(format!("cannot {what} in {}", self.root.display()), e)
    }

    /// Open an existing store, refusing one that others could write to.
    pub fn open(root: &Path, say: Say) -> Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
            say,
            verbose: false,
        };
        let not_a_store = || Error::NotAStore {
            path: root.to_path_buf(),
        };
        if std::fs::metadata(root).is_ok_and(|meta| !meta.is_dir()) {
            return Err(not_a_store());
        }
        match std::fs::symlink_metadata(root.join(manifest::FILE_NAME)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Err(not_a_store()),
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
        say: Say,
    ) -> Result<(Store, String)> {
        let store = Store {
            root: root.to_path_buf(),
            say,
            verbose: false,
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
        util::fs::create_private_dir(root).map_err(err)?;
        util::fs::create_private_dir(&store.secrets_dir()).map_err(err)?;
        let recipients_text = recipient::render_file(recipients);
        let key = StoreKey::generate()?;
        let key_file = integrity::encrypt_store_key(&key, &[], &store_id, recipients)?;
        let mut manifest = Manifest::new(store_id, sha256_hex(recipients_text.as_bytes()));
        manifest.vault = vault;
        let text = manifest.render(&key);
        util::fs::write_atomic(root, RECIPIENTS, recipients_text.as_bytes()).map_err(err)?;
        util::fs::write_atomic(root, STORE_KEY, &key_file).map_err(err)?;
        util::fs::write_atomic(root, GITIGNORE, GITIGNORE_TEXT.as_bytes()).map_err(err)?;
        // The manifest last: until it exists, this is not a store.
        util::fs::write_atomic(root, manifest::FILE_NAME, text.as_bytes()).map_err(err)?;
        let fingerprint = key.fingerprint();
        state::check_store_key(root, &manifest.store_id, &fingerprint, &[], &*store.say)?;
        Ok((store, fingerprint))
    }

    /// Take the store lock. A reader of a store it cannot write (a read-only checkout, a
    /// store owned by someone else) goes on without one: no writer can be at work there.
    fn lock(&self, exclusive: bool) -> Result<Option<File>> {
        self.lock_waiting(exclusive, true)
    }

    /// The lock a streamed read takes (see [`Locking`]).
    fn lock_as(&self, locking: Locking) -> Result<Option<File>> {
        match locking {
            Locking::Shared => self.lock_waiting(false, true),
            Locking::Exclusive => self.lock_waiting(true, true),
            Locking::SharedIfFree => self.lock_waiting(false, false),
        }
    }

    /// [`Store::lock`]; without `wait`, a lock held by another process is `StoreBusy` at
    /// once.
    fn lock_waiting(&self, exclusive: bool, wait: bool) -> Result<Option<File>> {
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
                Err(std::fs::TryLockError::WouldBlock)
                    if wait && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::StoreBusy {
                        path: self.root.clone(),
                        seconds: LOCK_WAIT.as_secs(),
                    });
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
        let bytes = util::fs::read_nofollow(&self.root.join(manifest::FILE_NAME))
            .map_err(|e| self.io_err("read the manifest", e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::integrity(manifest::FILE_NAME, "it is not UTF-8 text"))?;
        manifest::conflict::refuse_unmerged(&text)?;
        manifest::normalize_line_ends(text)
    }

    /// Decrypt a store key file (`storekey.age` or its pending replacement).
    fn read_key_file(
        &self,
        identity: &Identity,
        store_id: &str,
        file: &str,
    ) -> Result<Option<StoreKeyFile>> {
        let Some(bytes) = util::fs::read_optional(&self.root.join(file))
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
            &*self.say,
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
            util::fs::read_optional(&self.root.join(PENDING_RECIPIENTS)),
            Ok(Some(bytes)) if sha256_hex(&bytes) == recipients_sha256
        )
    }

    /// `recipients.txt`: its recipients and its hash.
    pub fn recipients(&self) -> Result<RecipientsFile> {
        self.recipients_file(RECIPIENTS)?
            .ok_or_else(|| Error::integrity(RECIPIENTS, "it is missing"))
    }

    /// The recipients file a verified manifest names by `recipients_sha256` (see
    /// [`Store::committed_recipients`]); another one is an integrity error.
    pub fn verified_recipients(&self, recipients_sha256: &str) -> Result<RecipientsFile> {
        let file = self.committed_recipients(recipients_sha256)?;
        if file.sha256 != recipients_sha256 {
            return Err(recipients_changed_outside());
        }
        Ok(file)
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
        let Some(bytes) = util::fs::read_optional(&self.root.join(file))
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
                util::fs::rename_durable(&self.root, PENDING_STORE_KEY, STORE_KEY).map_err(err)?;
            }
            util::fs::rename_durable(&self.root, PENDING_RECIPIENTS, RECIPIENTS).map_err(err)?;
        } else {
            for file in [PENDING_STORE_KEY, PENDING_RECIPIENTS] {
                util::fs::remove_if_exists(&self.root.join(file)).map_err(err)?;
            }
        }
        let entries = std::fs::read_dir(&self.root).map_err(err)?;
        for dirent in entries {
            let dirent = dirent.map_err(err)?;
            if dirent.file_name().to_string_lossy().starts_with(".tmp-") {
                util::fs::remove_if_exists(&dirent.path()).map_err(err)?;
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
    /// Streamed like [`reader_of_values`](Self::reader_of_values): exec of every
    /// credential is the common case.
    pub fn reader_for_exec<'a>(&'a self, identity: &'a Identity) -> Result<Reader<'a>> {
        match self.streamed_reader(identity, true, Reading::Every(Keep::ForValues))? {
            Some(reader) => Ok(reader),
            None => self.reader_with(identity, true),
        }
    }

    /// [`reader`](Self::reader) for a command that reads one credential (`get`): the
    /// manifest is read in pieces and the seal checked over all of it, but the other
    /// credentials' sections are not kept, so a store of 10,000 credentials costs no more
    /// memory than one of ten. Anything unusual (the layout, a pending store key, a seal
    /// that does not match) takes the ordinary path, which says what is wrong.
    pub fn reader_for_one<'a>(
        &'a self,
        identity: &'a Identity,
        name: &crate::model::credential::CredentialName,
    ) -> Result<Reader<'a>> {
        match self.streamed_reader(identity, false, Reading::One(name))? {
            Some(reader) => Ok(reader),
            None => self.reader(identity),
        }
    }

    /// [`reader`](Self::reader) for a command that uses every credential but not their
    /// history (`list`, `export`): each credential's section is parsed as the manifest
    /// is read in pieces, and the file is never held whole.
    pub fn reader_of_every<'a>(&'a self, identity: &'a Identity) -> Result<Reader<'a>> {
        match self.streamed_reader(identity, false, Reading::Every(Keep::NoHistory))? {
            Some(reader) => Ok(reader),
            None => self.reader(identity),
        }
    }

    /// [`reader_of_every`](Self::reader_of_every) for a command that hands values on
    /// (`export`): the entries it holds lack their description and MAC too
    /// ([`Keep::ForValues`]); a whole manifest asked of it is read
    /// again.
    pub fn reader_of_values<'a>(&'a self, identity: &'a Identity) -> Result<Reader<'a>> {
        match self.streamed_reader(identity, false, Reading::Every(Keep::ForValues))? {
            Some(reader) => Ok(reader),
            None => self.reader(identity),
        }
    }

    /// A reader from the manifest read in pieces ([`manifest::excerpt`]): keeping the
    /// sections of all but the credentials, and one credential's, or else parsing every
    /// credential on the way (as `reading` says). `None`: read it whole instead.
    fn streamed_reader<'a>(
        &'a self,
        identity: &'a Identity,
        strict: bool,
        reading: Reading<'_>,
    ) -> Result<Option<Reader<'a>>> {
        use manifest::excerpt;
        let mut credentials: Vec<reader::Slot> = Vec::new();
        // In name order, as `Manifest::render` writes them; anything else (a name out of
        // order or twice, an invalid one) is left to the whole-file read, which says
        // what is wrong.
        let in_order = |name: String, entry: manifest::Entry| {
            let Some(name) = CredentialName::stored(name) else {
                return false;
            };
            if credentials.last().is_some_and(|(last, _, _)| *last >= name) {
                return false;
            }
            credentials.push((name, entry, None));
            true
        };
        let streamed = match reading {
            Reading::One(name) => {
                self.stream_manifest(identity, strict, &mut excerpt::keeps(name))?
            }
            Reading::Every(keep) => {
                self.stream_manifest(identity, strict, &mut excerpt::hands_parsed(keep, in_order))?
            }
        };
        let Some(Streamed {
            lock,
            key_file,
            text,
            header,
        }) = streamed
        else {
            return Ok(None);
        };
        let key = key_file.key;
        Ok(Some(Reader {
            store: self,
            identity,
            key,
            _lock: lock,
            text,
            held: std::cell::RefCell::new(match reading {
                Reading::One(_) => reader::Held::Excerpt,
                Reading::Every(keep) => reader::Held::Credentials(credentials, keep),
            }),
            header,
            vault: OnceCell::new(),
            cache: std::cell::RefCell::new(None),
            secrets: OnceCell::new(),
        }))
    }

    /// Read the manifest in pieces under the shared lock, handing each section to
    /// `section` ([`manifest::excerpt::read_rest`]), and check the store key and the
    /// generation as every read does (`strict`: a rollback is refused, else warned
    /// about). `None`: the streamed read gave up (a layout out of the canonical one, a
    /// pending store key, a seal that does not match, `section` gave up); the whole-file
    /// read then says what is wrong.
    pub(crate) fn stream_manifest(
        &self,
        identity: &Identity,
        strict: bool,
        section: &mut dyn FnMut(&str) -> Option<bool>,
    ) -> Result<Option<Streamed>> {
        let rollback = if strict {
            Rollback::Refuse("run a program from")
        } else {
            Rollback::Warn
        };
        self.stream_manifest_with(identity, Locking::Shared, rollback, section)
    }

    /// [`Store::stream_manifest`] under the lock `locking` says, doing `rollback` about a
    /// store older than one seen here.
    fn stream_manifest_with(
        &self,
        identity: &Identity,
        locking: Locking,
        rollback: Rollback,
        section: &mut dyn FnMut(&str) -> Option<bool>,
    ) -> Result<Option<Streamed>> {
        use manifest::excerpt;
        let Some((lock, mut input, head)) = self.open_streamed(locking)? else {
            return Ok(None);
        };
        let Ok(Some(key_file)) = self.read_key_file(identity, &head.header.store_id, STORE_KEY)
        else {
            return Ok(None);
        };
        let Ok(Some((text, header))) = excerpt::read_rest(&mut input, head, &key_file.key, section)
        else {
            return Ok(None);
        };
        drop(input);
        state::check_store_key(
            &self.root,
            &header.store_id,
            &key_file.key.fingerprint(),
            &key_file.previous_fingerprints(),
            &*self.say,
        )?;
        self.check_rollback(&header, rollback)?;
        Ok(Some(Streamed {
            lock,
            key_file,
            text,
            header,
        }))
    }

    /// [`Store::stream_manifest`] without an identity, for a read that says it is
    /// unverified: the kept text, nothing checked but the layout. `None`: read it whole.
    pub(crate) fn stream_unverified(
        &self,
        section: &mut dyn FnMut(&str) -> Option<bool>,
    ) -> Result<Option<String>> {
        let Some((_lock, mut input, head)) = self.open_streamed(Locking::Shared)? else {
            return Ok(None);
        };
        let read = manifest::excerpt::read_rest_unverified(&mut input, head, section);
        Ok(read.ok().flatten().map(|(text, _)| text))
    }

    /// The manifest opened to be read in pieces under the shared lock (the exclusive one
    /// for a write), its header read; `None` when the header is not in agentcred's layout.
    #[allow(clippy::type_complexity)]
    fn open_streamed(
        &self,
        locking: Locking,
    ) -> Result<
        Option<(
            Option<File>,
            std::io::BufReader<File>,
            manifest::excerpt::Head,
        )>,
    > {
        let lock = self.lock_as(locking)?;
        Ok(self
            .reopen_manifest()?
            .map(|(input, head)| (lock, input, head)))
    }

    /// The manifest opened to be read in pieces, its header read, under whatever lock the
    /// caller holds; `None` when the header is not in agentcred's layout.
    fn reopen_manifest(
        &self,
    ) -> Result<Option<(std::io::BufReader<File>, manifest::excerpt::Head)>> {
        let err = |e| self.io_err("read the manifest", e);
        let file = util::fs::open_nofollow(&self.root.join(manifest::FILE_NAME)).map_err(err)?;
        let mut input = std::io::BufReader::with_capacity(64 * 1024, file);
        // Not UTF-8 (an I/O error of kind InvalidData): the ordinary path says so.
        let Ok(Some(head)) = manifest::excerpt::read_head(&mut input) else {
            return Ok(None);
        };
        Ok(Some((input, head)))
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
            warn_if_rolled_back(self, &header)?;
        }
        Ok(Reader {
            store: self,
            identity,
            key,
            _lock: lock,
            text,
            held: std::cell::RefCell::new(reader::Held::Whole),
            header,
            vault: OnceCell::new(),
            cache: std::cell::RefCell::new(None),
            secrets: OnceCell::new(),
        })
    }

    /// Read the manifest without verifying it, for metadata commands run without an
    /// unlocked identity. Callers say so to the user.
    pub fn manifest_unverified(&self) -> Result<Manifest> {
        let _lock = self.lock(false)?;
        Manifest::load(&self.read_manifest()?, None)
    }

    /// [`Store::manifest_unverified`] with only the credential `name` among the
    /// credentials (for `show`): the file is read in pieces, the other credentials'
    /// sections not kept; anything unusual reads it whole.
    pub fn manifest_unverified_of(
        &self,
        name: &crate::model::credential::CredentialName,
    ) -> Result<Manifest> {
        // A parse error is reported from the whole file, whose line numbers it names.
        match self.stream_unverified(&mut manifest::excerpt::keeps(name))? {
            Some(text) => Manifest::parse_unverified(&text).or_else(|_| self.manifest_unverified()),
            None => self.manifest_unverified(),
        }
    }

    /// A write's manifest read in pieces under the exclusive lock, every credential with
    /// its history, as [`Store::stream_manifest`] reads it for a reader: the file is never
    /// held whole (3.7 MB for 10,000 credentials) beside the entries parsed from it.
    /// `None`: anything unusual (see there), for the whole-file read to say what.
    fn stream_for_write(
        &self,
        identity: &Identity,
    ) -> Result<Option<(Option<File>, StoreKeyFile, Manifest)>> {
        self.stream_whole(
            identity,
            Locking::Exclusive,
            Rollback::Refuse("write over"),
            Keep::ForWrite,
        )
    }

    /// `doctor`'s manifest, read as [`Store::stream_for_write`] reads it but under the
    /// shared lock and without the history, descriptions or MACs, which none of its
    /// checks on a sealed manifest uses; a rollback is
    /// left to doctor, which reports it. `None` (or an error): doctor reads the file
    /// whole, which says what is wrong. A store locked by a writer is not waited for:
    /// doctor reads it whole at once, as it always did.
    pub(crate) fn stream_for_doctor(
        &self,
        identity: &Identity,
    ) -> Result<Option<(StoreKey, Manifest)>> {
        let streamed = self.stream_whole(
            identity,
            Locking::SharedIfFree,
            Rollback::Ignore,
            Keep::ForValues,
        )?;
        Ok(streamed.map(|(_, key_file, manifest)| (key_file.key, manifest)))
    }

    /// The whole manifest read in pieces and checked (see [`Store::stream_manifest`]), its
    /// credentials (with their `history` or not) in a map with full nodes: 2.6 MB for
    /// 10,000 entries, where one built a name at a time has half-full nodes (4.7 MB).
    /// `rollback` is checked once the manifest is known to be valid, as the whole-file
    /// path checks it (so an invalid one is not remembered as seen).
    fn stream_whole(
        &self,
        identity: &Identity,
        locking: Locking,
        rollback: Rollback,
        keep: Keep,
    ) -> Result<Option<(Option<File>, StoreKeyFile, Manifest)>> {
        // In name order, as `Manifest::render` writes them: a name out of order is refused.
        let mut credentials = manifest::SortedMap::default();
        let in_order = |name: String, entry| credentials.push(name, entry);
        let streamed = {
            let mut section = manifest::excerpt::hands_parsed(keep, in_order);
            self.stream_manifest_with(identity, locking, Rollback::Ignore, &mut section)?
        };
        let Some(Streamed {
            lock,
            key_file,
            text,
            header,
        }) = streamed
        else {
            return Ok(None);
        };
        // Anything `assemble` refuses, the whole-file read explains (or reads).
        let Ok(manifest) = Manifest::assemble(&text, credentials.finish()) else {
            return Ok(None);
        };
        self.check_rollback(&header, rollback)?;
        Ok(Some((lock, key_file, manifest)))
    }

    /// Refuse, warn about or ignore a store older than one this machine has seen.
    fn check_rollback(&self, header: &Header, rollback: Rollback) -> Result<()> {
        match rollback {
            Rollback::Refuse(doing) => refuse_if_rolled_back(header, doing),
            Rollback::Warn => warn_if_rolled_back(self, header),
            Rollback::Ignore => Ok(()),
        }
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
        if let Some(begun) = self.begin_reseal_streamed(identity)? {
            return Ok(begun);
        }
        let (txn, reseal) = self.begin_with(identity, true)?;
        Ok((txn, reseal.unwrap_or_default()))
    }

    fn begin_with<'a>(
        &'a self,
        identity: &'a Identity,
        reseal: bool,
    ) -> Result<(Txn<'a>, Option<Reseal>)> {
        let streamed = match reseal {
            false => self.stream_for_write(identity)?,
            true => None,
        };
        let (lock, key_file, mut manifest, changes) = match streamed {
            Some((lock, key_file, manifest)) => (lock, key_file, manifest, None),
            None => {
                let lock = self.lock(true)?;
                let text = self.read_manifest()?;
                let header = manifest::header(&text)?;
                let (key_file, _) = self.key_for(identity, &header, &text)?;
                let key = &key_file.key;
                let (manifest, changes) = if reseal {
                    // A section at a time where the layout allows, as an unverified read.
                    let manifest = Manifest::parse_unverified(&text)?;
                    let changes = Reseal {
                        seal_matched: manifest::seal_ok(&text, key)?,
                        edits: manifest::hand_edits(&manifest, key),
                        recipients_changed: false,
                    };
                    (manifest, Some(changes))
                } else {
                    (Manifest::load(&text, Some(key))?, None)
                };
                let rollback = match reseal {
                    true => Rollback::Warn,
                    false => Rollback::Refuse("write over"),
                };
                self.check_rollback(&header, rollback)?;
                (lock, key_file, manifest, changes)
            }
        };
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
                None => return Err(recipients_changed_outside()),
            }
        }
        let txn = self.open_txn(identity, lock, key_file, recipients, manifest, None)?;
        Ok((txn, changes))
    }

    /// A transaction over `manifest` (and, with `streamed`, the credentials of the file),
    /// every backend opened and what a killed writer left finished or dropped.
    fn open_txn<'a>(
        &'a self,
        identity: &'a Identity,
        lock: Option<File>,
        StoreKeyFile { key, previous }: StoreKeyFile,
        recipients: Vec<Recipient>,
        manifest: Manifest,
        streamed: Option<txn::StreamPlan>,
    ) -> Result<Txn<'a>> {
        let txn = Txn {
            store: self,
            identity,
            backends: backend::open_all(&manifest)?,
            _lock: lock,
            key,
            previous_keys: previous,
            key_rotated: false,
            recipients,
            manifest,
            staged_root: Vec::new(),
            removed: Vec::new(),
            committed: false,
            streamed,
        };
        txn.roll_forward()?;
        Ok(txn)
    }

    /// Begin a write transaction over every credential that holds none of them: the
    /// manifest is read and checked a section at a time, as [`Store::begin`] reads it, and
    /// its commit reads it again, changing each entry on its way to the new manifest (see
    /// [`Txn::change_recipients`], [`Txn::mark_every`]). A recipients change of 10,000
    /// credentials held every entry, with its history, and each staged name: 11 to 13 MB at
    /// its peak. `name` hears the name of each credential as it is read.
    ///
    /// `None` (and `name`'s names are to be forgotten) when the store is not fit for it:
    /// a manifest outside the canonical layout, a credential outside the `age` backend
    /// (the others finish a commit with the whole manifest at hand), or staged values that
    /// a killed writer left, which only [`Store::begin`] can tell to finish or drop.
    pub fn begin_streamed<'a>(
        &'a self,
        identity: &'a Identity,
        name: &mut dyn FnMut(&str),
    ) -> Result<Option<Txn<'a>>> {
        let begun = self.begin_streamed_with(identity, false, name)?;
        Ok(begun.map(|(txn, _)| txn))
    }

    /// [`Store::begin_streamed`] for `doctor --reseal`: the seal need not match, each entry
    /// is checked against its MAC as it goes by, and the commit's second read must find
    /// the same file (the seal the key makes over it, not the one in it).
    fn begin_reseal_streamed<'a>(
        &'a self,
        identity: &'a Identity,
    ) -> Result<Option<(Txn<'a>, Reseal)>> {
        let begun = self.begin_streamed_with(identity, true, &mut |_| {})?;
        Ok(begun.and_then(|(txn, reseal)| Some((txn, reseal?))))
    }

    fn begin_streamed_with<'a>(
        &'a self,
        identity: &'a Identity,
        reseal: bool,
        name: &mut dyn FnMut(&str),
    ) -> Result<Option<(Txn<'a>, Option<Reseal>)>> {
        let whole = |why: &str| {
            self.note(&format!(
                "agentcred: the whole manifest is read for this change ({why})"
            ));
            Ok(None)
        };
        let Some((lock, mut input, head)) = self.open_streamed(Locking::Exclusive)? else {
            return whole("it is not in agentcred's own layout");
        };
        let store_id = head.header.store_id.clone();
        let Ok(Some(key_file)) = self.read_key_file(identity, &store_id, STORE_KEY) else {
            return whole("its store key does not open");
        };
        if self.root.join(PENDING_STORE_KEY).exists() || self.root.join(PENDING_RECIPIENTS).exists()
        {
            return whole("a recipients change is not finished");
        }
        let key = &key_file.key;
        let (mut count, mut last, mut edits) = (0, String::new(), Vec::new());
        let mut why = "it is not in agentcred's own layout, or does not verify";
        let mut each = |credential: String, entry: manifest::Entry| {
            if entry.backend != crate::model::credential::BackendKind::Age {
                why = "a credential is outside the age backend";
                return false;
            }
            if !CredentialName::validate_stored(&credential) {
                why = "a credential's name is not one agentcred writes";
                return false;
            }
            // Written again in the order read: only a file in name order, each name once.
            if count > 0 && credential <= last {
                why = "its credentials are out of order";
                return false;
            }
            if reseal {
                edits.extend(manifest::entry_hand_edit(
                    key,
                    &store_id,
                    &credential,
                    &entry,
                ));
            }
            count += 1;
            name(&credential);
            last = credential;
            true
        };
        let read = {
            let keep = if reseal { Keep::Whole } else { Keep::ForValues };
            let mut section = manifest::excerpt::hands_parsed(keep, &mut each);
            manifest::excerpt::read_rest_tagged(&mut input, head, key, &mut section)
        };
        drop(input);
        let read = match read {
            Ok(Some(read)) if read.sealed || reseal => read,
            _ => return whole(why),
        };
        if self.values_pending()? {
            return whole("an interrupted write left values pending");
        }
        let Ok(mut manifest) = Manifest::assemble(&read.text, Default::default()) else {
            return whole("it is not in agentcred's own layout");
        };
        let recipients_file = self.recipients()?;
        let recipients_changed = recipients_file.sha256 != manifest.recipients_sha256;
        if recipients_changed {
            if !reseal {
                // `begin` says what is wrong.
                return whole("recipients.txt does not match it");
            }
            manifest.recipients_sha256 = recipients_file.sha256.clone();
        }
        // Only once nothing sends this change to `begin`, which would say it again.
        state::check_store_key(
            &self.root,
            &read.header.store_id,
            &key.fingerprint(),
            &key_file.previous_fingerprints(),
            &*self.say,
        )?;
        let rollback = match reseal {
            true => Rollback::Warn,
            false => Rollback::Refuse("write over"),
        };
        self.check_rollback(&read.header, rollback)?;
        // Nothing is pending here (checked above): this drops a killed writer's temporary
        // files in the store's root.
        self.roll_forward_root(&manifest.recipients_sha256)?;
        let changes = reseal.then(|| {
            // The agents' entries (the credentials' were checked as they went by).
            edits.extend(manifest::hand_edits(&manifest, key));
            Reseal {
                seal_matched: read.sealed,
                edits,
                recipients_changed,
            }
        });
        self.note(&format!(
            "agentcred: the manifest is streamed through this change, one of its {count} credentials at a time"
        ));
        // Nothing is pending: its `roll_forward` drops the temporary files a killed writer left.
        let plan = txn::StreamPlan::over(count, read.tag, !reseal);
        let recipients = recipients_file.recipients();
        let txn = self.open_txn(identity, lock, key_file, recipients, manifest, Some(plan))?;
        Ok(Some((txn, changes)))
    }

    /// Whether `secrets/` holds a value staged by a writer that was killed.
    fn values_pending(&self) -> Result<bool> {
        let dir = self.secrets_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.io_err("list secrets", e)),
        };
        for dirent in entries {
            let dirent = dirent.map_err(|e| self.io_err("list secrets", e))?;
            if dirent.file_name().as_encoded_bytes().ends_with(b".pending") {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// How a streamed read locks the store.
#[derive(Clone, Copy)]
enum Locking {
    Shared,
    /// A write.
    Exclusive,
    /// Shared if no writer holds the lock now; else the read gives up at once.
    SharedIfFree,
}

/// What a streamed read does about a store older than one this machine has seen.
enum Rollback {
    /// Refuse it, saying what was refused (a write, handing credentials to a program).
    Refuse(&'static str),
    Warn,
    /// Left to the caller (doctor reports it).
    Ignore,
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

fn warn_if_rolled_back(store: &Store, header: &Header) -> Result<()> {
    if let Some(rollback) = state::note_generation(&header.store_id, header.generation)? {
        store.say(&format!(
            "warning: this store is at generation {}, older than generation {} {} (an old git checkout, or a rollback)",
            header.generation,
            rollback.seen,
            if rollback.pinned {
                "pinned by AGENTCRED_MIN_GENERATION"
            } else {
                "seen on this machine"
            }
        ));
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

/// `recipients.txt` is not the one the manifest committed to.
fn recipients_changed_outside() -> Error {
    Error::integrity(
        RECIPIENTS,
        "it was changed outside agentcred; nothing will be encrypted to it until that is resolved",
    )
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
