//! The OS keychain, behind a small typed adapter: the Secret Service on Linux (through
//! libdbus), the login Keychain on macOS, the Credential Manager on Windows, all through
//! `keyring-core`.
//!
//! Two things other tools get wrong, and this module exists to get right:
//! - **No silent fallback.** If no keychain answers, every call fails with a reason
//!   (exit 5); nothing is ever "saved" to a mock or an in-memory store.
//! - **No hang.** A Secret Service call can block for as long as an unlock prompt is open
//!   (the library waits up to a year), and on headless Linux or WSL a prompt may never be
//!   shown. Every call therefore runs on a worker thread and is abandoned after a bound; the
//!   process then fails and exits, taking the thread with it.
//!
//! Items live under service `agentcred`; the account names the item (`identity` for the
//! age identity, `STORE_ID/NAME/VERSION` for credential values, see
//! the keychain backend). Values are bytes and round-trip exactly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::util::output::escape;

/// The service name of every agentcred item.
pub const SERVICE: &str = "agentcred";

/// How long one keychain call may take when nobody can answer an unlock prompt.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// ... and when a person at a terminal may be typing the keychain password into one.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `init` waits to learn whether a keychain is there at all.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What an item holds, for messages and hints.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    /// The user's age identity.
    Identity,
    /// A credential's value.
    Credential(&'a str),
}

impl Subject<'_> {
    fn describe(self) -> String {
        match self {
            Subject::Identity => "the identity".into(),
            Subject::Credential(name) => format!("credential {}", escape(name)),
        }
    }
}

/// The process-wide connection, made on first use (one per process, however many items
/// a command reads). `Err` holds why it could not be made.
static STORE: OnceLock<std::result::Result<Arc<CredentialStore>, String>> = OnceLock::new();

/// Whether a person may answer an unlock prompt shown by the keychain (set once by `Ctx`).
static MAY_PROMPT: AtomicBool = AtomicBool::new(false);

/// Say whether a person may answer the keychain's own unlock prompt (a terminal, no
/// `--no-input`, not CI): that lengthens the bound on each call.
pub fn allow_prompts(may_prompt: bool) {
    MAY_PROMPT.store(may_prompt, Ordering::Relaxed);
}

/// The keychain, as seen from this process.
#[derive(Clone, Copy)]
pub struct Keychain {
    /// How long a call may block.
    timeout: Duration,
}

impl Keychain {
    /// The keychain for this process, bounded as [`allow_prompts`] said.
    pub fn for_process() -> Keychain {
        Keychain::new(MAY_PROMPT.load(Ordering::Relaxed))
    }

    /// The keychain for a command; `may_prompt` lengthens the bound so a person can answer
    /// an unlock prompt that the keychain itself shows.
    pub fn new(may_prompt: bool) -> Keychain {
        Keychain {
            timeout: if may_prompt {
                PROMPT_TIMEOUT
            } else {
                CALL_TIMEOUT
            },
        }
    }

