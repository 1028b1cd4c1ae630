//! The typed errors of the core.
//!
//! Each variant knows its exit code and, where a fix is known, a one-line hint. `main` finds
//! the first `Error` in an `anyhow` chain to choose both. Errors carry names and paths, never
//! a secret value: names from users are escaped (see [`crate::output::escape`]) before they
//! are stored here, so printing an error can never move a terminal's cursor or reorder text.

use std::io;
use std::path::PathBuf;

use crate::exit::Exit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("invalid credential name {name}: {reason}")]
    InvalidName { name: String, reason: String },

    #[error("invalid environment variable name {name}: {reason}")]
    InvalidEnvVar { name: String, reason: String },

    #[error("{var} cannot be set by agentcred: it changes how programs load or run")]
    RefusedEnvVar { var: String },

    #[error("invalid {what} {input}: {reason}")]
    InvalidValue {
        what: &'static str,
        input: String,
        reason: String,
    },

    #[error("credential {name} already exists")]
    Exists { name: String },

    #[error("credential {name} not found")]
    CredentialNotFound { name: String },

    #[error("no store at {}", path.display())]
    StoreNotFound { path: PathBuf },

    #[error("a store already exists at {}", path.display())]
    StoreExists { path: PathBuf },

    #[error("no identity found to unlock the store")]
    NoIdentity,

    #[error("identity file {} is readable by group or others", path.display())]
    IdentityTooOpen { path: PathBuf },

    #[error("wrong passphrase for identity file {}", path.display())]
    WrongPassphrase { path: PathBuf },

    #[error("identity file {} is passphrase-protected and there is no terminal to ask on", path.display())]
    PassphraseNeeded { path: PathBuf },

    #[error("cannot read identity from {source_name}: {detail}")]
    BadIdentity { source_name: String, detail: String },

    #[error(
        "no identity found to unlock the store: the OS keychain cannot be read ({reason}), and there is no identity file"
    )]
    NoIdentityKeychainDown { reason: String },

    #[error("cannot {action} the OS keychain: {reason}")]
    Keychain {
        action: String,
        reason: String,
        for_identity: bool,
    },

    #[error("the keychain item of credential {name} is missing (deleted outside agentcred?)")]
    KeychainItemMissing { name: String },

    #[error(
        "the keychain item of credential {name} does not match the manifest (changed outside agentcred)"
    )]
    KeychainItemChanged { name: String },

    #[error("{0}")]
    Unsupported(String),

    #[error("{what} is not encrypted to your identity")]
    NotARecipient { what: String },

    #[error("integrity check failed: {what}: {detail}")]
    Integrity { what: String, detail: String },

    #[error("store directory {} is writable by group or others", path.display())]
    StoreTooOpen { path: PathBuf },

    #[error("value of {name} cannot be an environment variable: {reason}")]
    NotEnvSafe { name: String, reason: String },

    #[error("{program}: command not found")]
    CommandNotFound { program: String },

    #[error("{program}: permission denied")]
    NotExecutable { program: String },

    #[error("{context}: {cause}")]
    Io { context: String, cause: io::Error },
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_)
            | Error::InvalidName { .. }
            | Error::InvalidEnvVar { .. }
            | Error::RefusedEnvVar { .. }
            | Error::InvalidValue { .. } => Exit::Usage,
            Error::Exists { .. }
            | Error::StoreExists { .. }
            | Error::NotEnvSafe { .. }
            | Error::Unsupported(_) => Exit::Failure,
            Error::Io { .. } => Exit::Failure,
            Error::CredentialNotFound { .. }
            | Error::StoreNotFound { .. }
            | Error::KeychainItemMissing { .. } => Exit::NotFound,
            Error::NoIdentity
            | Error::NoIdentityKeychainDown { .. }
            | Error::Keychain { .. }
            | Error::IdentityTooOpen { .. }
            | Error::WrongPassphrase { .. }
            | Error::PassphraseNeeded { .. }
            | Error::BadIdentity { .. }
            | Error::NotARecipient { .. } => Exit::Locked,
            Error::Integrity { .. }
            | Error::StoreTooOpen { .. }
            | Error::KeychainItemChanged { .. } => Exit::Integrity,
            Error::CommandNotFound { .. } => Exit::CommandNotFound,
            Error::NotExecutable { .. } => Exit::NotExecutable,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Exists { .. } => "use --force to replace it".into(),
            Error::CredentialNotFound { .. } => "`agentcred list` shows the stored names".into(),
            Error::StoreNotFound { .. } => {
                "run `agentcred init` to create one, or pass --store DIR".into()
            }
            Error::NoIdentity => "set AGENTCRED_IDENTITY or AGENTCRED_IDENTITY_FILE, or run `agentcred init` to create an identity".into(),
            Error::NoIdentityKeychainDown { .. } => "start or unlock the OS keychain, or set AGENTCRED_IDENTITY or AGENTCRED_IDENTITY_FILE to use an identity file".into(),
            Error::Keychain { for_identity: true, .. } => "set AGENTCRED_IDENTITY or AGENTCRED_IDENTITY_FILE to use an identity file instead (or `agentcred init --identity file`)".into(),
            Error::Keychain { for_identity: false, .. } => "run where the OS keychain is reachable and unlocked, or use --backend age".into(),
            Error::KeychainItemChanged { name } => format!("if you changed it, store it through agentcred: `agentcred add {name} --backend keychain --force`"),
            Error::KeychainItemMissing { name } => format!("store it again with `agentcred add {name} --backend keychain --force`, or drop it with `agentcred rm {name}`"),
            Error::IdentityTooOpen { path } => format!("chmod 600 {}", path.display()),
            Error::PassphraseNeeded { .. } => {
                "set AGENTCRED_PASSPHRASE, or run from a terminal".into()
            }
            Error::NotARecipient { .. } => "ask a store member to add your recipient (`agentcred identity --public` prints it)".into(),
            Error::Integrity { .. } => {
                "the store was changed outside agentcred; restore it from git, or see `agentcred doctor`".into()
            }
            Error::StoreTooOpen { path } => format!("chmod 700 {}", path.display()),
            Error::NotEnvSafe { .. } => {
                "store it with --kind file so the program receives a file path instead".into()
            }
            Error::RefusedEnvVar { .. } => "choose another variable with --env".into(),
            _ => return None,
        })
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }

    pub fn integrity(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Integrity {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
