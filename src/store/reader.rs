//! `Reader`: a verified, read-locked view of the store.

use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::rc::Rc;

use secrecy::SecretSlice;

use crate::backend::age::{self as age_backend, FileStamp};
use crate::backend::{self, LazyVault};
use crate::crypto::identity::Identity;
use crate::crypto::integrity::StoreKey;
use crate::error::{Error, Result};
use crate::manifest::excerpt::Keep;
use crate::manifest::{self, Agent, Defaults, Entry, Header, Manifest};
use crate::model::credential::{AgentName, BackendKind, CredentialName};

use super::value_cache::{self, Unused, ValueCache};
use super::*;

/// How much of the manifest a reader's `text` holds.
pub(super) enum Held {
    /// All of it.
    Whole,
    /// All but the credentials' sections, and the one credential's a `get` asked for.
    Excerpt,
    /// All but the credentials' sections; the credentials, parsed as the `Keep` says
    /// (never with history), in name order (each with an empty slot for its value: see
    /// [`Slot`]).
    Credentials(Vec<Slot>, Keep),
    /// As `Credentials`, after [`Reader::manifest_without_history`] handed them out.
    HandedOut,
}

/// A credential with room for its value. `exec` of every credential takes the reader's
/// vector as it is and fills the values in place: its elements are the size of what it
/// hands on, since a second vector of 10,000 entries would add 2.7 MB to its peak.
pub type Slot = (CredentialName, Entry, Option<SecretSlice<u8>>);

/// A verified, read-locked view of the store.
pub struct Reader<'a> {
    pub(super) store: &'a Store,
    pub(super) identity: &'a Identity,
    pub(super) key: StoreKey,
    pub(super) _lock: Option<File>,
    /// The manifest's text: whole, or (read in pieces) all but the credentials' sections,
    /// as `held` says.
    pub(super) text: String,
    pub(super) held: RefCell<Held>,
    pub(super) header: Header,
    pub(super) vault: OnceCell<Rc<LazyVault>>,
    /// The value cache, loaded when the first `age` value is read; written again when the
    /// reader is dropped, if this reader decrypted anything new.
    pub(super) cache: RefCell<Option<ValueCache>>,
    /// `secrets/`, opened once for the value cache's `fstatat`s.
    pub(super) secrets: OnceCell<Option<File>>,
}

