//! The command line: clap types and one `run` per subcommand. Logic lives in the library
//! modules; these files turn arguments into calls and results into output.

mod add;
mod agent;
mod agent_command;
mod argv;
mod audit;
pub mod complete;
mod completions;
mod config;
pub mod context;
mod doctor;
mod due;
mod edit;
mod exec;
mod export;
mod get;
mod git_setup;
mod identity;
mod import;
mod init;
mod input;
mod lazy;
mod list;
mod login;
mod mcp;
mod merge_driver;
mod recipients;
mod rename;
mod resolve;
mod rm;
mod rotate;
mod scan;
mod show;
mod token;
mod unlock;
mod upstream_flags;
mod vault;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cli::context::Ctx;
use crate::cli::lazy::Lazy;
use crate::error::Error;
use crate::exit::Exit;
use crate::util::hardening;

/// Credentials for AI agents and bots: an age-encrypted store, least privilege per agent,
/// rotation dates, and `agentcred exec -- mybot` to run a program with its keys.
#[derive(Debug, Parser)]
#[command(
    name = "agentcred",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = format!("{EXAMPLES}\n`agentcred --help` also lists the environment variables and exit codes."),
    after_long_help = format!("{EXAMPLES}\n{ENVIRONMENT}\n{EXIT_STATUS}")
)]
pub struct Root<C: Subcommand> {
    /// The store directory [default: $XDG_DATA_HOME/agentcred, else ~/.local/share/agentcred]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "AGENTCRED_STORE",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub store: Option<PathBuf>,

    /// Never prompt; fail instead when input would be needed
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_input: bool,

    /// Say more on stderr (never values)
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: C,
}

/// agentcred's command line.
pub type Cli = Root<Command>;

/// `exec` alone, for [`parse`]: the command line clap builds for `agentcred exec` (most
/// runs of a hot path) has none of the other 29 subcommands, whose building was about
/// 3 % of `exec`'s time (docs/performance.md). Its variant is the one in [`Command`].
#[derive(Debug, Subcommand)]
enum ExecOnly {
    Exec(Lazy<exec::ExecArgs>),
}

impl From<Root<ExecOnly>> for Cli {
    fn from(root: Root<ExecOnly>) -> Cli {
        let ExecOnly::Exec(args) = root.command;
        Root {
            store: root.store,
            no_input: root.no_input,
            verbose: root.verbose,
            command: Command::Exec(args),
        }
    }
}

const GLOBAL: &str = "Global options";

/// The top-level examples (also the man page's EXAMPLES).
pub const EXAMPLES: &str = "Examples:
  agentcred init                                      # a store, and your identity
  printf %s \"$OPENAI_API_KEY\" | agentcred add openai-api-key
  agentcred exec -- python3 bot.py                    # the bot gets OPENAI_API_KEY
  agentcred agent add bot --allow openai-api-key      # only what this bot needs
  agentcred exec --agent bot -- ./bot
  agentcred edit openai-api-key --rotate-every 30d
  agentcred due --check                               # in CI: exit 3 when one is overdue
";

/// The variables agentcred reads (`--help` and the man pages' ENVIRONMENT).
pub const ENVIRONMENT: &str = "Environment:
  AGENTCRED_STORE              the store directory, as --store
  AGENTCRED_IDENTITY           the text of an age identity (AGE-SECRET-KEY-1...)
  AGENTCRED_IDENTITY_FILE      a path to an identity file, plain or passphrase-protected
  AGENTCRED_PASSPHRASE         the passphrase of a protected identity file (else a prompt
                               on the terminal; `agentcred unlock` asks once per session)
  AGENTCRED_AGENT              the agent exec, export and mcp use when none is named
  AGENTCRED_STORE_FINGERPRINT  refuse a store whose key has another fingerprint (pin in CI)
  AGENTCRED_MIN_GENERATION     refuse exec on a store older than this generation (pin in
                               CI: a rollback could bring back a revoked grant)
  VAULT_ADDR, VAULT_TOKEN      the vault backend (also BAO_ADDR, BAO_TOKEN, and an AppRole
                               in AGENTCRED_VAULT_ROLE_ID, AGENTCRED_VAULT_SECRET_ID)
  CI                           when set (not empty, 0 or false), nothing ever prompts
  NO_COLOR                     no color in output
  SSL_CERT_FILE                trust anchors (PEM) for agentcred's own HTTPS: the roots of
                               token endpoints and Vault, added to the broker's
  XDG_DATA_HOME, XDG_CONFIG_HOME  where the default store and identity file live
