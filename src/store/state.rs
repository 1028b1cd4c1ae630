//! What this machine remembers about each store it has opened, outside the store:
//! the fingerprint of its store key and the highest generation seen.
//!
//! The store key is what makes the store tamper-evident, but `storekey.age` itself can be
//! replaced by anyone holding the public recipient. Remembering its fingerprint (trust on
//! first use, as ssh does with host keys) turns such a swap into an integrity error on every
//! machine that has used the store before. `AGENTCRED_STORE_FINGERPRINT` pins it up front,
//! for CI runners that start fresh every time.
//!
//! The store id comes from the manifest, which an attacker can write too: a whole new store
//! (new id, new key) put in place of a known one would otherwise look like a first use. So
//! the id is also remembered per store path, and a known path showing another id is refused
//! until the user says it was deliberate (`agentcred doctor --trust`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util;

pub const ENV_FINGERPRINT: &str = "AGENTCRED_STORE_FINGERPRINT";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Seen {
    store_key_fingerprint: String,
    generation: u64,
}

fn dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "agentcred")?;
    let base = dirs
        .state_dir()
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs.data_local_dir().to_path_buf());
    Some(base.join("stores"))
}

/// Which store this machine last saw at a path.
#[derive(Debug, Serialize, Deserialize)]
struct AtPath {
    path: PathBuf,
    store_id: String,
}

