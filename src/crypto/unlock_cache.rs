//! `agentcred unlock --for DUR`: the decrypted identity, cached in the Linux kernel keyring
//! for a while, so a passphrase user pays for scrypt (about a second) and types the
//! passphrase once, not on every command.
//!
//! The key is a `user` key in the **session keyring**, which the kernel drops when its
//! timeout passes. The session keyring belongs to one login session (pam_keyinit makes
//! one per login), so an unlock in one ssh session or desktop login does not unlock
//! another, as with ssh-agent or sudo's per-terminal timestamps; processes without a
//! login session (cron, a bare container) fall back to the kernel's per-user session
//! keyring. The key is readable only by processes that possess it (those in that
//! session), not by every process of the user. It never touches the disk or swap.
//!
//! Its description names the identity file by the hash of its (encrypted) bytes, so a
//! changed identity file or passphrase never meets a stale cache.

use zeroize::Zeroizing;

use crate::error::Result;
use crate::util::hash::sha256_hex;

/// The key description for an identity file with these bytes.
fn description(file_bytes: &[u8]) -> String {
    format!("agentcred:identity:{}", &sha256_hex(file_bytes)[..32])
}

#[cfg(target_os = "linux")]
mod imp {
    use linux_keyutils::{KeyError, KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
    use zeroize::Zeroizing;

    use crate::error::{Error, Result};

    fn session() -> std::result::Result<KeyRing, KeyError> {
        // `create: false`: a process without a session keyring gets the per-user session
        // keyring; `true` would make it a new, private one that dies with this process.
        KeyRing::from_special_id(KeyRingIdentifier::Session, false)
    }

    fn failed(what: &str, e: KeyError) -> Error {
        Error::io(
            format!("cannot {what} the kernel keyring"),
            std::io::Error::other(format!("{e:?}")),
        )
    }

    pub fn get(description: &str) -> Option<Zeroizing<Vec<u8>>> {
        let key = session().ok()?.search(description).ok()?;
        key.read_to_vec().ok().map(Zeroizing::new)
    }

    pub fn put(description: &str, payload: &[u8], seconds: usize) -> Result<()> {
        let session = session().map_err(|e| failed("open", e))?;
        // Made in this process's own keyring, restricted and given its timeout there, then
        // linked into the session keyring (displacing an older one): a process killed
        // half-way leaves nothing behind, and never an identity without a timeout.
        // (Updating a key's payload would reset its timeout, so nothing is updated.)
        let private = KeyRing::from_special_id(KeyRingIdentifier::Process, true)
            .map_err(|e| failed("open", e))?;
        let key = private
            .add_key(description, payload)
            .map_err(|e| failed("write to", e))?;
        let perms = KeyPermissionsBuilder::builder()
            .posessor(Permission::ALL)
            .user(Permission::VIEW)
            .build();
        key.set_perms(perms).map_err(|e| failed("write to", e))?;
        key.set_timeout(seconds)
            .map_err(|e| failed("write to", e))?;
        session.link_key(key).map_err(|e| failed("write to", e))?;
        let _ = private.unlink_key(key);
        Ok(())
    }

    pub fn remove(description: &str) -> Result<bool> {
        let ring = session().map_err(|e| failed("open", e))?;
        match ring.search(description) {
            Ok(key) => {
                key.invalidate().map_err(|e| failed("write to", e))?;
                Ok(true)
            }
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                Ok(false)
            }
            Err(e) => Err(failed("search", e)),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use zeroize::Zeroizing;

    use crate::error::{Error, Result};

    fn unsupported() -> Error {
        Error::Unsupported(
            "unlock and lock need the Linux kernel keyring, which this system does not have".into(),
        )
    }

    pub fn get(_description: &str) -> Option<Zeroizing<Vec<u8>>> {
        None
    }

    pub fn put(_description: &str, _payload: &[u8], _seconds: usize) -> Result<()> {
        Err(unsupported())
    }

    pub fn remove(_description: &str) -> Result<bool> {
        Err(unsupported())
    }
}

/// Whether this platform has the cache at all.
pub const AVAILABLE: bool = cfg!(target_os = "linux");

/// The cached identity text for the identity file with these bytes, if unlocked.
pub fn get(file_bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    imp::get(&description(file_bytes))
}

/// Cache the identity text for `seconds`.
pub fn put(file_bytes: &[u8], identity_text: &[u8], seconds: usize) -> Result<()> {
    imp::put(&description(file_bytes), identity_text, seconds)
}

/// Drop the cached identity; `Ok(false)` when none was cached.
pub fn remove(file_bytes: &[u8]) -> Result<bool> {
    imp::remove(&description(file_bytes))
}