";

/// The exit codes (`--help` and the man pages' EXIT STATUS); pinned by CONTRACT section 7.
pub const EXIT_STATUS: &str = "Exit status:
  0    success
  1    an error not listed below (a name that exists without --force, a network failure)
  2    usage error (unknown flag, bad duration, invalid name or variable)
  3    a credential is overdue (due --check, exec --deny-overdue)
  4    not found (credential, agent, store)
  5    cannot unlock (no identity, wrong passphrase, keychain or vault unreachable)
  6    integrity (damaged or swapped secret file, bad manifest, broken or cut audit log,
       a rolled-back store at exec)
  7    denied (the agent is not allowed that credential, or none applies and the store
       requires one)
  126  exec: the program is not executable;  127: not found;  else the program's own status
";

// Parsed once per run: the size of the largest variant (add's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    Init(Lazy<init::InitArgs>),
    Add(Lazy<add::AddArgs>),
    Get(Lazy<get::GetArgs>),
    List(Lazy<list::ListArgs>),
    Show(Lazy<show::ShowArgs>),
    Edit(Lazy<edit::EditArgs>),
    Rename(Lazy<rename::RenameArgs>),
    Rm(Lazy<rm::RmArgs>),
    Rotate(Lazy<rotate::RotateArgs>),
    Due(Lazy<due::DueArgs>),
    Exec(Lazy<exec::ExecArgs>),
    Token(Lazy<token::TokenArgs>),
    Login(Lazy<login::LoginArgs>),
    Import(Lazy<import::ImportArgs>),
    Export(Lazy<export::ExportArgs>),
    Identity(Lazy<identity::IdentityArgs>),
    Recipients(Lazy<recipients::RecipientsArgs>),
    Vault(Lazy<vault::VaultArgs>),
    Doctor(Lazy<doctor::DoctorArgs>),
    Completions(Lazy<completions::CompletionsArgs>),
    Agent(Lazy<agent::AgentArgs>),
    Audit(Lazy<audit::AuditArgs>),
    Config(Lazy<config::ConfigArgs>),
    Unlock(Lazy<unlock::UnlockArgs>),
    Lock(Lazy<unlock::LockArgs>),
    Scan(Lazy<scan::ScanArgs>),
    Mcp(Lazy<mcp::McpArgs>),
    GitSetup(Lazy<git_setup::GitSetupArgs>),
    Resolve(Lazy<resolve::ResolveArgs>),
    /// Git's merge driver for a store (git runs it; see `git-setup`)
    #[command(hide = true)]
    MergeDriver(Lazy<merge_driver::MergeDriverArgs>),
}

impl Command {
    /// The subcommand's name, for the sandbox's refusal.
    fn name(&self) -> &'static str {
        match self {
            Command::Get(_) => "get",
            Command::Export(_) => "export",
            Command::Exec(_) => "exec",
            Command::Token(_) => "token",
            _ => "",
        }
    }

    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self {
            Command::Init(args) => args.0.run(ctx),
            Command::Add(args) => args.0.run(ctx),
            Command::Get(args) => args.0.run(ctx),
            Command::List(args) => args.0.run(ctx),
            Command::Show(args) => args.0.run(ctx),
            Command::Edit(args) => args.0.run(ctx),
            Command::Rename(args) => args.0.run(ctx),
            Command::Rm(args) => args.0.run(ctx),
            Command::Rotate(args) => args.0.run(ctx),
            Command::Due(args) => args.0.run(ctx),
            Command::Exec(args) => args.0.run(ctx),
            Command::Token(args) => args.0.run(ctx),
            Command::Login(args) => args.0.run(ctx),
            Command::Import(args) => args.0.run(ctx),
            Command::Recipients(args) => args.0.run(ctx),
            Command::Vault(args) => args.0.run(ctx),
            Command::Export(args) => args.0.run(ctx),
            Command::Identity(args) => args.0.run(ctx),
            Command::Doctor(args) => args.0.run(ctx),
            Command::Completions(args) => args.0.run(ctx),
            Command::Agent(args) => args.0.run(ctx),
            Command::Audit(args) => args.0.run(ctx),
            Command::Config(args) => args.0.run(ctx),
            Command::Unlock(args) => args.0.run(ctx),
            Command::Lock(args) => args.0.run(ctx),
            Command::Scan(args) => args.0.run(ctx),
            Command::Mcp(args) => args.0.run(ctx),
            Command::GitSetup(args) => args.0.run(ctx),
            Command::Resolve(args) => args.0.run(ctx),
            Command::MergeDriver(args) => args.0.run(ctx),
        }
    }
}