/// The file name remembering a store path: a hash of its canonical form.
/// Worked out once per store path and process (a command asks up to three times: the
/// store check, the audit anchor read and its write).
fn path_record(root: &Path) -> Option<(PathBuf, String)> {
    thread_local! {
        static KNOWN: std::cell::RefCell<Option<(PathBuf, PathBuf, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    if let Some(found) = KNOWN.with_borrow(|known| {
        known
            .as_ref()
            .filter(|(at, _, _)| at == root)
            .map(|(_, canonical, file)| (canonical.clone(), file.clone()))
    }) {
        return Some(found);
    }
    let canonical = std::fs::canonicalize(root).ok()?;
    let digest = crate::util::hash::sha256_hex(canonical.as_os_str().as_encoded_bytes());
    let file = format!("path-{}.json", &digest[..32]);
    KNOWN.set(Some((root.to_path_buf(), canonical.clone(), file.clone())));
    Some((canonical, file))
}

fn load_at_path(root: &Path) -> Option<AtPath> {
    let (_, file) = path_record(root)?;
    let bytes = util::fs::read_optional(&dir()?.join(file)).ok()??;
    serde_json::from_slice(&bytes).ok()
}

fn save_at_path(root: &Path, store_id: &str) {
    let (Some(dir), Some((path, file))) = (dir(), path_record(root)) else {
        return unwritable(None, &std::io::Error::other("no state directory"));
    };
    let record = AtPath {
        path,
        store_id: store_id.to_string(),
    };
    let written = util::fs::create_private_dir(&dir).and_then(|()| {
        let bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        util::fs::write_atomic(&dir, &file, &bytes)
    });
    if let Err(e) = written {
        unwritable(Some(&dir), &e);
    }
}

/// Say (once per process) that this machine's memory of the store could not be written:
/// the command goes on, but the checks that rely on it (a swapped store or store key, a
/// rollback) will not work here until it can.
fn unwritable(dir: Option<&Path>, e: &std::io::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let place = dir.map_or_else(
        || "the state directory".to_string(),
        |d| d.display().to_string(),
    );
    eprintln!(
        "warning: cannot write this machine's record of the store in {place} ({e}): a swapped store key or a rollback will not be detected here"
    );
}

thread_local! {
    /// The record of the store this process read or wrote last: the store key check and
    /// the generation check of one command read the same file.
    static SEEN: std::cell::RefCell<Option<(String, Option<Seen>)>> =
        const { std::cell::RefCell::new(None) };
}

fn load(store_id: &str) -> Option<Seen> {
    if let Some(seen) = SEEN.with_borrow(|known| {
        known
            .as_ref()
            .filter(|(id, _)| id == store_id)
            .map(|(_, seen)| seen.clone())
    }) {
        return seen;
    }
    let path = dir()?.join(format!("{store_id}.json"));
    let bytes = util::fs::read_optional(&path).ok()??;
    let seen: Option<Seen> = serde_json::from_slice(&bytes).ok();
    SEEN.set(Some((store_id.to_string(), seen.clone())));
    seen
}

fn save(store_id: &str, seen: &Seen) {
    SEEN.set(None);
    // Failing to remember does not fail the command that is using the store, but it is
    // said: the checks that rely on it are off until the directory is writable.
    let Some(dir) = dir() else {
        return unwritable(None, &std::io::Error::other("no state directory"));
    };
    let written = util::fs::create_private_dir(&dir).and_then(|()| {
        let bytes = serde_json::to_vec(seen).map_err(std::io::Error::other)?;
        util::fs::write_atomic(&dir, &format!("{store_id}.json"), &bytes)
    });
    if let Err(e) = written {
        unwritable(Some(&dir), &e);
    }
}

/// Check the store at `root` against what this machine saw there before: the same store id
/// (not another store put in its place) and the same store key; remember both on first use.
///
/// `previous` are the fingerprints of the earlier keys the key file carries (computed here
/// from the keys themselves, which only holders of those keys can write): a key rotated by
/// `recipients rm` is accepted where the remembered key is one of them. A pinned key must
/// match exactly.
pub fn check_store_key(
    root: &Path,
    store_id: &str,
    fingerprint: &str,
    previous: &[String],
    say: &dyn Fn(&str),
) -> Result<()> {
    match load_at_path(root) {
        Some(seen) if seen.store_id != store_id => {
            return Err(Error::Untrusted {
                detail: format!(
                    "another store (id {store_id}) is at {} since this machine last used it (id {})",
                    seen.path.display(),
                    seen.store_id
                ),
            });
        }
        Some(_) => {}
        None => save_at_path(root, store_id),
    }
    // A pin is exact: an earlier key in the chain is not enough, since a removed member
    // knows that key and could make such a chain.
    if let Ok(pinned) = std::env::var(ENV_FINGERPRINT)
        && !pinned.is_empty()
        && pinned != fingerprint
    {
        let earlier = if previous.contains(&pinned) {
            format!(
                " ({pinned} is an earlier key of this store, replaced by `recipients rm`: pin {fingerprint} if that change is known to you)"
            )
        } else {
            String::new()
        };
        return Err(Error::integrity(
            "storekey.age",
            format!(
                "the store key's fingerprint is {fingerprint}, not the {pinned} pinned by {ENV_FINGERPRINT}{earlier}"
            ),
        ));
    }
    match load(store_id) {
        Some(seen) if seen.store_key_fingerprint != fingerprint => {
            if !previous.contains(&seen.store_key_fingerprint) {
                return Err(Error::Untrusted {
                    detail: format!(
                        "the store key changed since this machine last used the store (fingerprint {} before, {fingerprint} now)",
                        seen.store_key_fingerprint
                    ),
                });
            }
            say(&format!(
                "note: this store's key was rotated since this machine last used it (fingerprint {} before, {fingerprint} now)",
                seen.store_key_fingerprint
            ));
            save(
                store_id,
                &Seen {
                    store_key_fingerprint: fingerprint.to_string(),
                    generation: seen.generation,
                },
            );
            Ok(())
        }
        Some(_) => Ok(()),
        None => {
            save(
                store_id,
                &Seen {
                    store_key_fingerprint: fingerprint.to_string(),
                    generation: 0,
                },
            );
            Ok(())
        }
    }
}

/// Trust the store at `root` as it is now: its id at this path, its key, its generation
/// (`doctor --trust`, after a deliberate replacement, key change or rollback).
pub fn trust(root: &Path, store_id: &str, fingerprint: &str, generation: u64) {
    save_at_path(root, store_id);
    save(
        store_id,
        &Seen {
            store_key_fingerprint: fingerprint.to_string(),
            generation,
        },
    );
}

/// Remember a store key this machine just made (`recipients rm` rotates it), so it is not
/// announced as a rotation at the next read.
pub fn remember_store_key(store_id: &str, fingerprint: &str) {
    let generation = load(store_id).map_or(0, |seen| seen.generation);
    save(
        store_id,
        &Seen {
            store_key_fingerprint: fingerprint.to_string(),
            generation,
        },
    );
}

/// A minimum generation set up front, for CI runners that keep no state between runs
/// (next to [`ENV_FINGERPRINT`]): an older store is a rollback.
pub const ENV_MIN_GENERATION: &str = "AGENTCRED_MIN_GENERATION";

/// A store older than what this machine saw, or than [`ENV_MIN_GENERATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rollback {
    pub generation: u64,
    /// The generation it should be at least.
    pub seen: u64,
    /// `seen` comes from [`ENV_MIN_GENERATION`], not from this machine's memory.
    pub pinned: bool,
}

/// The generation pinned by [`ENV_MIN_GENERATION`]; an unreadable pin is refused.
pub fn pinned_generation() -> Result<Option<u64>> {
    match std::env::var(ENV_MIN_GENERATION) {
        Ok(text) if text.is_empty() => Ok(None),
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            Error::Usage(format!(
                "{ENV_MIN_GENERATION} must be a generation number (the `generation` line of agentcred.toml)"
            ))
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage(format!(
            "{ENV_MIN_GENERATION} must be a generation number"
        ))),
    }
}

