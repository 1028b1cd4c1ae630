//! The typed errors of the core.
//!
//! Each variant knows its exit code and, where a fix is known, a one-line hint. `main` finds
//! the first `Error` in an `anyhow` chain to choose both. Errors carry names and paths, never
//! a secret value: names from users are escaped (see [`crate::util::output::escape`]) before they
//! are stored here, so printing an error can never move a terminal's cursor or reorder text.

use std::io;
use std::path::PathBuf;

use crate::exit::Exit;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    /// A mistyped flag given where the program goes (`exec --bogus`).
    #[error(
        "unknown option {option} for exec{guess} (the program goes after --; a program named like an option needs ./)"
    )]
    UnknownExecOption { option: String, guess: String },

    /// Two selected credentials would set the same variable.
    #[error("credentials {first} and {second} are both injected as {env}; choose one with --only")]
    DuplicateEnv {
        first: String,
        second: String,
        env: String,
    },

    /// A question only a person can answer, with no terminal to ask it on.
    #[error("refusing to {what} without --yes: there is no terminal to confirm on")]
    NeedsConfirmation { what: String },

    /// No value given (stdin empty or closed, no prompt allowed).
    #[error("no value for {name} ({why}): pipe it on stdin or use --from-file")]
    NoValue { name: String, why: &'static str },

    #[error("the value for {name} is larger than 16 MiB")]
    ValueTooLarge { name: String },

    /// A date flag (`--rotated-at`) set after now.
    #[error("{flag} cannot be in the future")]
    FutureDate { flag: &'static str },

    #[error("invalid credential name {name}: {reason}")]
    InvalidName { name: String, reason: String },

    #[error("invalid agent name {name}: {reason}")]
    InvalidAgentName { name: String, reason: String },

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

    #[error("agent {name} not found")]
    AgentNotFound { name: String },

    #[error("agent {name} already exists")]
    AgentExists { name: String },

    #[error("agent {agent} declares no command {name}")]
    AgentCommandNotFound { agent: String, name: String },

    #[error("program {program} not found")]
    ProgramNotFound { program: String },

    #[error("agent {agent} is not allowed credential {name}")]
    NotAllowed { agent: String, name: String },

    #[error("this store requires an agent (require_agent), and none applies to {program}")]
    AgentRequired { program: String },

    #[error("agent {agent} may only run {pinned}, not {program}")]
    WrongProgram {
        agent: String,
        pinned: String,
        program: String,
    },

    #[error("{program} is not the program pinned for agent {agent}: its sha256 changed")]
    ProgramChanged { agent: String, program: String },

    #[error("no store at {}", path.display())]
    StoreNotFound { path: PathBuf },

    #[error("{} is not a store directory", path.display())]
    NotAStore { path: PathBuf },

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

    #[error(
        "agentcred {command} cannot run inside a sandboxed agent (exec --sandbox): the store and identity are out of its reach"
    )]
    Sandboxed { command: String },

    #[error("--sandbox cannot be enforced on this system: {reason}")]
    SandboxUnavailable { reason: String, need: String },

    #[error("this store has no Vault address")]
    VaultNotConfigured,

    #[error("no Vault token: none of VAULT_TOKEN, BAO_TOKEN, an AppRole login or ~/.vault-token")]
    VaultNoToken,

    #[error("{detail}")]
    VaultUnavailable { detail: String },

    #[error("{detail}")]
    VaultRefused {
        detail: String,
        hint: Option<String>,
    },

    #[error("{detail}")]
    VaultFailed { detail: String },

    #[error(
        "the value of credential {name} is missing in Vault ({path}: deleted outside agentcred?)"
    )]
    VaultValueMissing { name: String, path: String },

    #[error("the value of credential {name} in Vault ({path}) is not agentcred's: {detail}")]
    VaultValueChanged {
        name: String,
        path: String,
        detail: String,
    },

    #[error("{recipient} is not a recipient of this store")]
    RecipientNotFound { recipient: String },

    #[error("{what} is not encrypted to your identity (from {identity})")]
    NotARecipient { what: String, identity: String },

    #[error("integrity check failed: {what}: {detail}")]
    Integrity { what: String, detail: String },

    #[error("the store is in the middle of a git merge: unresolved conflict on {conflicts}")]
    MergeUnresolved { conflicts: String },

    #[error(
        "integrity check failed: agentcred.toml: it holds git conflict markers (this clone merged without the agentcred merge driver)"
    )]
    GitConflictMarkers,

    #[error("the audit log is broken at line {line}: {detail}")]
    AuditChain { line: u64, detail: String },

    #[error("store directory {} is writable by group or others", path.display())]
    StoreTooOpen { path: PathBuf },

    #[error("value of {name} cannot be an environment variable: {reason}")]
    NotEnvSafe { name: String, reason: String },

    #[error("{program}: command not found")]
    CommandNotFound { program: String },

    #[error("{program}: permission denied")]
    NotExecutable { program: String },

    #[error("{} overdue for rotation: {list}", if *.count == 1 { "1 credential is".to_string() } else { format!("{} credentials are", .count) })]
    Overdue { count: usize, list: String },

    #[error("the {flag} command {outcome}; {name} keeps its old value")]
    RotationCommand {
        flag: &'static str,
        outcome: String,
        name: String,
    },

    #[error("the new value of {name} is the same as the old one; nothing was rotated")]
    Unchanged { name: String },

    #[error("doctor found {problems} problem{}", if *problems == 1 { "" } else { "s" })]
    Unhealthy { problems: usize, exit: Exit },

    #[error("cannot get an access token for {name}: {detail}")]
    OAuth { name: String, detail: String },

    /// The endpoint refused the client (`invalid_client`, HTTP 401, a refused key): exit 5.
    /// `sign_in`: the client of an `authorization_code` credential, whose secret `rotate`
    /// does not replace.
    #[error("cannot get an access token for {name}: {detail}")]
    OAuthClientRejected {
        name: String,
        detail: String,
        sign_in: bool,
    },

    /// The user's grant is gone (`invalid_grant`, never logged in, revoked): exit 5.
    #[error("cannot get an access token for {name}: {detail}")]
    OAuthLoginNeeded { name: String, detail: String },

    #[error("stored values found in {places} place{}: {names}", if *.places == 1 { "" } else { "s" })]
    Leaked {
        places: usize,
        names: String,
        marked: bool,
    },

    #[error("integrity check failed: {detail}")]
    Untrusted { detail: String },

    #[error(
        "this store is at generation {generation}, older than generation {seen} {}; refusing to {doing} a rollback (it can bring back revoked grants and removed recipients)",
        if *.pinned { "pinned by AGENTCRED_MIN_GENERATION" } else { "seen on this machine" }
    )]
    RolledBack {
        generation: u64,
        seen: u64,
        pinned: bool,
        /// `write over` or `run a program from`.
        doing: &'static str,
    },

    #[error("{context}: {cause}")]
    Io { context: String, cause: io::Error },

    /// Another agentcred held the store's lock for the whole wait.
    #[error("cannot lock the store in {}: another agentcred has held its lock for {seconds} s", path.display())]
    StoreBusy { path: PathBuf, seconds: u64 },
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Unhealthy { exit, .. } => *exit,
            Error::Usage(_)
            | Error::UnknownExecOption { .. }
            | Error::DuplicateEnv { .. }
            | Error::NeedsConfirmation { .. }
            | Error::NoValue { .. }
            | Error::ValueTooLarge { .. }
            | Error::FutureDate { .. }
            | Error::VaultNotConfigured
            | Error::InvalidName { .. }
            | Error::InvalidAgentName { .. }
            | Error::InvalidEnvVar { .. }
            | Error::RefusedEnvVar { .. }
            | Error::InvalidValue { .. } => Exit::Usage,
            Error::Exists { .. }
            | Error::AgentExists { .. }
            | Error::StoreExists { .. }
            | Error::NotEnvSafe { .. }
            | Error::OAuth { .. }
            | Error::VaultFailed { .. }
            | Error::Unsupported(_)
            | Error::SandboxUnavailable { .. } => Exit::Failure,
            Error::Io { .. }
            | Error::StoreBusy { .. }
            | Error::RotationCommand { .. }
            | Error::Unchanged { .. }
            | Error::Leaked { .. } => Exit::Failure,
            Error::Overdue { .. } => Exit::Overdue,
            Error::CredentialNotFound { .. }
            | Error::AgentNotFound { .. }
            | Error::AgentCommandNotFound { .. }
            | Error::ProgramNotFound { .. }
            | Error::StoreNotFound { .. }
            | Error::NotAStore { .. }
            | Error::RecipientNotFound { .. }
            | Error::VaultValueMissing { .. }
            | Error::KeychainItemMissing { .. } => Exit::NotFound,
            Error::NotAllowed { .. }
            | Error::AgentRequired { .. }
            | Error::WrongProgram { .. }
            | Error::ProgramChanged { .. } => Exit::Denied,
            Error::NoIdentity
            | Error::NoIdentityKeychainDown { .. }
            | Error::Keychain { .. }
            | Error::IdentityTooOpen { .. }
            | Error::WrongPassphrase { .. }
            | Error::PassphraseNeeded { .. }
            | Error::BadIdentity { .. }
            | Error::NotARecipient { .. }
            | Error::VaultNoToken
            | Error::VaultUnavailable { .. }
            | Error::VaultRefused { .. }
            | Error::OAuthClientRejected { .. }
            | Error::OAuthLoginNeeded { .. }
            | Error::Sandboxed { .. } => Exit::Locked,
            Error::Integrity { .. }
            | Error::RolledBack { .. }
            | Error::Untrusted { .. }
            | Error::AuditChain { .. }
            | Error::MergeUnresolved { .. }
            | Error::GitConflictMarkers
            | Error::StoreTooOpen { .. }
            | Error::KeychainItemChanged { .. }
            | Error::VaultValueChanged { .. } => Exit::Integrity,
            Error::CommandNotFound { .. } => Exit::CommandNotFound,
            Error::NotExecutable { .. } => Exit::NotExecutable,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::Exists { .. } => "use --force to replace it".into(),
            Error::SandboxUnavailable { need, .. } => format!("needed: {need}; `agentcred doctor` shows what this system supports"),
            Error::Sandboxed { .. } => "ask for the credential in the agent's policy (agentcred agent grant), outside the sandbox".into(),
            Error::CredentialNotFound { .. } => "`agentcred list` shows the stored names".into(),
            Error::AgentExists { .. } => "use --force to replace it".into(),
            Error::AgentNotFound { .. } => "`agentcred agent list` shows the agents".into(),
            Error::AgentCommandNotFound { agent, .. } => {
                format!("`agentcred agent show {agent}` lists its commands")
            }
            Error::VaultNotConfigured => "give it one with `agentcred vault set --addr URL` (or `init --vault-addr`), or set VAULT_ADDR".into(),
            Error::VaultNoToken => "set VAULT_TOKEN (or BAO_TOKEN), or AGENTCRED_VAULT_ROLE_ID and AGENTCRED_VAULT_SECRET_ID for an AppRole login".into(),
            Error::VaultUnavailable { .. } => "check VAULT_ADDR and that the server is up and unsealed (`bao status`)".into(),
            Error::VaultRefused { hint: Some(hint), .. } => hint.clone(),
            Error::VaultValueMissing { name, .. } => format!("store it again with `agentcred add {name} --backend vault --force`, or drop it with `agentcred rm {name}`"),
            Error::VaultValueChanged { name, .. } => format!("pull the store if its key was replaced elsewhere; if the value was changed by hand, store the right one through agentcred: `agentcred add {name} --backend vault --force`"),
            Error::RecipientNotFound { .. } => {
                "`agentcred recipients list` shows them".into()
            }
            Error::AgentRequired { .. } => "name one with --agent NAME (or AGENTCRED_AGENT), or run a program or script named like an agent; `agentcred config require-agent false` turns the requirement off".into(),
            Error::NotAllowed { agent, name } => {
                format!("`agentcred agent grant {agent} {name}` allows it")
            }
            Error::WrongProgram { agent, .. } => format!(
                "run the pinned program, or pin another with `agentcred agent add {agent} --force --program PATH ...`"
            ),
            Error::ProgramChanged { agent, .. } => format!(
                "if the change is expected (an upgrade), pin it again with `agentcred agent add {agent} --force --program PATH --pin-sha256 ...`"
            ),
            Error::NotAStore { .. } => {
                "pass --store DIR naming a directory made by `agentcred init`".into()
            }
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
            Error::PassphraseNeeded { .. } if crate::util::prompt::in_ci() => {
                "set AGENTCRED_PASSPHRASE (CI never prompts)".into()
            }
            Error::PassphraseNeeded { .. } => {
                "run `agentcred unlock` at a terminal first (it keeps the identity unlocked for the session), or set AGENTCRED_PASSPHRASE".into()
            }
            Error::NotARecipient { .. } => "ask a store member to add your recipient (`agentcred identity --public` prints it)".into(),
            Error::Integrity { .. } => {
                "the store was changed outside agentcred; restore it from git, or see `agentcred doctor`".into()
            }
            Error::MergeUnresolved { .. } => "choose a side for each with `agentcred resolve NAME --ours` (or `--theirs`), then `git commit`; `git merge --abort` gives up the merge".into(),
            Error::GitConflictMarkers => "`git merge --abort`, run `agentcred git-setup` in this clone, then merge again".into(),
            Error::AuditChain { .. } => {
                "the log was changed after it was written; keep a copy of it as evidence".into()
            }
            Error::StoreTooOpen { path } => format!("chmod 700 {}", path.display()),
            Error::Untrusted { .. } => "if the change was deliberate, accept it with `agentcred doctor --trust`; otherwise restore the store from git".into(),
            Error::RolledBack { pinned: true, .. } => "`git pull` the current store, or lower AGENTCRED_MIN_GENERATION if going back was deliberate".into(),
            Error::RolledBack { .. } => "`git pull` the current store; if going back was deliberate (a checkout of an older state), accept it with `agentcred doctor --trust`".into(),
            Error::NotEnvSafe { name, .. } => format!(
                "store it as a file credential (`agentcred add {name} --kind file --force --from-file PATH`): the program then gets the path of a private file holding it, which has no size or NUL limit"
            ),
            Error::Leaked { marked: true, .. } => "they are marked due now; rotate them with `agentcred rotate NAME` and remove the copies (also from git history)".into(),
            Error::Leaked { marked: false, .. } => "rotate them with `agentcred rotate NAME` and remove the copies (also from git history); --mark-compromised marks them due now".into(),
            Error::OAuthClientRejected {
                name,
                sign_in: true,
                ..
            } => format!(
                "the endpoint refused the client id or secret: check the id with `agentcred show {name}`; to change the client, add it again (`agentcred add {name} --force ...`, with --confidential for a secret) and run `agentcred login {name}`"
            ),
            Error::OAuthClientRejected { name, .. } => format!(
                "the endpoint refused the client id or its secret or key: check the id with `agentcred show {name}`; store the current secret or key with `agentcred rotate {name}`"
            ),
            Error::OAuthLoginNeeded { name, .. } => {
                format!("run agentcred login {name} (or `agentcred login {name} --device` without a browser)")
            }
            Error::RefusedEnvVar { .. } => "choose another variable with --env".into(),
            Error::Overdue { .. } => {
                "rotate with `agentcred rotate NAME`; `agentcred due` lists what is due".into()
            }
            _ => return None,
        })
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        // Store files are opened with O_NOFOLLOW: ELOOP means a symlink was put where a
        // store file belongs, which is tampering, not an I/O accident (exit 6).
        if source.raw_os_error() == Some(libc::ELOOP) {
            return Error::Integrity {
                what: context.into(),
                detail: "it is a symlink (store files are never followed)".into(),
            };
        }
        Error::Io {
            context: context.into(),
            cause: source,
        }
    }

    /// Overdue credentials, named with how long ago each was due.
    pub fn overdue(items: &[(&str, jiff::Timestamp)], now: jiff::Timestamp) -> Self {
        let list: Vec<String> = items
            .iter()
            .map(|(name, due)| format!("{name} (due {})", crate::util::output::relative(*due, now)))
            .collect();
        Error::Overdue {
            count: items.len(),
            // The hint after it says where to see them all.
            list: crate::util::output::first_names(&list, None),
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