impl Reader<'_> {
    pub fn store_id(&self) -> &str {
        &self.header.store_id
    }

    /// The recipients the verified manifest committed to.
    pub fn recipients(&self) -> Result<RecipientsFile> {
        self.store
            .verified_recipients(&self.header.recipients_sha256)
    }

    /// One entry, through the fast path (no full parse). From a reader that parsed every
    /// credential ([`Store::reader_of_every`]), without its history (and from
    /// [`Store::reader_of_values`], without its description and MAC).
    pub fn entry(&self, name: &CredentialName) -> Result<Entry> {
        let found = match &*self.held.borrow() {
            Held::Whole => manifest::find_entry(&self.text, name)?,
            Held::Credentials(credentials, _) => credentials
                .binary_search_by(|(held, _, _)| held.cmp(name))
                .ok()
                .map(|at| credentials[at].1.clone()),
            Held::Excerpt => match manifest::find_entry(&self.text, name)? {
                Some(entry) => Some(entry),
                None => manifest::find_entry(&self.whole_text()?, name)?,
            },
            Held::HandedOut => manifest::find_entry(&self.whole_text()?, name)?,
        };
        found.ok_or_else(|| Error::CredentialNotFound {
            name: name.to_string(),
        })
    }

    /// The manifest's whole text: held, or (for a reader that did not keep it) read again
    /// under the same lock and its seal checked again.
    fn whole_text(&self) -> Result<Cow<'_, str>> {
        if matches!(*self.held.borrow(), Held::Whole) {
            return Ok(Cow::Borrowed(&self.text));
        }
        let text = self.store.read_manifest()?;
        if !manifest::seal_ok(&text, &self.key)? {
            return Err(Error::integrity(
                manifest::FILE_NAME,
                "the seal does not match",
            ));
        }
        Ok(Cow::Owned(text))
    }

    /// The store's rotation defaults, without parsing every entry.
    pub fn defaults(&self) -> Result<Defaults> {
        manifest::find_defaults(&self.text)
    }

    /// The store's `[vault]` settings, if it has them.
    pub fn vault_settings(&self) -> Result<Option<crate::model::settings::VaultSettings>> {
        manifest::find_vault(&self.text)
    }

    /// One agent, through the fast path; `Ok(None)` when there is no such agent.
    pub fn agent(&self, name: &AgentName) -> Result<Option<Agent>> {
        manifest::find_agent(&self.text, name)
    }

    /// Whether the store has any agent (from the section headers; the seal was verified).
    pub fn has_agents(&self) -> bool {
        !manifest::table_names(&self.text, "agents").is_empty()
    }

    /// The whole manifest (already verified by its seal).
    pub fn manifest(&self) -> Result<Manifest> {
        Manifest::parse_sealed(&self.whole_text()?)
    }

    /// The whole manifest but the credentials' history, several times faster to read
    /// (for `exec` of every credential and `list`).
    pub fn manifest_without_history(&self) -> Result<Manifest> {
        let held = std::mem::replace(&mut *self.held.borrow_mut(), Held::HandedOut);
        match held {
            Held::Credentials(credentials, Keep::NoHistory) => Manifest::assemble(
                &self.text,
                credentials
                    .into_iter()
                    .map(|(name, entry, _)| (name.into_string(), entry))
                    .collect(),
            ),
            Held::Whole => {
                *self.held.borrow_mut() = Held::Whole;
                Manifest::parse_sealed_without_history(&self.text)
            }
            other => {
                *self.held.borrow_mut() = other;
                Manifest::parse_sealed_without_history(&self.whole_text()?)
            }
        }
    }

    /// Every credential but its history, in name order, each with an empty slot for its
    /// value (`exec` of every credential): from a streamed reader the vector it read,
    /// else from the whole manifest.
    pub fn every_credential(&self) -> Result<Vec<Slot>> {
        let held = std::mem::replace(&mut *self.held.borrow_mut(), Held::HandedOut);
        if let Held::Credentials(credentials, _) = held {
            // The rest of the manifest is checked as `manifest_without_history` checks it.
            Manifest::assemble(&self.text, BTreeMap::new())?;
            return Ok(credentials);
        }
        *self.held.borrow_mut() = held;
        let every = self.manifest_without_history()?.credentials;
        Ok(every
            .into_iter()
            .filter_map(|(name, entry)| Some((CredentialName::stored(name)?, entry, None)))
            .collect())
    }

    /// The store's Vault settings and client (made on first use).
    pub fn vault(&self) -> Result<&Rc<LazyVault>> {
        if let Some(vault) = self.vault.get() {
            return Ok(vault);
        }
        let settings = manifest::find_vault(&self.text)?;
        Ok(self
            .vault
            .get_or_init(|| Rc::new(LazyVault::new(settings, &self.header.store_id))))
    }

    /// Can values of `kind` be used at all (Vault answers)? Asked before a value is typed.
    pub fn check_backend(&self, kind: BackendKind) -> Result<()> {
        backend::open(kind, None, &|| self.vault().map(Rc::clone))?.check_reachable()
    }

    pub fn value(&self, name: &CredentialName, entry: &Entry) -> Result<SecretSlice<u8>> {
        if entry.backend == BackendKind::Age
            && let Some(sha256) = entry
                .sha256
                .as_deref()
                .and_then(value_cache::sha256_from_hex)
        {
            return self.age_value(name, entry, sha256);
        }
        let ctx = self
            .store
            .backend_ctx(self.identity, &self.key, &self.header.store_id, &[]);
        backend::read(&ctx, name, entry, &|| self.vault().map(Rc::clone))
    }

    /// One value straight from its backend, without the value cache: for `get`, which
    /// reads one value, where one X25519 unwrap costs less than loading every record.
    pub fn value_uncached(&self, name: &CredentialName, entry: &Entry) -> Result<SecretSlice<u8>> {
        let ctx = self
            .store
            .backend_ctx(self.identity, &self.key, &self.header.store_id, &[]);
        backend::read(&ctx, name, entry, &|| self.vault().map(Rc::clone))
    }

    /// An `age` value: from the value cache when it holds the value of exactly the file
    /// the manifest names, unchanged since (one `lstat`), else decrypted from the file
    /// and remembered for the cache.
    fn age_value(
        &self,
        name: &CredentialName,
        entry: &Entry,
        sha256: [u8; 32],
    ) -> Result<SecretSlice<u8>> {
        let secrets_dir = self.store.secrets_dir();
        let mut slot = self.cache.borrow_mut();
        let cache = slot.get_or_insert_with(|| {
            ValueCache::load(self.store.root(), &self.header.store_id, &self.key)
        });
        let secrets = self.secrets.get_or_init(|| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&secrets_dir)
                .ok()
        });
        if let Some(stamp) = secrets
            .as_ref()
            .and_then(|dir| FileStamp::current(dir, name))
            && let Some(value) = cache.get(name.as_str(), &sha256, &stamp)
        {
            return Ok(value);
        }
        let (ciphertext, stamp) =
            age_backend::committed_ciphertext_stamped(&secrets_dir, name, entry)?;
        let value =
            age_backend::open_committed(self.identity, &self.header.store_id, name, &ciphertext)?;
        cache.put(name.as_str(), sha256, stamp, &value);
        Ok(value)
    }
}