    /// An item's bytes; `Ok(None)` when there is no such item.
    pub fn get(&self, account: &str, subject: Subject) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let action = format!("read {} from", subject.describe());
        let account = account.to_string();
        let got = self.call(subject, action, move |store| {
            let entry = build(&store, &account, None)?;
            match entry.get_secret() {
                Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(got)
    }

    /// Whether an item exists, asked without fetching it: `Some(false)` lets a caller skip
    /// the read. On Linux this is one search on a plain session, which costs far less than
    /// the encrypted session a read opens (a Diffie-Hellman exchange on both sides, about
    /// 7 ms); it is what keeps the keychain cheap for users whose identity is a file.
    /// `None` where the platform has no such shortcut.
    pub fn exists(&self, account: &str, subject: Subject) -> Result<Option<bool>> {
        let action = format!("look for {} in", subject.describe());
        let account = account.to_string();
        self.bounded_call(subject, action, move || platform::exists(&account))
    }

    /// Create or replace an item.
    pub fn set(&self, account: &str, label: &str, value: &[u8], subject: Subject) -> Result<()> {
        let action = format!("store {} in", subject.describe());
        let account = account.to_string();
        let label = label.to_string();
        let value = Zeroizing::new(value.to_vec());
        self.call(subject, action, move |store| {
            build(&store, &account, Some(&label))?.set_secret(&value)
        })
    }

    /// Delete an item; `Ok(false)` when there was none (deleting twice is not an error).
    pub fn delete(&self, account: &str, subject: Subject) -> Result<bool> {
        let action = format!("delete {} from", subject.describe());
        let account = account.to_string();
        self.call(subject, action, move |store| {
            match build(&store, &account, None)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    /// Run `op` against the store on a worker thread, giving up after the bound.
    fn call<T: Send + 'static>(
        &self,
        subject: Subject,
        action: String,
        op: impl FnOnce(Arc<CredentialStore>) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T> {
        self.bounded_call(subject, action, move || {
            let store = connect()?;
            op(store).map_err(|e| describe(&e))
        })
    }

    /// Run `op` on a worker thread, giving up after the bound; `Err` of `op` is the reason.
    fn bounded_call<T: Send + 'static>(
        &self,
        subject: Subject,
        action: String,
        op: impl FnOnce() -> std::result::Result<T, String> + Send + 'static,
    ) -> Result<T> {
        let fail = |reason: String| Error::Keychain {
            action,
            reason,
            for_identity: matches!(subject, Subject::Identity),
        };
        if let Err(reason) = preflight() {
            return Err(fail(reason));
        }
        match bounded(self.timeout, op) {
            Some(Ok(value)) => Ok(value),
            Some(Err(reason)) => Err(fail(reason)),
            None => Err(fail(format!(
                "it did not answer within {} s (a locked keyring waiting for an unlock prompt that nobody can see?)",
                self.timeout.as_secs()
            ))),
        }
    }
}

fn build(
    store: &Arc<CredentialStore>,
    account: &str,
    label: Option<&str>,
) -> keyring_core::Result<Entry> {
    let mut modifiers = HashMap::new();
    // Only the Secret Service keeps a label apart from service and account.
    if cfg!(target_os = "linux")
        && let Some(label) = label
    {
        modifiers.insert("label", label);
    }
    store.build(
        SERVICE,
        account,
        (!modifiers.is_empty()).then_some(&modifiers),
    )
}

/// Run `f` on a worker thread; `None` when it has not finished within `timeout` (or died).
/// The thread is left behind: it is blocked in the keychain library, and the command is
/// about to fail and exit.
fn bounded<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keychain".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(timeout).ok()
}

/// The connection, made once per process.
fn connect() -> std::result::Result<Arc<CredentialStore>, String> {
    STORE
        .get_or_init(|| platform::open().map_err(|e| describe(&e)))
        .clone()
}

/// Fail at once, without touching any library, where no keychain can be reached.
fn preflight() -> std::result::Result<(), String> {
    platform::preflight()
}

/// Whether `init` should put a new identity in the keychain: a keychain answers, and
/// writing to it needs no prompt. `Err` says why not, for the user.
pub fn probe() -> std::result::Result<(), String> {
    preflight()?;
    match bounded(PROBE_TIMEOUT, platform::probe) {
        Some(result) => result,
        None => Err(format!(
            "it did not answer within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// One line saying why a keychain call failed. Never includes item contents: the errors
/// that carry bytes (`BadEncoding`, `BadDataFormat`) are described without them.
fn describe(error: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match error {
        E::NoStorageAccess(_) => {
            "it is locked, and no unlock prompt could be shown (or it was dismissed)".into()
        }
        E::PlatformFailure(cause) => platform::explain(&cause.to_string()),
        E::NoEntry => "the item does not exist".into(),
        E::BadEncoding(_) | E::BadDataFormat(..) => "the item is not in the expected format".into(),
        E::TooLong(what, limit) => format!(
            "the {} is longer than this keychain allows ({limit})",
            escape(what)
        ),
        E::Ambiguous(items) => format!(
            "{} items match service {SERVICE} and this account; remove the extra ones",
            items.len()
        ),
        other => first_line(&other.to_string()),
    }
}

fn first_line(text: &str) -> String {
    escape(text.lines().next().unwrap_or_default().trim())
}

#[cfg(target_os = "linux")]
mod platform {
    use super::{CredentialStore, first_line};
    use std::sync::Arc;

    pub fn open() -> keyring_core::Result<Arc<CredentialStore>> {
        let store: Arc<CredentialStore> = dbus_secret_service_keyring_store::Store::new()?;
        Ok(store)
    }

    /// libdbus, given no bus address, would try `dbus-launch --autolaunch` (an X11 helper,
    /// compiled out of the vendored libdbus): say plainly that there is no bus instead. The
    /// vendored libdbus does not look for `$XDG_RUNTIME_DIR/bus` on its own either, so a
    /// bus found there is named in the message, to be exported.
    pub fn preflight() -> Result<(), String> {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
            return Ok(());
        }
        let user_bus = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map(|d| std::path::Path::new(&d).join("bus"))
            .filter(|bus| bus.exists());
        Err(match user_bus {
            Some(bus) => format!(
                "DBUS_SESSION_BUS_ADDRESS is unset (for the bus at {0}: export DBUS_SESSION_BUS_ADDRESS=unix:path={0})",
                first_line(&bus.display().to_string())
            ),
            None => "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)".into(),
        })
    }

    /// A Secret Service answers, has a default collection, and that collection is unlocked,
    /// so creating an item shows no prompt. Asked with prompts disabled.
    pub fn probe() -> Result<(), String> {
        use dbus_secret_service::{EncryptionType, SecretService};
        let service = SecretService::connect_with_max_prompt_timeout(EncryptionType::Plain, 0)
            .map_err(|e| explain(&e.to_string()))?;
        let collection = service.get_default_collection().map_err(|e| {
            format!(
                "the Secret Service has no default collection ({})",
                first_line(&e.to_string())
            )
        })?;
        match collection.is_locked() {
            Ok(false) => Ok(()),
            Ok(true) => Err("its default collection is locked".into()),
            Err(e) => Err(explain(&e.to_string())),
        }
    }

    /// Search for the item on a plain (unencrypted) session: a search moves no secret.
    pub fn exists(account: &str) -> Result<Option<bool>, String> {
        use dbus_secret_service::{EncryptionType, SecretService};
        let service = SecretService::connect_with_max_prompt_timeout(EncryptionType::Plain, 0)
            .map_err(|e| explain(&e.to_string()))?;
        let found = service
            .search_items(std::collections::HashMap::from([
                ("service", super::SERVICE),
                ("username", account),
            ]))
            .map_err(|e| explain(&e.to_string()))?;
        Ok(Some(
            !(found.unlocked.is_empty() && found.locked.is_empty()),
        ))
    }

    /// Name the usual causes in words; otherwise the library's first line.
    pub fn explain(cause: &str) -> String {
        if cause.contains("ServiceUnknown") || cause.contains("not provided by any .service files")
        {
            "no Secret Service (org.freedesktop.secrets) runs on the D-Bus session bus".into()
        } else if cause.contains("NoServer")
            || cause.contains("Failed to connect")
            || cause.contains("autolaunch")
        {
            format!(
                "cannot connect to the D-Bus session bus ({})",
                first_line(cause)
            )
        } else if cause.contains("NoReply") || cause.contains("Timeout") {
            "the Secret Service did not reply".into()
        } else {
            format!("the Secret Service failed: {}", first_line(cause))
        }
    }
}

#[cfg(target_os = "macos")]
mod platform {
    use super::{CredentialStore, first_line};
    use std::sync::Arc;

    pub fn open() -> keyring_core::Result<Arc<CredentialStore>> {
        let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
        Ok(store)
    }

    pub fn preflight() -> Result<(), String> {
        Ok(())
    }

    pub fn probe() -> Result<(), String> {
        open().map(|_| ()).map_err(|e| super::describe(&e))
    }

    pub fn exists(_account: &str) -> Result<Option<bool>, String> {
        Ok(None)
    }

    pub fn explain(cause: &str) -> String {
        format!("the Keychain failed: {}", first_line(cause))
    }
}

#[cfg(target_os = "windows")]
mod platform {
    use super::{CredentialStore, first_line};
    use std::sync::Arc;

    pub fn open() -> keyring_core::Result<Arc<CredentialStore>> {
        let store: Arc<CredentialStore> = windows_native_keyring_store::Store::new()?;
        Ok(store)
    }

    pub fn preflight() -> Result<(), String> {
        Ok(())
    }

    pub fn probe() -> Result<(), String> {
        open().map(|_| ()).map_err(|e| super::describe(&e))
    }

    pub fn exists(_account: &str) -> Result<Option<bool>, String> {
        Ok(None)
    }

    pub fn explain(cause: &str) -> String {
        format!("the Credential Manager failed: {}", first_line(cause))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    use super::CredentialStore;
    use std::sync::Arc;

    const NONE: &str = "there is no OS keychain support on this platform";

    pub fn open() -> keyring_core::Result<Arc<CredentialStore>> {
        Err(keyring_core::Error::NotSupportedByStore(NONE.into()))
    }

    pub fn preflight() -> Result<(), String> {
        Err(NONE.into())
    }

    pub fn probe() -> Result<(), String> {
        Err(NONE.into())
    }

    pub fn exists(_account: &str) -> Result<Option<bool>, String> {
        Err(NONE.into())
    }

    pub fn explain(cause: &str) -> String {
        super::first_line(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_gives_up_and_never_blocks_the_caller() {
        let started = std::time::Instant::now();
        let out = bounded(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(5));
            1
        });
        assert!(out.is_none());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(bounded(Duration::from_secs(5), || 7), Some(7));
    }

    #[test]
    fn errors_carrying_bytes_are_described_without_them() {
        let secret = b"hunter2-secret".to_vec();
        for error in [
            keyring_core::Error::BadEncoding(secret.clone()),
            keyring_core::Error::BadDataFormat(secret.clone(), "x".into()),
        ] {
            assert!(!describe(&error).contains("hunter2"));
        }
    }
}