/// Whether parsing `args` may print every subcommand's summary (help, or no known
/// subcommand: clap then prints the help that lists them), so that clap's tree must be
/// built whole; otherwise only the parsed subcommand's arguments are added
/// ([`lazy::Lazy`]). Unsure means yes: the whole tree is only slower. So does a global
/// option or the version flag after the subcommand (see [`parse`]); with a short flag
/// holding a `v` or `V` anywhere, to be sure of `-qv`.
fn needs_whole_tree(args: &[std::ffi::OsString]) -> bool {
    let Some((first, rest)) = subcommand_at(args) else {
        return true;
    };
    // `--no-input=false` too: clap refuses it where the whole tree parses, and `exec`
    // would take it for its program's first word.
    let global = |a: &str| {
        let flag = a.split('=').next().unwrap_or(a);
        matches!(flag, "--store" | "--no-input" | "--verbose" | "--version")
            || (a.starts_with('-') && !a.starts_with("--") && a.contains(['v', 'V']))
    };
    !Command::has_subcommand(first)
        || rest
            .iter()
            .take_while(|a| *a != "--")
            .any(|a| a == "-h" || a == "--help" || a == "help" || a.to_str().is_none_or(global))
}

/// The first word of `args` after the global options (the subcommand's name, if clap
/// will take it as one) and the words after it; `None` when a flag comes first that is
/// not a global option (help, the version, one clap will refuse).
fn subcommand_at(args: &[std::ffi::OsString]) -> Option<(&str, &[std::ffi::OsString])> {
    let mut at = 1;
    loop {
        match args.get(at)?.to_str()? {
            "--store" => at += 1,
            "--no-input" | "-v" | "--verbose" => {}
            flag if flag.starts_with("--store=") => {}
            word if !word.starts_with('-') => return Some((word, &args[at + 1..])),
            _ => return None,
        }
        at += 1;
    }
}

/// Parse `args` into the command line, building only the named subcommand's arguments
/// when [`needs_whole_tree`] says that is enough. Whatever does not parse (an error, help,
/// the version) is parsed again with the whole tree, so that what clap prints is exactly
/// what it printed before: with deferred arguments the global options come first among a
/// subcommand's, which changes a suggestion for a typo as close to a global option as to
/// one of the subcommand's own (`add --s`) and the order of the sections of `add -vh`.
///
/// The first attempt also takes the global options only before the subcommand, where
/// [`needs_whole_tree`] looks for them, and gives the subcommands no `--version`: before
/// parsing, clap copies every global option and the version flag into each of the 35
/// subcommands (74 kB of the heap and about 0.15 M instructions of every `exec`, measured
/// in docs/performance.md). One after the subcommand (`exec --store DIR`) fails that
/// attempt, and the whole tree parses it.
fn parse(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    let whole = || parse_with(with_default_store(Cli::command()), args);
    if needs_whole_tree(args) {
        return whole();
    }
    // Nothing is printed from this attempt (help and errors come from the whole tree), so
    // the help text naming the default store is not made for it either.
    let lean = |command: clap::Command| {
        command
            .propagate_version(false)
            .mut_args(|arg| arg.global(false))
    };
    lazy::expand_all(false);
    let parsed = match subcommand_at(args).map(|(word, _)| word) {
        Some("exec") => {
            parse_with::<ExecOnly>(lean(Root::<ExecOnly>::command()), args).map(Cli::from)
        }
        _ => parse_with(lean(Cli::command()), args),
    };
    // Anything that builds the tree later (completion scripts) gets all of it.
    lazy::expand_all(true);
    parsed.or_else(|_| whole())
}

fn parse_with<C: Subcommand>(
    command: clap::Command,
    args: &[std::ffi::OsString],
) -> Result<Root<C>, clap::Error> {
    command
        .try_get_matches_from(args)
        .and_then(|matches| Root::<C>::from_arg_matches(&matches))
}