impl Store {
    /// Every credential's entry, without its history, handed to `each` as the manifest is
    /// read in pieces under the shared lock (for `list` and `due`, which keep a few bytes
    /// of each): neither the file nor every entry is held at once. Returns the rest of the
    /// manifest (its credentials empty) once the seal has verified over the whole file
    /// under `identity`'s store key; until then, what `each` was given is unverified and
    /// must not be shown. Without an identity nothing is verified (the caller says so).
    /// `Ok(None)`: the streamed read gave up (a layout out of the canonical one, a pending
    /// store key, a seal that does not match, an invalid credential name, or `each`
    /// returned `false`); the caller drops what it was given and reads the file whole,
    /// which says what is wrong.
    pub fn each_entry(
        &self,
        identity: Option<&Identity>,
        each: &mut dyn FnMut(String, Entry) -> bool,
    ) -> Result<Option<Manifest>> {
        // Names are checked here, as `Manifest::validate` checks those it holds.
        let mut hand = manifest::excerpt::hands(|name, entry| {
            CredentialName::validate_stored(&name) && each(name, entry)
        });
        let text = match identity {
            Some(identity) => self
                .stream_manifest(identity, false, &mut hand)?
                .map(|Streamed { text, .. }| text),
            None => self.stream_unverified(&mut hand)?,
        };
        let Some(text) = text else {
            return Ok(None);
        };
        // What `assemble` refuses (a credential in a table of another layout, which the
        // pieces did not take for one) the whole-file read reads or explains.
        Ok(Manifest::assemble(&text, BTreeMap::new()).ok())
    }
}

impl Store {
    /// The manifest without its credentials (`agent list`, `agent show`): read in pieces,
    /// each credential's section dropped as it goes by (a list of agents in a store of
    /// 10,000 credentials parsed all of them, with history: 16 MB). Verified under
    /// `identity`'s store key as [`Store::each_entry`] verifies; without an identity
    /// nothing is verified (the caller says so). `Ok(None)`: read the file whole, which
    /// says what is wrong.
    pub fn manifest_without_credentials(
        &self,
        identity: Option<&Identity>,
    ) -> Result<Option<Manifest>> {
        let mut agents_only = |section: &str| Some(!section.starts_with("[credentials."));
        match identity {
            Some(identity) => match self.stream_manifest(identity, false, &mut agents_only)? {
                Some(Streamed { text, .. }) => Ok(Manifest::assemble(&text, BTreeMap::new()).ok()),
                None => Ok(None),
            },
            None => Ok(self
                .stream_unverified(&mut agents_only)?
                .and_then(|text| Manifest::parse_unverified(&text).ok())),
        }
    }
}

impl<'a> Reader<'a> {
    /// The command got every value it asked for and has nothing left that can fail: write
    /// the value cache (still under this reader's lock) when this reader decrypted values
    /// it did not hold, and say under `-v` what the cache did. Never fails: a cache that
    /// cannot be written (a read-only store) only means the next command decrypts again.
    /// A command that can still fail after its reads uses [`Reader::hand_back`] instead.
    pub fn finish(self) {
        let store = self.store;
        let (mut notes, cache) = self.cache_notes();
        if let Some(mut cache) = cache
            && let Err(e) = cache.save(self.header.generation)
        {
            notes.push(not_written(&e));
        }
        if store.verbose {
            for note in notes {
                store.note(&note);
            }
        }
    }

