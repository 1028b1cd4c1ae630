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

use std::collections::BTreeMap;
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

/// One record of a loaded cache file, as where it lies in the file's bytes (whose bounds
/// [`parse`] checked): 12 bytes a record, so a cache of 10,000 values keeps 120 kB of
/// records rather than a parsed copy of every field.
#[derive(Clone, Copy)]
struct Record {
    start: u32,
    name_len: u8,
    sealed_len: u32,
}

impl Record {
    fn name(self) -> std::ops::Range<usize> {
        let at = self.start as usize + 1;
        at..at + usize::from(self.name_len)
    }
    fn sha256(self) -> std::ops::Range<usize> {
        let at = self.name().end;
        at..at + 32
    }
    fn stamp(self) -> std::ops::Range<usize> {
        let at = self.sha256().end;
        at..at + STAMP_LEN
    }
    fn nonce(self) -> std::ops::Range<usize> {
        let at = self.stamp().end;
        at..at + NONCE_LEN
    }
    fn sealed(self) -> std::ops::Range<usize> {
        let at = self.nonce().end + 4;
        at..at + self.sealed_len as usize
    }
    /// The whole record, copied as is when the file is written again.
    fn raw(self) -> std::ops::Range<usize> {
        self.start as usize..self.sealed().end
    }
}

/// A record made in this process, sealed when the file is written.
struct Fresh {
    sha256: [u8; 32],
    stamp: FileStamp,
    value: SecretSlice<u8>,
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
    bytes: Zeroizing<Vec<u8>>,
    records: Vec<Record>,
    /// Generation the file was written at.
    generation: Option<u64>,
    unused: Option<Unused>,
    fresh: BTreeMap<String, Fresh>,
    pub tally: Tally,
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

/// A little reader over the file's bytes; `None` at the end of the data.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, len: usize) -> Option<(usize, usize)> {
        let end = self.at.checked_add(len)?;
        if end > self.bytes.len() {
            return None;
        }
        let span = (self.at, end);
        self.at = end;
        Some(span)
    }

    fn u32(&mut self) -> Option<u32> {
        let (a, b) = self.take(4)?;
        Some(u32::from_le_bytes(self.bytes[a..b].try_into().ok()?))
    }
}

/// Parse a cache file's records; `Err` when it is not one of this store's.
fn parse(bytes: &[u8], store_id: &str) -> Result<(u64, Vec<Record>), Unused> {
    if bytes.len() < HEADER_LEN || !bytes.starts_with(MAGIC) {
        return Err(Unused::Damaged);
    }
    let id = &bytes[MAGIC.len()..MAGIC.len() + STORE_ID_LEN];
    if id != store_id.as_bytes() {
        return Err(Unused::Foreign);
    }
    let mut cursor = Cursor {
        bytes,
        at: MAGIC.len() + STORE_ID_LEN,
    };
    let damaged = || Unused::Damaged;
    let (a, b) = cursor.take(8).ok_or_else(damaged)?;
    let generation = u64::from_le_bytes(bytes[a..b].try_into().map_err(|_| damaged())?);
    let count = cursor.u32().ok_or_else(damaged)? as usize;
    // Each record takes at least this much: a count larger than the file is damage.
    let least = 1 + 32 + STAMP_LEN + NONCE_LEN + 4 + TAG_LEN;
    if count > bytes.len() / least {
        return Err(Unused::Damaged);
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let start = u32::try_from(cursor.at).map_err(|_| damaged())?;
        let (a, _) = cursor.take(1).ok_or_else(damaged)?;
        let name_len = bytes[a];
        cursor
            .take(usize::from(name_len) + 32 + STAMP_LEN + NONCE_LEN)
            .ok_or_else(damaged)?;
        let sealed_len = cursor.u32().ok_or_else(damaged)?;
        if (sealed_len as usize) < TAG_LEN {
            return Err(Unused::Damaged);
        }
        cursor.take(sealed_len as usize).ok_or_else(damaged)?;
        // Offsets are kept as u32: a larger file is not one this code wrote.
        u32::try_from(cursor.at).map_err(|_| damaged())?;
        records.push(Record {
            start,
            name_len,
            sealed_len,
        });
    }
    if cursor.at != bytes.len() {
        return Err(Unused::Damaged);
    }
    Ok((generation, records))
}