/// Note a verified generation; returns the rollback when it is older than the pinned
/// generation or the highest this machine saw.
pub fn note_generation(store_id: &str, generation: u64) -> Result<Option<Rollback>> {
    if let Some(pinned) = pinned_generation()?
        && generation < pinned
    {
        return Ok(Some(Rollback {
            generation,
            seen: pinned,
            pinned: true,
        }));
    }
    let Some(mut seen) = load(store_id) else {
        return Ok(None);
    };
    if generation < seen.generation {
        return Ok(Some(Rollback {
            generation,
            seen: seen.generation,
            pinned: false,
        }));
    }
    if generation > seen.generation {
        seen.generation = generation;
        save(store_id, &seen);
    }
    Ok(None)
}

/// Where this machine's audit log for a store ended when agentcred last wrote it: the
/// chain alone cannot show its last lines removed, or the whole file deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditAnchor {
    pub lines: u64,
    pub bytes: u64,
    /// The SHA-256 of line `lines` (what the next line will carry as `prev`).
    pub head: String,
}

fn anchor_file(root: &Path) -> Option<(PathBuf, String)> {
    let (_, record) = path_record(root)?;
    Some((dir()?, record.replacen("path-", "audit-", 1)))
}

/// The anchor as it is kept on disk: rewritten in place on every audited command (a
/// temp file and a rename each time cost every `exec` a file creation, a rename and the
/// writeback ext4 starts at it), so it is a fixed-size record, JSON padded with spaces,
/// carrying a check over its fields. A write torn by a crash (part new, part old record)
/// fails the check and reads as no anchor: the next audited command anchors the log again
/// where it ends, as on first use, instead of `audit --verify` reporting a truncation that
/// did not happen. An anchor of another length is one an older agentcred wrote whole, by
/// rename, without a check.
#[derive(Serialize, Deserialize)]
struct AnchorRecord {
    lines: u64,
    bytes: u64,
    head: String,
    check: String,
}

const ANCHOR_RECORD_LEN: usize = 256;

fn anchor_check(anchor: &AuditAnchor) -> String {
    util::hash::sha256_hex(
        format!(
            "audit-anchor {} {} {}",
            anchor.lines, anchor.bytes, anchor.head
        )
        .as_bytes(),
    )
}

fn encode_anchor(anchor: &AuditAnchor) -> std::io::Result<Vec<u8>> {
    let record = AnchorRecord {
        lines: anchor.lines,
        bytes: anchor.bytes,
        head: anchor.head.clone(),
        check: anchor_check(anchor),
    };
    let mut bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    if bytes.len() >= ANCHOR_RECORD_LEN {
        return Err(std::io::Error::other("audit anchor record too long"));
    }
    bytes.resize(ANCHOR_RECORD_LEN - 1, b' ');
    bytes.push(b'\n');
    Ok(bytes)
}

