//! The local value cache: `<store>/cache/values`, the `age` values this machine has
//! already decrypted, so that `exec` of a thousand credentials costs one X25519 unwrap (the
//! store key's, which every command pays) instead of a thousand and one.
//!
//! The `secrets/NAME.age` files stay the source of truth; the cache only saves their
//! public-key work. Each record holds a credential's name, the SHA-256 of the `.age` file
//! its value was decrypted from, that file's [`FileStamp`] and the value, sealed with
//! XChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the store key and the store
//! id, with the store id, name, hash and stamp as associated data. A record is used only
//! when the sealed manifest names that very hash for that name and the file still has that
//! stamp, so a rotation, an `add --force`, a rename, a recipients change (every file is
//! encrypted again) or a `git checkout` of older files misses exactly the records whose
//! files changed, and a rollback gets the values of the files it brought back. The header
//! records the manifest generation it was written at, for `-v` and for people reading it.
//!
//! Only `age` values are cached: a keychain value is guarded by the OS login, a vault value
//! by the server's policy, and neither may land in a file that the store key opens.
//!
//! The cache is never needed: missing, unreadable, damaged, written for another store or
//! under another store key, it is ignored (and `-v` says so) and the values come from
//! their files. Writing it is best effort too (a read-only store simply has none): a temp
//! file and a rename, mode 0600, in `cache/` (0700, in the store's `.gitignore`, and with a
//! `.gitignore` of its own for stores made before that line existed). `lock` and any
//! recipients change remove it; a write transaction drops the records its commit made
//! stale. README ("The value cache") has the threat model.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

use crate::backend::age::FileStamp;
use crate::crypto::integrity::StoreKey;
use crate::manifest::Manifest;
use crate::model::credential::BackendKind;
use crate::util;

/// The directory of machine-local caches in a store (also the OAuth token cache's).
pub const DIR: &str = "cache";
/// The cache file in [`DIR`].
pub const FILE: &str = "values";
const MAGIC: &[u8] = b"agentcred-value-cache/v1\n";
const KEY_DOMAIN: &[u8] = b"agentcred/value-cache/v1";
const STORE_ID_LEN: usize = 16;
const HEADER_LEN: usize = MAGIC.len() + STORE_ID_LEN + 8 + 4;
const STAMP_LEN: usize = 48;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Larger values are not cached: their cost is the stream cipher, not the key unwrap.
pub const MAX_VALUE: usize = 64 * 1024;

/// Where the cache of the store at `root` lives.
pub fn path(root: &Path) -> PathBuf {
    root.join(DIR).join(FILE)
}

/// Remove the cache of the store at `root` (`lock`, a recipients change); `Ok(false)` when
/// there was none.
pub fn remove(root: &Path) -> io::Result<bool> {
    util::fs::remove_if_exists(&path(root))
}

/// Why the cache file was not used, for `-v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unused {
    Missing,
    Unreadable(String),
    /// Not a cache file of this format.
    Damaged,
    /// Written for another store.
    Foreign,
}

/// One record of a loaded cache file: where it lies in the file (whose layout [`index`]
/// checked) and where its name is in the cache's [`Names`]. 16 bytes a record: a cache of
/// 10,000 values keeps 160 kB of records and 100 kB of names, and reads each record's
/// bytes when it is asked for, rather than holding the 1.8 MB file.
#[derive(Clone, Copy)]
struct Record {
    start: u32,
    name_at: u32,
    name_len: u8,
    sealed_len: u32,
}

/// The names of a loaded file's records, one after another.
type Names = Vec<u8>;

/// Offsets in the bytes read from a record's hash on (see [`Record::rest`]).
const SHA_AT: usize = 0;
const STAMP_AT: usize = SHA_AT + 32;
const NONCE_AT: usize = STAMP_AT + STAMP_LEN;
const SEALED_AT: usize = NONCE_AT + NONCE_LEN + 4;

impl Record {
    fn name(self, names: &Names) -> &[u8] {
        let at = self.name_at as usize;
        &names[at..at + usize::from(self.name_len)]
    }
    /// Where in the file the record's hash, stamp, nonce, length and sealed value are.
    fn rest(self) -> (u64, usize) {
        let at = u64::from(self.start) + 1 + u64::from(self.name_len);
        (at, SEALED_AT + self.sealed_len as usize)
    }
    /// The whole record, copied as is when the file is written again.
    fn raw(self) -> (u64, usize) {
        let (at, len) = self.rest();
        (
            u64::from(self.start),
            (at - u64::from(self.start)) as usize + len,
        )
    }
}

/// `len` bytes of `file` at `at`; `None` when it cannot give them (changed since).
fn read_at(file: &std::fs::File, (at, len): (u64, usize)) -> Option<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = Zeroizing::new(vec![0; len]);
    file.read_exact_at(&mut bytes, at).ok()?;
    Some(bytes)
}

/// The records this process made, sealed as each value was decrypted and written to an
/// unnamed file (in `cache/` when it exists, else the temp directory, else memory) until
/// [`ValueCache::save`] copies them into the cache: holding 10,000 values and their map
/// until then took 3 MB. The file is gone when the process ends, saved or not.
struct Spill {
    out: SpillTo,
    /// Its records, laid out as in the cache file, in the order they were made.
    records: Vec<Record>,
    names: Names,
    len: u64,
}