impl ValueCache {
    /// Load the cache of the store at `root` (never fails: see [`Unused`]).
    pub fn load(root: &Path, store_id: &str, key: &StoreKey) -> ValueCache {
        let mut cache = ValueCache {
            dir: root.join(DIR),
            store_id: store_id.to_string(),
            cipher: cipher(key, store_id),
            bytes: Zeroizing::new(Vec::new()),
            records: Vec::new(),
            generation: None,
            unused: None,
            fresh: BTreeMap::new(),
            tally: Tally::default(),
        };
        // cache/ itself is not followed when it is a symlink (the file is opened with
        // O_NOFOLLOW); a planted file could not open anyway, but nothing is read there.
        let read = match std::fs::symlink_metadata(&cache.dir) {
            Ok(meta) if !meta.is_dir() => Err(io::Error::other("cache/ is not a directory")),
            _ => util::fs::read_optional(&cache.dir.join(FILE)),
        };
        match read {
            Ok(Some(bytes)) => {
                cache.bytes = Zeroizing::new(bytes);
                match parse(&cache.bytes, store_id) {
                    Ok((generation, records)) => {
                        cache.generation = Some(generation);
                        cache.records = records;
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
        &self.bytes[record.name()]
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
            let record = self.find(name)?;
            if &self.bytes[record.sha256()] != sha256
                || self.bytes[record.stamp()] != stamp_bytes(stamp)[..]
            {
                self.tally.stale += 1;
                return None;
            }
            self.open(record)
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

    fn open(&self, record: &Record) -> Option<SecretSlice<u8>> {
        let ad = associated_data(
            &self.store_id,
            self.name_of(record),
            &self.bytes[record.sha256()],
            &self.bytes[record.stamp()],
        );
        let sealed = &self.bytes[record.sealed()];
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        // Exactly the value's length, so turning it into a boxed slice does not copy it.
        let mut plain = Vec::with_capacity(ciphertext.len());
        plain.extend_from_slice(ciphertext);
        let nonce = XNonce::from_slice(&self.bytes[record.nonce()]);
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
        if value.len() > MAX_VALUE || name.len() > usize::from(u8::MAX) {
            return;
        }
        self.fresh.insert(
            name.to_string(),
            Fresh {
                sha256,
                stamp,
                value: SecretSlice::from(value.to_vec()),
            },
        );
    }

    /// Whether this process has anything new to write.
    pub fn dirty(&self) -> bool {
        !self.fresh.is_empty()
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
        let fresh = std::mem::take(&mut self.fresh);
        let mut records: Vec<(&[u8], RecordOut)> = Vec::new();
        let dropped_bad = self.tally.rejected > 0;
        for record in &self.records {
            let name = self.name_of(record);
            let replaced = std::str::from_utf8(name).is_ok_and(|n| fresh.contains_key(n));
            // Records that did not open are dropped: they would fail again.
            if replaced || (dropped_bad && self.open(record).is_none()) {
                continue;
            }
            records.push((name, RecordOut::Copied(&self.bytes[record.raw()])));
        }
        for (name, record) in &fresh {
            records.push((name.as_bytes(), RecordOut::Fresh(record)));
        }
        records.sort_by(|a, b| a.0.cmp(b.0));
        records.dedup_by(|a, b| a.0 == b.0);
        let mut nonces = Zeroizing::new(vec![0u8; NONCE_LEN * fresh.len()]);
        getrandom::getrandom(&mut nonces).map_err(io::Error::other)?;
        let mut nonces = nonces.chunks_exact(NONCE_LEN);
        // Written as it is made: the file holds only sealed records, and a copy of it
        // in memory was another 1.8 MB for 10,000 values.
        write(&self.dir, |out| {
            out.write_all(MAGIC)?;
            out.write_all(self.store_id.as_bytes())?;
            out.write_all(&generation.to_le_bytes())?;
            out.write_all(&(records.len() as u32).to_le_bytes())?;
            for (name, record) in &records {
                match record {
                    RecordOut::Copied(raw) => out.write_all(raw)?,
                    RecordOut::Fresh(fresh) => {
                        let nonce = nonces.next().ok_or_else(|| io::Error::other("nonces"))?;
                        let stamp = stamp_bytes(&fresh.stamp);
                        let ad = associated_data(&self.store_id, name, &fresh.sha256, &stamp);
                        let mut sealed = Zeroizing::new(fresh.value.expose_secret().to_vec());
                        let tag = self
                            .cipher
                            .encrypt_in_place_detached(XNonce::from_slice(nonce), &ad, &mut sealed)
                            .map_err(|_| io::Error::other("cannot seal a value"))?;
                        out.write_all(&[name.len() as u8])?;
                        out.write_all(name)?;
                        out.write_all(&fresh.sha256)?;
                        out.write_all(&stamp)?;
                        out.write_all(nonce)?;
                        out.write_all(&((sealed.len() + TAG_LEN) as u32).to_le_bytes())?;
                        out.write_all(&sealed)?;
                        out.write_all(&tag)?;
                    }
                }
            }
            Ok(())
        })
    }
}

enum RecordOut<'a> {
    Copied(&'a [u8]),
    Fresh(&'a Fresh),
}

/// Create `cache/` (0700, not a symlink, with its own `.gitignore`) and replace the file.
/// Replace the cache file with what `fill` writes.
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
    let Some(bytes) = util::fs::read_optional(&dir.join(FILE))? else {
        return Ok(());
    };
    let bytes = Zeroizing::new(bytes);
    let Ok((generation, records)) = parse(&bytes, &manifest.store_id) else {
        // Not ours to trust, and nothing to keep.
        return remove(root).map(|_| ());
    };
    let current = |record: &Record| {
        let name = std::str::from_utf8(&bytes[record.name()]).ok();
        name.and_then(|n| manifest.credentials.get(n))
            .filter(|entry| entry.backend == BackendKind::Age)
            .and_then(|entry| entry.sha256.as_deref())
            .and_then(sha256_from_hex)
            .is_some_and(|sha| sha[..] == bytes[record.sha256()])
    };
    let kept: Vec<&Record> = records.iter().filter(|r| current(r)).collect();
    if kept.len() == records.len() {
        return Ok(());
    }
    if kept.is_empty() {
        return remove(root).map(|_| ());
    }
    write(&dir, |out| {
        out.write_all(MAGIC)?;
        out.write_all(manifest.store_id.as_bytes())?;
        out.write_all(&generation.max(manifest.generation).to_le_bytes())?;
        out.write_all(&(kept.len() as u32).to_le_bytes())?;
        for record in kept {
            out.write_all(&bytes[record.raw()])?;
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

    /// A cache file of two records, "a" and "b", under a new store key: the directory,
    /// the key and the file's bytes.
    fn two_records() -> (tempfile::TempDir, StoreKey, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let key = StoreKey::generate().unwrap();
        let mut cache = ValueCache::load(dir.path(), ID, &key);
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