/// The whole program: parse, run, report; the exit status.
pub fn main() -> u8 {
    if let Some(code) = crate::sandbox::trampoline_if_asked() {
        return code;
    }
    complete::complete_if_asked(<Cli as clap::CommandFactory>::command);
    let core_limit = hardening::protect();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // A private key typed as an argument is refused before clap can quote it.
    if let Some(exit) = argv::refuse_private_keys(&args) {
        return exit.code();
    }
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(message) = usage_hint(&e) {
                eprint!("{message}");
                return Exit::Usage.code();
            }
            argv::print_clap_error(&e, &args);
            return if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            };
        }
    };
    if let Some(e) = crate::sandbox::refuse_inside(cli.command.name()) {
        return report(&e.into(), || None).code();
    }
    let ctx = match Ctx::new(cli.store, cli.no_input, cli.verbose, core_limit) {
        Ok(ctx) => ctx,
        Err(e) => return report(&e.into(), || None).code(),
    };
    match cli.command.run(&ctx) {
        Ok(()) => Exit::Success.code(),
        Err(e) => {
            let exit = report(&e, || similar_name(&ctx, &e));
            if exit != Exit::Success {
                ctx.audit.failed(exit);
            }
            exit.code()
        }
    }
}

/// Help that names this machine's default store (which follows `XDG_DATA_HOME`), not
/// the generic text the man pages carry.
fn with_default_store(command: clap::Command) -> clap::Command {
    let Some(dirs) = directories::ProjectDirs::from("", "", "agentcred") else {
        return command;
    };
    let dir = dirs.data_dir();
    let shown = match std::env::var_os("HOME").map(PathBuf::from) {
        Some(home) if !home.as_os_str().is_empty() && dir.starts_with(&home) => {
            Path::new("~").join(dir.strip_prefix(&home).unwrap_or(dir))
        }
        _ => dir.to_path_buf(),
    };
    let help = format!(
        "The store directory [default: {}]",
        crate::util::output::escape(&shown.display().to_string())
    );
    command.mut_arg("store", |arg| arg.help(help))
}