/// Where a spill's records wait: an unnamed file, or memory when no file can be made
/// (the sealed records then cost what the values cost before).
enum SpillTo {
    File(io::BufWriter<std::fs::File>),
    Memory(Vec<u8>),
}

impl Spill {
    /// In an unnamed file in `cache/`, else in the temp directory (a store that cannot
    /// take it, or has no `cache/` yet: it is made only by a save, so a command that
    /// fails leaves the store as it was), else in memory. The save then says under `-v`
    /// why the cache was not written, if it cannot be.
    fn create(dir: &Path) -> Spill {
        let in_store = match std::fs::symlink_metadata(dir) {
            Ok(meta) if meta.is_dir() => tempfile::tempfile_in(dir).ok(),
            _ => None,
        };
        match in_store.map_or_else(tempfile::tempfile, Ok) {
            Ok(file) => Spill::to(SpillTo::File(io::BufWriter::with_capacity(16 * 1024, file))),
            Err(_) => Spill::to(SpillTo::Memory(Vec::new())),
        }
    }

    fn to(out: SpillTo) -> Spill {
        Spill {
            out,
            records: Vec::new(),
            names: Names::new(),
            len: 0,
        }
    }

    /// A record's bytes as they were spilled, to be written into the cache.
    fn raw(&self, record: &Record) -> io::Result<Zeroizing<Vec<u8>>> {
        match &self.out {
            SpillTo::File(out) => copy_of(Some(out.get_ref()), record),
            SpillTo::Memory(bytes) => {
                let (at, len) = record.raw();
                let at = usize::try_from(at).map_err(io::Error::other)?;
                bytes
                    .get(at..at + len)
                    .map(|raw| Zeroizing::new(raw.to_vec()))
                    .ok_or_else(|| io::Error::other("a spilled record is cut short"))
            }
        }
    }

    /// Add a sealed record; `Err` leaves the spill unusable (the caller drops it).
    fn push(&mut self, name: &[u8], fixed: &[u8], sealed: &[u8], tag: &[u8]) -> io::Result<()> {
        let start = u32::try_from(self.len).map_err(io::Error::other)?;
        let name_len = u8::try_from(name.len()).map_err(io::Error::other)?;
        let sealed_len = u32::try_from(sealed.len() + tag.len()).map_err(io::Error::other)?;
        for part in [&[name_len][..], name, fixed, sealed, tag] {
            match &mut self.out {
                SpillTo::File(out) => out.write_all(part)?,
                SpillTo::Memory(bytes) => bytes.extend_from_slice(part),
            }
        }
        self.len += (1 + name.len() + fixed.len() + sealed.len() + tag.len()) as u64;
        let name_at = u32::try_from(self.names.len()).map_err(io::Error::other)?;
        self.names.extend_from_slice(name);
        self.records.push(Record {
            start,
            name_at,
            name_len,
            sealed_len,
        });
        Ok(())
    }

    /// Flushed, its records sorted by name, the last made of each name only.
    fn finish(&mut self) -> io::Result<()> {
        if let SpillTo::File(out) = &mut self.out {
            out.flush()?;
        }
        let names = &self.names;
        self.records
            .sort_by(|a, b| a.name(names).cmp(b.name(names)).then(b.start.cmp(&a.start)));
        self.records.dedup_by(|a, b| a.name(names) == b.name(names));
        Ok(())
    }

    fn holds(&self, name: &[u8]) -> bool {
        let names = &self.names;
        self.records
            .binary_search_by(|r| r.name(names).cmp(name))
            .is_ok()
    }
}

/// What this process did with the cache, for the `-v` summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Values taken from the cache.
    pub hits: usize,
    /// Values decrypted from their files.
    pub misses: usize,
    /// Records for a name whose file changed since (another hash or stamp).
    pub stale: usize,
    /// Records that did not open (tampered with, or sealed under another store key).
    pub rejected: usize,
}

/// The cache of one store, as loaded by a reader, plus what it decrypted since.
pub struct ValueCache {
    dir: PathBuf,
    store_id: String,
    cipher: XChaCha20Poly1305,
    /// The loaded file, open for reading records when they are asked for: a file put in
    /// its place meanwhile is another file (writers rename), not a change to this one.
    file: Option<Loaded>,
    names: Names,
    records: Vec<Record>,
    /// Generation the file was written at.
    generation: Option<u64>,
    unused: Option<Unused>,
    /// What this process decrypted, sealed (`None` until the first, or after a failed
    /// write to it, which leaves the cache as it was).
    spill: Option<Spill>,
    spill_failed: bool,
    pub tally: Tally,
}

/// A loaded cache file: open, and its bytes too when it is small.
struct Loaded {
    file: std::fs::File,
    /// The whole file when it is at most [`HELD_MAX`]: one read, where reading each
    /// record when it is asked for was a system call a value (ten for `exec` of 10).
    held: Option<Zeroizing<Vec<u8>>>,
}