    /// Done reading: release the store's lock and return the `-v` notes (empty without
    /// `-v`) and the value cache write, which the caller makes with [`CacheWrite::write`]
    /// only once the command has succeeded (`exec` and `export` still mint OAuth tokens,
    /// which can be refused, after this). A command that fails drops it: the store, its
    /// cache included, stays as it was.
    pub fn hand_back(self) -> (Vec<String>, CacheWrite) {
        let (mut notes, cache) = self.cache_notes();
        if !self.store.verbose {
            notes.clear();
        }
        let write = CacheWrite {
            root: self.store.root().to_path_buf(),
            verbose: self.store.verbose,
            store_id: self.header.store_id.clone(),
            generation: self.header.generation,
            cache,
        };
        (notes, write)
    }

    /// What the value cache did, for `-v`, and the cache if it has values to write.
    fn cache_notes(&self) -> (Vec<String>, Option<ValueCache>) {
        let mut notes = Vec::new();
        let Some(cache) = self.cache.take() else {
            return (notes, None);
        };
        let tally = cache.tally.clone();
        let why = match cache.unused() {
            None if tally.rejected > 0 => Some(format!(
                "{} of its values did not open (damaged, or sealed under another store key) and were ignored",
                tally.rejected
            )),
            None | Some(Unused::Missing) => None,
            Some(Unused::Unreadable(e)) => Some(format!("it cannot be read ({e})")),
            Some(Unused::Damaged) => Some("it is damaged".into()),
            Some(Unused::Foreign) => Some("it was written for another store".into()),
        };
        if let Some(why) = why {
            notes.push(format!(
                "agentcred: value cache ignored: {why}; values come from secrets/"
            ));
        }
        let total = tally.hits + tally.misses;
        if total > 0 {
            let from = match cache.generation() {
                Some(generation) => format!(" (written at generation {generation})"),
                None => String::new(),
            };
            notes.push(format!(
                "agentcred: value cache: {} of {total} age value{} from the cache{from}, {} decrypted from secrets/{}",
                tally.hits,
                if total == 1 { "" } else { "s" },
                tally.misses,
                if tally.stale > 0 {
                    format!(" ({} changed since cached)", tally.stale)
                } else {
                    String::new()
                }
            ));
        }
        (notes, Some(cache).filter(ValueCache::dirty))
    }
}

fn not_written(e: &dyn std::fmt::Display) -> String {
    format!("agentcred: value cache not written ({e}); the next command decrypts again")
}

/// The value cache write a reader handed back ([`Reader::hand_back`]): made by a command
/// that succeeded, dropped by one that failed.
pub struct CacheWrite {
    root: std::path::PathBuf,
    verbose: bool,
    store_id: String,
    generation: u64,
    cache: Option<ValueCache>,
}

impl CacheWrite {
    /// Write the cache if there is anything new, under the store's shared lock again and
    /// only if no commit happened since the values were read (the manifest's generation
    /// is the one the reader verified): a commit in between may have pruned or removed the
    /// cache (a recipients change), which this write must not undo. Never fails; returns
    /// the `-v` notes (empty without `-v`).
    pub fn write(self) -> Vec<String> {
        let Some(mut cache) = self.cache else {
            return Vec::new();
        };
        let written = save_if_unchanged(&self.root, &self.store_id, self.generation, &mut cache);
        match written {
            Err(e) if self.verbose => vec![not_written(&e)],
            _ => Vec::new(),
        }
    }
}

fn save_if_unchanged(
    root: &std::path::Path,
    store_id: &str,
    generation: u64,
    cache: &mut ValueCache,
) -> std::result::Result<(), String> {
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(root.join(LOCK))
        .map_err(|e| e.to_string())?;
    // A writer holding the lock means what was read is about to change.
    lock.try_lock_shared()
        .map_err(|_| "the store is being written".to_string())?;
    match manifest_generation(root) {
        Some((id, now)) if id == store_id && now == generation => {}
        _ => return Err("the store changed since its values were read".into()),
    }
    cache.save(generation).map_err(|e| e.to_string())
}

/// The store id and generation in the manifest's header, read from its first lines only
/// (the header ends at the first table); `None` when it cannot be read or parsed.
fn manifest_generation(root: &std::path::Path) -> Option<(String, u64)> {
    use std::io::Read;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(root.join(manifest::FILE_NAME))
        .ok()?;
    let mut head = Vec::with_capacity(4096);
    let mut reader = file.take(64 * 1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = reader.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
        if head.windows(2).any(|w| w == b"\n[") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let end = text.find("\n[")?;
    let header = manifest::header(&text[..=end]).ok()?;
    Some((header.store_id, header.generation))
}
