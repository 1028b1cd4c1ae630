//! What this machine remembers about each store it has opened, outside the store:
//! the fingerprint of its store key and the highest generation seen.
//!
//! The store key is what makes the store tamper-evident, but `storekey.age` itself can be
//! replaced by anyone holding the public recipient. Remembering its fingerprint (trust on
//! first use, as ssh does with host keys) turns such a swap into an integrity error on every
//! machine that has used the store before. `AGENTCRED_STORE_FINGERPRINT` pins it up front,
//! for CI runners that start fresh every time.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil;

pub const ENV_FINGERPRINT: &str = "AGENTCRED_STORE_FINGERPRINT";

#[derive(Debug, Default, Serialize, Deserialize)]
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

fn load(store_id: &str) -> Option<Seen> {
    let path = dir()?.join(format!("{store_id}.json"));
    let bytes = fsutil::read_optional(&path).ok()??;
    serde_json::from_slice(&bytes).ok()
}

fn save(store_id: &str, seen: &Seen) {
    // Best effort: failing to remember must not fail the command that is using the store.
    let Some(dir) = dir() else { return };
    if fsutil::create_private_dir(&dir).is_err() {
        return;
    }
    if let Ok(bytes) = serde_json::to_vec(seen) {
        let _ = fsutil::write_atomic(&dir, &format!("{store_id}.json"), &bytes);
    }
}

/// Check the store key against the pin and what this machine saw before, and remember it.
pub fn check_store_key(store_id: &str, fingerprint: &str) -> Result<()> {
    if let Ok(pinned) = std::env::var(ENV_FINGERPRINT)
        && !pinned.is_empty()
        && pinned != fingerprint
    {
        return Err(Error::integrity(
            "storekey.age",
            format!(
                "the store key's fingerprint is {fingerprint}, not the {pinned} pinned by {ENV_FINGERPRINT}"
            ),
        ));
    }
    match load(store_id) {
        Some(seen) if seen.store_key_fingerprint != fingerprint => Err(Error::integrity(
            "storekey.age",
            format!(
                "the store key changed since this machine last used the store (fingerprint {} before, {fingerprint} now)",
                seen.store_key_fingerprint
            ),
        )),
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

/// Note a verified generation; returns the higher generation seen before, if this one is older.
pub fn note_generation(store_id: &str, generation: u64) -> Option<u64> {
    let mut seen = load(store_id)?;
    if generation < seen.generation {
        return Some(seen.generation);
    }
    if generation > seen.generation {
        seen.generation = generation;
        save(store_id, &seen);
    }
    None
}