/// The largest cache file kept in memory whole (about 350 values of 100 bytes).
const HELD_MAX: u64 = 64 * 1024;

impl Loaded {
    fn read(&self, (at, len): (u64, usize)) -> Option<Zeroizing<Vec<u8>>> {
        let Some(held) = &self.held else {
            return read_at(&self.file, (at, len));
        };
        let at = usize::try_from(at).ok()?;
        Some(Zeroizing::new(held.get(at..at.checked_add(len)?)?.to_vec()))
    }

    /// A record's bytes as they are, to be written again.
    fn copy(&self, record: &Record) -> io::Result<Zeroizing<Vec<u8>>> {
        self.read(record.raw()).ok_or_else(changed)
    }
}

fn cipher(key: &StoreKey, store_id: &str) -> XChaCha20Poly1305 {
    let derived = key.derive(KEY_DOMAIN, store_id.as_bytes());
    XChaCha20Poly1305::new(derived.expose_secret().into())
}

/// The associated data of a record: it binds the value to its store, name, file hash and
/// file stamp.
fn associated_data(store_id: &str, name: &[u8], sha256: &[u8], stamp: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(MAGIC.len() + store_id.len() + name.len() + 96);
    ad.extend_from_slice(MAGIC);
    ad.extend_from_slice(store_id.as_bytes());
    ad.push(0);
    ad.extend_from_slice(name);
    ad.push(0);
    ad.extend_from_slice(sha256);
    ad.extend_from_slice(stamp);
    ad
}

fn stamp_bytes(stamp: &FileStamp) -> [u8; STAMP_LEN] {
    let mut out = [0u8; STAMP_LEN];
    let fields: [u64; 6] = [
        stamp.ino,
        stamp.size,
        stamp.mtime.0 as u64,
        stamp.mtime.1 as u64,
        stamp.ctime.0 as u64,
        stamp.ctime.1 as u64,
    ];
    for (chunk, field) in out.chunks_exact_mut(8).zip(fields) {
        chunk.copy_from_slice(&field.to_le_bytes());
    }
    out
}

/// Parse a SHA-256 in hex (as the manifest records it).
pub fn sha256_from_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A cache file's layout read through `input` (`len` bytes): `Err` when it is not one of
/// this store's. Every record's bounds are checked against the file's length, and only
/// the records `keep` accepts (given each name and file hash) are kept.
struct Index {
    generation: u64,
    /// How many records the file has (kept or not).
    count: usize,
    names: Names,
    records: Vec<Record>,
}

fn index(
    input: &mut impl io::Read,
    len: u64,
    store_id: &str,
    keep: &mut dyn FnMut(&[u8], &[u8; 32]) -> bool,
) -> Result<Index, Unused> {
    let damaged = |_| Unused::Damaged;
    if len < HEADER_LEN as u64 {
        return Err(Unused::Damaged);
    }
    let mut header = [0u8; HEADER_LEN];
    input.read_exact(&mut header).map_err(damaged)?;
    if !header.starts_with(MAGIC) {
        return Err(Unused::Damaged);
    }
    let id = &header[MAGIC.len()..MAGIC.len() + STORE_ID_LEN];
    if id != store_id.as_bytes() {
        return Err(Unused::Foreign);
    }
    let at = MAGIC.len() + STORE_ID_LEN;
    let generation =
        u64::from_le_bytes(header[at..at + 8].try_into().map_err(|_| Unused::Damaged)?);
    let count =
        u32::from_le_bytes(header[at + 8..].try_into().map_err(|_| Unused::Damaged)?) as usize;
    // Each record takes at least this much: a count larger than the file is damage.
    let least = 1 + 32 + STAMP_LEN + NONCE_LEN + 4 + TAG_LEN;
    if count as u64 > len / least as u64 {
        return Err(Unused::Damaged);
    }
    let mut index = Index {
        generation,
        count,
        names: Names::new(),
        records: Vec::with_capacity(count),
    };
    let mut at = HEADER_LEN as u64;
    let mut name = [0u8; 255];
    let mut fixed = [0u8; 32 + STAMP_LEN + NONCE_LEN + 4];
    for _ in 0..count {
        let start = u32::try_from(at).map_err(|_| Unused::Damaged)?;
        let mut name_len = [0u8; 1];
        input.read_exact(&mut name_len).map_err(damaged)?;
        let name = &mut name[..usize::from(name_len[0])];
        input.read_exact(name).map_err(damaged)?;
        input.read_exact(&mut fixed).map_err(damaged)?;
        let sealed_len = u32::from_le_bytes(
            fixed[fixed.len() - 4..]
                .try_into()
                .map_err(|_| Unused::Damaged)?,
        );
        if (sealed_len as usize) < TAG_LEN {
            return Err(Unused::Damaged);
        }
        at += (1 + name.len() + fixed.len()) as u64 + u64::from(sealed_len);
        // Offsets are kept as u32: a larger file is not one this code wrote.
        if at > len || u32::try_from(at).is_err() {
            return Err(Unused::Damaged);
        }
        let skipped = io::copy(
            &mut io::Read::take(&mut *input, u64::from(sealed_len)),
            &mut io::sink(),
        )
        .map_err(damaged)?;
        if skipped != u64::from(sealed_len) {
            return Err(Unused::Damaged);
        }
        let sha256: &[u8; 32] = fixed[..32].try_into().map_err(|_| Unused::Damaged)?;
        if keep(name, sha256) {
            let name_at = u32::try_from(index.names.len()).map_err(|_| Unused::Damaged)?;
            index.names.extend_from_slice(name);
            index.records.push(Record {
                start,
                name_at,
                name_len: name_len[0],
                sealed_len,
            });
        }
    }
    if at != len {
        return Err(Unused::Damaged);
    }
    Ok(index)
}

