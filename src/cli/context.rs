//! `Ctx`: what every command needs, resolved once: the store path, the global flags, the
//! identity, loaded lazily and at most once per process (one passphrase prompt, one
//! keychain read, however many credentials a command touches), and the command's audit event.

use std::cell::OnceCell;
use std::path::PathBuf;

use crate::audit;
use crate::crypto::identity::{self, Identity, Unlock};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::util::hardening::Saved;

pub use crate::util::host::user_at_host;

pub struct Ctx {
    pub store_dir: PathBuf,
    pub no_input: bool,
    pub verbose: bool,
    pub core_limit: Saved,
    /// The audit event of a command that reads or changes a secret (see [`audit::Recorder`]).
    pub audit: audit::Recorder,
    identity: OnceCell<Identity>,
    /// Why [`Ctx::identity_if_unlocked`] found none: a note for the user.
    no_identity_note: OnceCell<&'static str>,
}

impl Ctx {
    pub fn new(
        store: Option<PathBuf>,
        no_input: bool,
        verbose: bool,
        core_limit: Saved,
    ) -> Result<Ctx> {
        let store_dir = match store.filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => dir,
            None => directories::ProjectDirs::from("", "", "agentcred")
                .map(|d| d.data_dir().to_path_buf())
                .ok_or_else(|| {
                    Error::Usage(
                        "cannot find a home directory for the default store; pass --store DIR"
                            .into(),
                    )
                })?,
        };
        crate::crypto::os_keychain::allow_prompts(Unlock::from_env(no_input).may_prompt);
        Ok(Ctx {
            store_dir,
            no_input,
            verbose,
            core_limit,
            audit: audit::Recorder::new(crate::util::output::say_on_stderr()),
            identity: OnceCell::new(),
            no_identity_note: OnceCell::new(),
        })
    }

    pub fn unlock(&self) -> Unlock {
        Unlock::from_env(self.no_input)
    }

    /// The user's identity, unlocking it (and prompting, where allowed) on first use.
    pub fn identity(&self) -> Result<&Identity> {
        if let Some(identity) = self.identity.get() {
            return Ok(identity);
        }
        let identity = identity::load(self.unlock())?;
        Ok(self.identity.get_or_init(|| identity))
    }

    /// Use an identity just created (by `init`) without reading it back.
    pub fn adopt_identity(&self, identity: Identity) -> &Identity {
        self.identity.get_or_init(|| identity)
    }

    /// The identity if it can be had without asking anyone; `None` when it is locked.
    pub fn identity_if_unlocked(&self) -> Result<Option<&Identity>> {
        if let Some(identity) = self.identity.get() {
            return Ok(Some(identity));
        }
        match identity::load(Unlock { may_prompt: false }) {
            Ok(identity) => Ok(Some(self.identity.get_or_init(|| identity))),
            Err(Error::NoIdentity | Error::NoIdentityKeychainDown { .. }) => {
                let _ = self.no_identity_note.set(
                    "note: integrity not verified: there is no identity here (`agentcred init` creates one; or set AGENTCRED_IDENTITY_FILE)",
                );
                Ok(None)
            }
            Err(Error::PassphraseNeeded { .. }) => {
                let _ = self.no_identity_note.set(
                    "note: integrity not verified: the identity is locked (run `agentcred unlock`, or set AGENTCRED_PASSPHRASE)",
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// What to tell the user after [`Ctx::identity_if_unlocked`] found no identity.
    pub fn unverified_note(&self) -> &'static str {
        self.no_identity_note
            .get()
            .copied()
            .unwrap_or("note: integrity not verified: the identity is locked")
    }

    pub fn open_store(&self) -> Result<Store> {
        let store = Store::open(&self.store_dir, say_on_stderr())?.with_verbose(self.verbose);
        self.audit.store_opened(store.root());
        Ok(store)
    }

    /// Whether a person can be asked a question.
    pub fn may_prompt(&self) -> bool {
        self.unlock().may_prompt
    }
}

/// Print the library's warnings and notes on stderr, each as it comes.
pub fn say_on_stderr() -> crate::util::output::Say {
    crate::util::output::say_on_stderr()
}