/// Print an error as one line (plus a hint) and choose the exit code. `similar` may
/// offer a better hint (a name like the one not found).
fn report(err: &anyhow::Error, similar: impl FnOnce() -> Option<String>) -> Exit {
    // A reader that went away (`| head`): quiet, as other tools are. serde_json wraps the
    // write's error in its own.
    let broken_pipe = err.chain().any(|c| {
        let kind = c
            .downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| match c.downcast_ref::<Error>() {
                Some(Error::Io { cause, .. }) => Some(cause.kind()),
                _ => None,
            })
            .or_else(|| c.downcast_ref::<serde_json::Error>()?.io_error_kind());
        kind == Some(io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return Exit::Success;
    }
    let core = err.chain().find_map(|c| c.downcast_ref::<Error>());
    let mut stderr = io::stderr().lock();
    let message = argv::scrub(&format!("{err:#}").replace('\n', " "));
    let _ = writeln!(stderr, "error: {message}");
    if let Some(hint) = similar().or_else(|| core.and_then(Error::hint)) {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    core.map_or(Exit::Failure, Error::exit)
}

/// Parse `--only`: like [`parse_names`], but a flag given that names nothing (`--only ""`,
/// `--only ,`) is a usage error, never "everything".
fn parse_selection(raw: &[String]) -> Result<Vec<crate::model::credential::CredentialName>, Error> {
    let names = parse_names(raw)?;
    if !raw.is_empty() && names.is_empty() {
        return Err(Error::Usage(
            "--only names no credential; name at least one (--only NAME,...)".into(),
        ));
    }
    Ok(names)
}

/// Parse a comma-separated or repeated list of credential names.
fn parse_names(raw: &[String]) -> Result<Vec<crate::model::credential::CredentialName>, Error> {
    crate::model::credential::CredentialName::parse_list(raw)
}

/// Words people bring from other tools (`op run`, `pass rm`, `gh secret set`), with the
/// command that does it here. clap's own guess goes by spelling: `set` -> `get`.
const OTHER_TOOLS: &[(&str, &str, &str)] = &[
    (
        "run",
        "agentcred exec -- CMD",
        "runs CMD with its credentials, as `op run` does",
    ),
    (
        "env",
        "agentcred exec -- CMD",
        "runs CMD with its credentials",
    ),
    ("delete", "agentcred rm NAME", "deletes a credential"),
    ("remove", "agentcred rm NAME", "deletes a credential"),
    ("del", "agentcred rm NAME", "deletes a credential"),
    (
        "set",
        "agentcred add NAME",
        "stores a credential (`edit` changes its metadata)",
    ),
    (
        "put",
        "agentcred add NAME",
        "stores a credential (`edit` changes its metadata)",
    ),
    (
        "insert",
        "agentcred add NAME",
        "stores a credential (`edit` changes its metadata)",
    ),
    (
        "create",
        "agentcred add NAME",
        "stores a credential (`edit` changes its metadata)",
    ),
    ("ls", "agentcred list", "lists the credentials"),
    ("mv", "agentcred rename OLD NEW", "renames a credential"),
    ("move", "agentcred rename OLD NEW", "renames a credential"),
    (
        "info",
        "agentcred show NAME",
        "shows a credential's metadata",
    ),
];

/// Flags people try for a value on the command line, which agentcred never takes.
const VALUE_FLAGS: &[&str] = &["--value", "--secret", "--password", "--token", "--key"];

/// A better message than clap's for a usage error a newcomer makes: a subcommand from
/// another tool, or a value on the command line (clap would suggest `-- --value`).
fn usage_hint(err: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    match err.kind() {
        ErrorKind::InvalidSubcommand => {
            let typed = context(ContextKind::InvalidSubcommand)?;
            let (_, command, what) = OTHER_TOOLS.iter().find(|(word, ..)| *word == typed)?;
            Some(format!(
                "error: unrecognized subcommand '{typed}'\nhint: did you mean `{command}`? It {what}\n"
            ))
        }
        ErrorKind::UnknownArgument => {
            let typed = context(ContextKind::InvalidArg)?;
            // Never echo what follows `=`: it is the value.
            let flag = typed.split('=').next().unwrap_or_default();
            VALUE_FLAGS.contains(&flag).then(|| {
                format!(
                    "error: there is no {flag} option: agentcred never takes a value on the command line (shell history and `ps` would keep it)\n\
                     hint: pipe it (printf %s \"$VALUE\" | agentcred add NAME), use --from-file PATH, or run at a terminal to be asked\n"
                )
            })
        }
        _ => None,
    }
}

/// "did you mean NAME?" for a credential or agent that is not there, from the names the
/// store has (read without unlocking: names are not secret).
fn similar_name(ctx: &Ctx, err: &anyhow::Error) -> Option<String> {
    let (wanted, credential) = err.chain().find_map(|c| match c.downcast_ref::<Error>() {
        Some(Error::CredentialNotFound { name }) => Some((name.clone(), true)),
        Some(Error::AgentNotFound { name }) => Some((name.clone(), false)),
        _ => None,
    })?;
    let store =
        crate::store::Store::open(&ctx.store_dir, crate::cli::context::say_on_stderr()).ok()?;
    let table = if credential { "credentials" } else { "agents" };
    // Only the names, from each section's header as the file goes by (parsing the whole
    // manifest of 10,000 credentials for them took 12 MB); the whole file if it is not in
    // agentcred's layout.
    let mut names: Vec<String> = Vec::new();
    // The file is not verified here: a name that is not one (a hand edit, a planted
    // section) is never offered.
    let valid = |name: &String| match credential {
        true => crate::model::credential::CredentialName::parse(name)
            .is_ok_and(|parsed| parsed.as_str() == name),
        false => crate::model::credential::AgentName::parse(name)
            .is_ok_and(|parsed| parsed.as_str() == name),
    };
    let mut each = |section: &str| {
        let header = section.lines().next().unwrap_or_default();
        names.extend(
            crate::manifest::table_names(header, table)
                .into_iter()
                .filter(valid),
        );
        Some(false)
    };
    if store.stream_unverified(&mut each).ok().flatten().is_none() {
        let manifest = store.manifest_unverified().ok()?;
        names = if credential {
            manifest.credentials.into_keys().collect()
        } else {
            manifest.agents.into_keys().collect()
        };
    }
    let best = closest(&wanted, names.iter().map(String::as_str))?;
    let list = if credential { "list" } else { "agent list" };
    Some(format!(
        "did you mean {}? (`agentcred {list}` shows them all)",
        crate::util::output::escape(best)
    ))
}

/// The candidate most like `typed`, when it is like enough to be the one meant.
pub(crate) fn closest<'a>(
    typed: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(typed, c), c))
        .filter(|(score, c)| *score > 0.8 && *c != typed)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