/// The cache file in `dir`, opened (never through a symlink) with its length.
fn open_file(dir: &Path) -> io::Result<Option<(std::fs::File, u64)>> {
    // cache/ itself is not followed when it is a symlink (the file is opened with
    // O_NOFOLLOW); a planted file could not open anyway, but nothing is read there.
    if let Ok(meta) = std::fs::symlink_metadata(dir)
        && !meta.is_dir()
    {
        return Err(io::Error::other("cache/ is not a directory"));
    }
    match util::fs::open_nofollow(&dir.join(FILE)) {
        Ok(file) => {
            let len = file.metadata()?.len();
            Ok(Some((file, len)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl ValueCache {
    /// Load the cache of the store at `root` (never fails: see [`Unused`]): its layout
    /// and names; a record's bytes are read when it is asked for.
    pub fn load(root: &Path, store_id: &str, key: &StoreKey) -> ValueCache {
        let mut cache = ValueCache {
            dir: root.join(DIR),
            store_id: store_id.to_string(),
            cipher: cipher(key, store_id),
            file: None,
            names: Names::new(),
            records: Vec::new(),
            generation: None,
            unused: None,
            spill: None,
            spill_failed: false,
            tally: Tally::default(),
        };
        match open_file(&cache.dir) {
            Ok(Some((file, len))) => {
                let held = (len <= HELD_MAX).then(|| {
                    let mut bytes = Zeroizing::new(vec![0; len as usize]);
                    io::Read::read_exact(&mut &file, &mut bytes).map(|()| bytes)
                });
                let indexed = match &held {
                    Some(Ok(bytes)) => index(&mut &bytes[..], len, store_id, &mut |_, _| true),
                    Some(Err(_)) => Err(Unused::Damaged),
                    None => {
                        let mut input = io::BufReader::with_capacity(64 * 1024, &file);
                        index(&mut input, len, store_id, &mut |_, _| true)
                    }
                };
                match indexed {
                    Ok(index) => {
                        cache.generation = Some(index.generation);
                        cache.names = index.names;
                        cache.records = index.records;
                        cache.file = Some(Loaded {
                            file,
                            held: held.and_then(Result::ok),
                        });
                    }
                    Err(why) => cache.unused = Some(why),
                }
            }
            Ok(None) => cache.unused = Some(Unused::Missing),
            Err(e) => cache.unused = Some(Unused::Unreadable(e.to_string())),
        }
        cache
    }

    fn name_of(&self, record: &Record) -> &[u8] {
        record.name(&self.names)
    }

    /// The record for `name`: records are written sorted by name.
    fn find(&self, name: &str) -> Option<&Record> {
        let at = self
            .records
            .binary_search_by(|r| self.name_of(r).cmp(name.as_bytes()))
            .ok()?;
        self.records.get(at)
    }

    /// The cached value of `name` for the file with this hash and stamp, if there is one
    /// that opens. Counts a hit or why not; a miss is followed by [`ValueCache::put`].
    pub fn get(
        &mut self,
        name: &str,
        sha256: &[u8; 32],
        stamp: &FileStamp,
    ) -> Option<SecretSlice<u8>> {
        let opened = {
            let record = *self.find(name)?;
            let Some(rest) = self.file.as_ref().and_then(|file| file.read(record.rest())) else {
                self.tally.rejected += 1;
                return None;
            };
            if rest[SHA_AT..STAMP_AT] != sha256[..]
                || rest[STAMP_AT..NONCE_AT] != stamp_bytes(stamp)[..]
            {
                self.tally.stale += 1;
                return None;
            }
            self.open(&record, &rest)
        };
        match opened {
            Some(value) => {
                self.tally.hits += 1;
                Some(value)
            }
            None => {
                self.tally.rejected += 1;
                None
            }
        }
    }

    /// Open a record whose bytes from its hash on are `rest` (see [`Record::rest`]).
    fn open(&self, record: &Record, rest: &[u8]) -> Option<SecretSlice<u8>> {
        let ad = associated_data(
            &self.store_id,
            self.name_of(record),
            &rest[SHA_AT..STAMP_AT],
            &rest[STAMP_AT..NONCE_AT],
        );
        let sealed = &rest[SEALED_AT..];
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        // Exactly the value's length, so turning it into a boxed slice does not copy it.
        let mut plain = Vec::with_capacity(ciphertext.len());
        plain.extend_from_slice(ciphertext);
        let nonce = XNonce::from_slice(&rest[NONCE_AT..NONCE_AT + NONCE_LEN]);
        match self
            .cipher
            .decrypt_in_place_detached(nonce, &ad, &mut plain, Tag::from_slice(tag))
        {
            Ok(()) => Some(SecretSlice::from(plain)),
            Err(_) => {
                zeroize::Zeroize::zeroize(&mut plain);
                None
            }
        }
    }

    /// Remember a value just decrypted from the file with this hash (and, when it was
    /// `NAME.age` itself, its stamp), to be written by [`ValueCache::save`].
    pub fn put(
        &mut self,
        name: &str,
        sha256: [u8; 32],
        stamp: Option<FileStamp>,
        value: &SecretSlice<u8>,
    ) {
        self.tally.misses += 1;
        let value = value.expose_secret();
        // A value from a pending file has no stamp: the next read finds it renamed.
        let Some(stamp) = stamp else { return };
        if value.len() > MAX_VALUE || name.len() > usize::from(u8::MAX) || self.spill_failed {
            return;
        }
        let pushed =
            self.seal(name.as_bytes(), sha256, &stamp, value)
                .and_then(|(fixed, sealed, tag)| {
                    self.spill
                        .get_or_insert_with(|| Spill::create(&self.dir))
                        .push(name.as_bytes(), &fixed, &sealed, &tag)
                });
        if pushed.is_err() {
            // A record half written cannot be told from a whole one: none is kept.
            self.spill = None;
            self.spill_failed = true;
        }
    }

    /// Seal `value` as a record: its hash, stamp, nonce and length (`fixed`), the
    /// ciphertext and the tag.
    #[allow(clippy::type_complexity)]
    fn seal(
        &self,
        name: &[u8],
        sha256: [u8; 32],
        stamp: &FileStamp,
        value: &[u8],
    ) -> io::Result<([u8; SEALED_AT], Zeroizing<Vec<u8>>, Tag)> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(io::Error::other)?;
        let stamp = stamp_bytes(stamp);
        let ad = associated_data(&self.store_id, name, &sha256, &stamp);
        let mut sealed = Zeroizing::new(value.to_vec());
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &ad, &mut sealed)
            .map_err(|_| io::Error::other("cannot seal a value"))?;
        let len = u32::try_from(sealed.len() + TAG_LEN).map_err(io::Error::other)?;
        let mut fixed = [0u8; SEALED_AT];
        fixed[SHA_AT..STAMP_AT].copy_from_slice(&sha256);
        fixed[STAMP_AT..NONCE_AT].copy_from_slice(&stamp);
        fixed[NONCE_AT..NONCE_AT + NONCE_LEN].copy_from_slice(&nonce);
        fixed[NONCE_AT + NONCE_LEN..].copy_from_slice(&len.to_le_bytes());
        Ok((fixed, sealed, tag))
    }

    /// Whether this process has anything new to write.
    pub fn dirty(&self) -> bool {
        self.spill.as_ref().is_some_and(|s| !s.records.is_empty())
    }

    /// Why the file was not used, if it was not.
    pub fn unused(&self) -> Option<&Unused> {
        self.unused.as_ref()
    }

    /// The generation the loaded file was written at.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// Write the cache again: the loaded records (copied as they are, except those this
    /// process replaced or found not to open) and the new ones, sorted by name. Best
    /// effort: the error is for `-v`, never for the command.
    pub fn save(&mut self, generation: u64) -> io::Result<()> {
        let Some(mut spill) = self.spill.take() else {
            return Ok(());
        };
        spill.finish()?;
        let mut records: Vec<(&[u8], RecordOut)> = Vec::new();
        let dropped_bad = self.tally.rejected > 0;
        for record in &self.records {
            let name = self.name_of(record);
            // Records that did not open are dropped: they would fail again.
            let opens = || {
                let file = self.file.as_ref()?;
                self.open(record, &file.read(record.rest())?)
            };
            if spill.holds(name) || (dropped_bad && opens().is_none()) {
                continue;
            }
            records.push((name, RecordOut::Copied(*record)));
        }
        for record in &spill.records {
            records.push((record.name(&spill.names), RecordOut::Made(*record)));
        }
        records.sort_by(|a, b| a.0.cmp(b.0));
        // Written as it is made: the file holds only sealed records, and a copy of it
        // in memory was another 1.8 MB for 10,000 values.
        write(&self.dir, |out| {
            out.write_all(MAGIC)?;
            out.write_all(self.store_id.as_bytes())?;
            out.write_all(&generation.to_le_bytes())?;
            out.write_all(&(records.len() as u32).to_le_bytes())?;
            for (_, record) in &records {
                let bytes = match record {
                    RecordOut::Copied(record) => {
                        self.file.as_ref().ok_or_else(changed)?.copy(record)?
                    }
                    RecordOut::Made(record) => spill.raw(record)?,
                };
                out.write_all(&bytes)?;
            }
            Ok(())
        })
    }
}

/// Where a record of the file written comes from: the loaded file or the spill.
enum RecordOut {
    Copied(Record),
    Made(Record),
}

/// A loaded record's bytes as they are, to be written again.
fn copy_of(file: Option<&std::fs::File>, record: &Record) -> io::Result<Zeroizing<Vec<u8>>> {
    file.and_then(|file| read_at(file, record.raw()))
        .ok_or_else(changed)
}

fn changed() -> io::Error {
    io::Error::other("the cache file changed while it was read")
}

/// Create `cache/` (0700, not a symlink, with its own `.gitignore`) and replace the file
/// with what `fill` writes.
fn write(
    dir: &Path,
    fill: impl FnOnce(&mut io::BufWriter<&std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(io::Error::other(format!(
                "{} is not a directory (a symlink?)",
                dir.display()
            )));
        }
        Ok(meta) if meta.mode() & 0o077 == 0 => {}
        Ok(_) => util::fs::create_private_dir(dir)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            util::fs::create_private_dir(dir)?;
        }
        Err(e) => return Err(e),
    }
    let ignore = dir.join(".gitignore");
    if std::fs::symlink_metadata(&ignore).is_err() {
        // Everything in cache/ is machine-local, also in a store whose .gitignore predates
        // the line that says so.
        util::fs::write_replace(dir, ".gitignore", b"*\n")?;
    }
    // No fsync: a cache lost in a power cut is only a slower next command.
    util::fs::write_replace_with(dir, FILE, fill)
}

/// After a write transaction committed `manifest`: drop the records whose credential is
/// gone, moved to another backend or has another file now. Best effort, like every write
/// of the cache; nothing is decrypted (records are copied as they are).
pub fn prune(root: &Path, manifest: &Manifest) -> io::Result<()> {
    let dir = root.join(DIR);
    let Some((file, len)) = open_file(&dir)? else {
        return Ok(());
    };
    let mut current = |name: &[u8], sha256: &[u8; 32]| {
        std::str::from_utf8(name)
            .ok()
            .and_then(|n| manifest.credentials.get(n))
            .filter(|entry| entry.backend == BackendKind::Age)
            .and_then(|entry| entry.sha256.as_deref())
            .and_then(sha256_from_hex)
            .is_some_and(|sha| &sha == sha256)
    };
    let mut input = io::BufReader::with_capacity(64 * 1024, &file);
    let Ok(kept) = index(&mut input, len, &manifest.store_id, &mut current) else {
        // Not ours to trust, and nothing to keep.
        return remove(root).map(|_| ());
    };
    drop(input);
    if kept.records.len() == kept.count {
        return Ok(());
    }
    if kept.records.is_empty() {
        return remove(root).map(|_| ());
    }
    write(&dir, |out| {
        out.write_all(MAGIC)?;
        out.write_all(manifest.store_id.as_bytes())?;
        out.write_all(&kept.generation.max(manifest.generation).to_le_bytes())?;
        out.write_all(&(kept.records.len() as u32).to_le_bytes())?;
        for record in &kept.records {
            out.write_all(&copy_of(Some(&file), record)?)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64) -> FileStamp {
        FileStamp {
            ino,
            size: 400,
            mtime: (1_700_000_000, 5),
            ctime: (1_700_000_001, 6),
        }
    }

    fn value(text: &str) -> SecretSlice<u8> {
        SecretSlice::from(text.as_bytes().to_vec())
    }

    fn shown(v: Option<SecretSlice<u8>>) -> Option<String> {
        v.map(|v| String::from_utf8(v.expose_secret().to_vec()).unwrap())
    }

    const ID: &str = "0123456789abcdef";

    #[test]
    fn round_trip_and_exact_invalidation() {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::generate().unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(cache.unused(), Some(&Unused::Missing));
        cache.put("b", [2; 32], Some(stamp(2)), &value("two"));
        cache.put("a", [1; 32], Some(stamp(1)), &value("one"));
        cache.put("pending", [3; 32], None, &value("not cached"));
        cache.save(7).unwrap();
        let mode = std::fs::metadata(path(dir.path())).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);

        let mut cache = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(cache.unused(), None);
        assert_eq!(cache.generation(), Some(7));
        assert_eq!(shown(cache.get("a", &[1; 32], &stamp(1))).unwrap(), "one");
        assert_eq!(shown(cache.get("b", &[2; 32], &stamp(2))).unwrap(), "two");
        assert!(
            cache.get("b", &[9; 32], &stamp(2)).is_none(),
            "another file"
        );
        assert!(
            cache.get("b", &[2; 32], &stamp(9)).is_none(),
            "file changed"
        );
        assert!(cache.get("pending", &[3; 32], &stamp(3)).is_none());
        assert_eq!(
            cache.tally,
            Tally {
                hits: 2,
                misses: 0,
                stale: 2,
                rejected: 0
            }
        );
        // Replacing one record keeps the other as it was.
        cache.put("b", [9; 32], Some(stamp(9)), &value("nine"));
        cache.save(8).unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(shown(cache.get("a", &[1; 32], &stamp(1))).unwrap(), "one");
        assert_eq!(shown(cache.get("b", &[9; 32], &stamp(9))).unwrap(), "nine");
        assert!(cache.get("b", &[2; 32], &stamp(2)).is_none());
    }

    #[test]
    fn values_wait_sealed_in_an_unnamed_file_and_the_last_of_a_name_wins() {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::generate().unwrap();
        std::fs::create_dir(dir.path().join(DIR)).unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        cache.put("b", [2; 32], Some(stamp(2)), &value("two"));
        cache.put("a", [1; 32], Some(stamp(1)), &value("first"));
        cache.put("a", [4; 32], Some(stamp(4)), &value("second"));
        assert!(cache.dirty());
        // Nothing named is written before the save: the records wait in an unnamed file.
        let listed = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path().join(DIR))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert!(listed().is_empty(), "{:?}", listed());
        let spilled = cache.spill.as_ref().unwrap().len;
        // Each record holds its value sealed: no value is in the spill in the clear.
        let mut bytes = Vec::new();
        let SpillTo::File(out) = &mut cache.spill.as_mut().unwrap().out else {
            panic!("spilled to memory")
        };
        out.flush().unwrap();
        let mut file = out.get_ref().try_clone().unwrap();
        io::Seek::seek(&mut file, io::SeekFrom::Start(0)).unwrap();
        io::Read::read_to_end(&mut file, &mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, spilled);
        for clear in [&b"two"[..], b"first", b"second"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear));
        }
        cache.save(3).unwrap();
        assert_eq!(listed(), [".gitignore", FILE]);
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(
            shown(cache.get("a", &[4; 32], &stamp(4))).unwrap(),
            "second"
        );
        assert!(cache.get("a", &[1; 32], &stamp(1)).is_none());
        assert_eq!(shown(cache.get("b", &[2; 32], &stamp(2))).unwrap(), "two");
        assert_eq!(cache.records.len(), 2);
        // A process that decrypted nothing writes nothing.
        std::fs::remove_file(path(dir.path())).unwrap();
        assert!(!cache.dirty());
        cache.save(4).unwrap();
        assert!(!path(dir.path()).exists());
    }

    #[test]
    fn with_no_file_to_spill_to_the_sealed_records_wait_in_memory() {
        let (dir, key, _) = two_records();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        // As when neither cache/ nor the temp directory can take a file.
        cache.spill = Some(Spill::to(SpillTo::Memory(Vec::new())));
        cache.put("c", [3; 32], Some(stamp(3)), &value("three"));
        cache.put("a", [5; 32], Some(stamp(5)), &value("five"));
        let SpillTo::Memory(bytes) = &cache.spill.as_ref().unwrap().out else {
            panic!("spilled to a file")
        };
        for clear in [&b"three"[..], b"five"] {
            assert!(!bytes.windows(clear.len()).any(|w| w == clear));
        }
        cache.save(2).unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(shown(cache.get("a", &[5; 32], &stamp(5))).unwrap(), "five");
        assert_eq!(shown(cache.get("b", &[2; 32], &stamp(2))).unwrap(), "two");
        assert_eq!(shown(cache.get("c", &[3; 32], &stamp(3))).unwrap(), "three");
    }

    /// A cache file of two records, "a" and "b", under a new store key: the directory,
    /// the key and the file's bytes.
    fn two_records() -> (tempfile::TempDir, StoreKey, Vec<u8>) {
        two_records_and("")
    }

    /// Records a (`one`) and b (`two`), plus `0` (before them) with this value when it is
    /// not empty.
    fn two_records_and(z: &str) -> (tempfile::TempDir, StoreKey, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::generate().unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        if !z.is_empty() {
            cache.put("0", [9; 32], Some(stamp(9)), &value(z));
        }
        cache.put("a", [1; 32], Some(stamp(1)), &value("one"));
        cache.put("b", [2; 32], Some(stamp(2)), &value("two"));
        cache.save(1).unwrap();
        let good = std::fs::read(path(dir.path())).unwrap();
        (dir, key, good)
    }

    #[test]
    fn another_key_or_store_or_any_flipped_byte_is_never_trusted() {
        let (dir, key, good) = two_records();

        let other = StoreKey::generate().unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &other);
        assert!(cache.get("a", &[1; 32], &stamp(1)).is_none());
        assert_eq!(cache.tally.rejected, 1);
        let cache = ValueCache::load(dir.path(), "fedcba9876543210", &key);
        assert_eq!(cache.unused(), Some(&Unused::Foreign));

        // Every single flipped bit: either the file is refused or no record opens to a
        // value other than its own.
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x04;
            std::fs::write(path(dir.path()), &bad).unwrap();
            let mut cache = ValueCache::load(dir.path(), ID, &key);
            for (name, sha, ino, text) in [("a", 1, 1, "one"), ("b", 2, 2, "two")] {
                if let Some(v) = shown(cache.get(name, &[sha; 32], &stamp(ino))) {
                    assert_eq!(v, text, "byte {at}");
                }
            }
            let generation = MAGIC.len() + STORE_ID_LEN..MAGIC.len() + STORE_ID_LEN + 8;
            assert!(
                cache.tally.hits < 2 || generation.contains(&at),
                "flipping byte {at} went unnoticed"
            );
        }
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let (dir, key, good) = two_records();
        for len in 0..good.len() {
            std::fs::write(path(dir.path()), &good[..len]).unwrap();
            let mut cache = ValueCache::load(dir.path(), ID, &key);
            assert_eq!(cache.unused(), Some(&Unused::Damaged), "{len} bytes");
            assert!(cache.get("a", &[1; 32], &stamp(1)).is_none());
        }
    }

    /// Records are read when asked for: a file cut short in place after loading (not
    /// something agentcred does: it replaces the file) gives misses and a failed save,
    /// never a value or a panic.
    #[test]
    fn a_file_cut_after_loading_gives_misses() {
        // Larger than HELD_MAX: records are read from the file when asked for.
        let (dir, key, good) = two_records_and(&"x".repeat(HELD_MAX as usize));
        assert!(good.len() as u64 > HELD_MAX);
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(cache.unused(), None);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path(dir.path()))
            .unwrap();
        file.set_len(good.len() as u64 / 2).unwrap();
        assert!(cache.get("a", &[1; 32], &stamp(1)).is_none());
        assert!(cache.get("b", &[2; 32], &stamp(2)).is_none());
        assert_eq!(cache.tally.rejected, 2);
        cache.put("c", [3; 32], Some(stamp(3)), &value("three"));
        assert!(
            cache.save(2).is_ok(),
            "records that do not open are dropped"
        );
        let mut again = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(shown(again.get("c", &[3; 32], &stamp(3))).unwrap(), "three");
        assert!(again.get("a", &[1; 32], &stamp(1)).is_none());
    }

    #[test]
    fn a_small_file_is_read_once_and_used_as_loaded() {
        let (dir, key, good) = two_records();
        assert!(good.len() as u64 <= HELD_MAX);
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        // Cut (or replaced) after loading: the records read at load time still open,
        // as a renamed-over file's would; nothing is read from the file again.
        std::fs::write(path(dir.path()), b"").unwrap();
        assert_eq!(shown(cache.get("a", &[1; 32], &stamp(1))).unwrap(), "one");
        assert_eq!(shown(cache.get("b", &[2; 32], &stamp(2))).unwrap(), "two");
        // A save copies them from memory.
        cache.put("c", [3; 32], Some(stamp(3)), &value("three"));
        cache.save(2).unwrap();
        let mut again = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(shown(again.get("a", &[1; 32], &stamp(1))).unwrap(), "one");
        assert_eq!(shown(again.get("c", &[3; 32], &stamp(3))).unwrap(), "three");
    }

    proptest::proptest! {
        /// Whatever follows this store's header (a record count, then anything), loading
        /// it, looking names up and writing it again never panics, and nothing opens: no
        /// record was sealed under this key.
        #[test]
        fn any_bytes_after_the_header_are_safe(
            count in 0u32..6,
            records in proptest::collection::vec(
                (0u8..12, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160)),
                0..6,
            ),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let key = StoreKey::generate().unwrap();
            let mut bytes = [MAGIC, ID.as_bytes(), &3u64.to_le_bytes(), &count.to_le_bytes()].concat();
            for (name_len, rest) in &records {
                bytes.push(*name_len);
                bytes.extend_from_slice(rest);
            }
            std::fs::create_dir(dir.path().join(DIR)).unwrap();
            std::fs::write(path(dir.path()), &bytes).unwrap();
            let mut cache = ValueCache::load(dir.path(), ID, &key);
            for name in ["", "a", "ab", "zzzzzzzzzzzz"] {
                proptest::prop_assert!(cache.get(name, &[0; 32], &stamp(0)).is_none());
            }
            cache.put("new", [4; 32], Some(stamp(4)), &value("four"));
            cache.save(4).unwrap();
            let mut again = ValueCache::load(dir.path(), ID, &key);
            proptest::prop_assert_eq!(shown(again.get("new", &[4; 32], &stamp(4))), Some("four".into()));
        }
    }

    #[test]
    fn prune_keeps_only_current_age_records() {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::generate().unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        cache.put("a", [1; 32], Some(stamp(1)), &value("one"));
        cache.put("b", [2; 32], Some(stamp(2)), &value("two"));
        cache.save(1).unwrap();
        let mut manifest = Manifest::new(ID.into(), "ff".repeat(32));
        let toml = format!(
            "env = \"A\"\nkind = \"secret\"\nbackend = \"age\"\ncreated_at = \"2026-01-01T00:00:00Z\"\nrotated_at = \"2026-01-01T00:00:00Z\"\nsha256 = \"{}\"\n",
            "01".repeat(32)
        );
        manifest
            .credentials
            .insert("a".into(), toml::from_str(&toml).unwrap());
        prune(dir.path(), &manifest).unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
        assert_eq!(shown(cache.get("a", &[1; 32], &stamp(1))).unwrap(), "one");
        assert!(cache.get("b", &[2; 32], &stamp(2)).is_none());
        manifest.credentials.clear();
        prune(dir.path(), &manifest).unwrap();
        assert!(!path(dir.path()).exists());
    }

    #[test]
    fn hex() {
        assert_eq!(sha256_from_hex(&"0f".repeat(32)), Some([15; 32]));
        assert_eq!(sha256_from_hex(&"0F".repeat(32)), None);
        assert_eq!(sha256_from_hex("00"), None);
    }
}