fn decode_anchor(bytes: &[u8]) -> Option<AuditAnchor> {
    if bytes.len() != ANCHOR_RECORD_LEN {
        return serde_json::from_slice(bytes).ok();
    }
    let record: AnchorRecord = serde_json::from_slice(bytes).ok()?;
    let anchor = AuditAnchor {
        lines: record.lines,
        bytes: record.bytes,
        head: record.head,
    };
    (anchor_check(&anchor) == record.check).then_some(anchor)
}

/// The anchor of the audit log of the store at `root`, if this machine keeps one.
pub fn audit_anchor(root: &Path) -> Option<AuditAnchor> {
    let (dir, file) = anchor_file(root)?;
    let bytes = util::fs::read_optional(&dir.join(file)).ok()??;
    decode_anchor(&bytes)
}

/// Remember where the audit log ends now. Called with the log's lock held; `durable` as
/// the log line itself was (a read's line is not fsynced: see the audit log's writer).
pub fn save_audit_anchor(root: &Path, anchor: &AuditAnchor, durable: bool) -> std::io::Result<()> {
    let Some((dir, file)) = anchor_file(root) else {
        return Err(std::io::Error::other("no state directory"));
    };
    let bytes = encode_anchor(anchor)?;
    let path = dir.join(&file);
    let open = || util::fs::open_private_rw(&path);
    let handle = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            util::fs::create_private_dir(&dir)?;
            open()?
        }
        other => other?,
    };
    let len = handle.metadata()?.len();
    if len != 0 && len != ANCHOR_RECORD_LEN as u64 {
        // An older agentcred's anchor: replace it whole once, then write in place.
        drop(handle);
        return if durable {
            util::fs::write_atomic(&dir, &file, &bytes)
        } else {
            util::fs::write_replace(&dir, &file, &bytes)
        };
    }
    std::os::unix::fs::FileExt::write_all_at(&handle, &bytes, 0)?;
    if durable {
        handle.sync_data()?;
        if len == 0 {
            util::fs::sync_dir(&dir)?;
        }
    }
    Ok(())
}

/// Forget the anchor (`doctor --trust` after a deliberate reset of the log).
pub fn reset_audit_anchor(root: &Path) -> std::io::Result<()> {
    if let Some((dir, file)) = anchor_file(root) {
        util::fs::remove_if_exists(&dir.join(file))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(lines: u64, bytes: u64, head: char) -> AuditAnchor {
        AuditAnchor {
            lines,
            bytes,
            head: head.to_string().repeat(64),
        }
    }

    #[test]
    fn anchor_record_round_trips_at_its_fixed_size() {
        for a in [
            anchor(0, 0, '0'),
            anchor(7, 1234, 'a'),
            anchor(u64::MAX, u64::MAX, 'f'),
        ] {
            let bytes = encode_anchor(&a).unwrap();
            assert_eq!(bytes.len(), ANCHOR_RECORD_LEN);
            assert_eq!(decode_anchor(&bytes), Some(a));
        }
    }

    #[test]
    fn a_torn_anchor_record_reads_as_no_anchor() {
        let old = encode_anchor(&anchor(12, 3456, 'a')).unwrap();
        let new = encode_anchor(&anchor(13, 3600, 'b')).unwrap();
        // Every split of a write torn by a crash: part new record, part old.
        for cut in 1..ANCHOR_RECORD_LEN {
            let mut torn = new[..cut].to_vec();
            torn.extend_from_slice(&old[cut..]);
            let read = decode_anchor(&torn);
            assert!(
                read.is_none() || read == decode_anchor(&new) || read == decode_anchor(&old),
                "cut at {cut}: {read:?}"
            );
        }
        // Fields that disagree with the check.
        let forged = String::from_utf8(new.clone())
            .unwrap()
            .replace("3600", "3601");
        assert_eq!(decode_anchor(forged.as_bytes()), None);
    }

    #[test]
    fn an_anchor_written_whole_by_an_older_agentcred_still_reads() {
        let a = anchor(3, 99, 'c');
        let old = serde_json::to_vec(&a).unwrap();
        assert_eq!(decode_anchor(&old), Some(a));
        assert_eq!(decode_anchor(b""), None);
    }
}
