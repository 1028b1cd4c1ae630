//! The command line: clap types and one `run` per subcommand. Logic lives in the library
//! modules; these files turn arguments into calls and results into output.

mod add;
mod agent;
mod audit;
pub mod complete;
mod completions;
pub mod context;
mod doctor;
mod due;
mod exec;
mod export;
mod get;
mod git_setup;
mod identity;
mod import;
mod init;
mod input;
mod list;
mod merge_driver;
mod recipients;
mod resolve;
mod rm;
mod rotate;
mod scan;
mod show;
mod token;
mod unlock;
mod vault;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::context::Ctx;
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
    max_term_width = 100
)]
pub struct Cli {
    /// The store directory [default: ~/.local/share/agentcred]
    #[arg(long, global = true, value_name = "DIR", env = "AGENTCRED_STORE")]
    pub store: Option<PathBuf>,

    /// Never prompt; fail instead when input would be needed
    #[arg(long, global = true)]
    pub no_input: bool,

    /// Say more on stderr (never values)
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::InitArgs),
    Add(add::AddArgs),
    Get(get::GetArgs),
    List(list::ListArgs),
    Show(show::ShowArgs),
    Rm(rm::RmArgs),
    Rotate(rotate::RotateArgs),
    Due(due::DueArgs),
    Exec(exec::ExecArgs),
    Token(token::TokenArgs),
    Import(import::ImportArgs),
    Export(export::ExportArgs),
    Identity(identity::IdentityArgs),
    Recipients(recipients::RecipientsArgs),
    Vault(vault::VaultArgs),
    Doctor(doctor::DoctorArgs),
    Completions(completions::CompletionsArgs),
    Agent(agent::AgentArgs),
    Audit(audit::AuditArgs),
    Unlock(unlock::UnlockArgs),
    Lock(unlock::LockArgs),
    Scan(scan::ScanArgs),
    GitSetup(git_setup::GitSetupArgs),
    Resolve(resolve::ResolveArgs),
    MergeDriver(merge_driver::MergeDriverArgs),
}

impl Command {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self {
            Command::Init(args) => args.run(ctx),
            Command::Add(args) => args.run(ctx),
            Command::Get(args) => args.run(ctx),
            Command::List(args) => args.run(ctx),
            Command::Show(args) => args.run(ctx),
            Command::Rm(args) => args.run(ctx),
            Command::Rotate(args) => args.run(ctx),
            Command::Due(args) => args.run(ctx),
            Command::Exec(args) => args.run(ctx),
            Command::Token(args) => args.run(ctx),
            Command::Import(args) => args.run(ctx),
            Command::Recipients(args) => args.run(ctx),
            Command::Vault(args) => args.run(ctx),
            Command::Export(args) => args.run(ctx),
            Command::Identity(args) => args.run(ctx),
            Command::Doctor(args) => args.run(ctx),
            Command::Completions(args) => args.run(ctx),
            Command::Agent(args) => args.run(ctx),
            Command::Audit(args) => args.run(ctx),
            Command::Unlock(args) => args.run(ctx),
            Command::Lock(args) => args.run(ctx),
            Command::Scan(args) => args.run(ctx),
            Command::GitSetup(args) => args.run(ctx),
            Command::Resolve(args) => args.run(ctx),
            Command::MergeDriver(args) => args.run(ctx),
        }
    }
}

/// The whole program: parse, run, report.
pub fn main() -> ExitCode {
    complete::complete_if_asked(<Cli as clap::CommandFactory>::command);
    let core_limit = hardening::protect();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            });
        }
    };
    let ctx = match Ctx::new(cli.store, cli.no_input, cli.verbose, core_limit) {
        Ok(ctx) => ctx,
        Err(e) => return report(&e.into()).into(),
    };
    match cli.command.run(&ctx) {
        Ok(()) => Exit::Success.into(),
        Err(e) => {
            let exit = report(&e);
            if exit != Exit::Success {
                ctx.audit.failed(exit);
            }
            exit.into()
        }
    }
}

/// Print an error as one line (plus a hint) and choose the exit code.
fn report(err: &anyhow::Error) -> Exit {
    let broken_pipe = err
        .chain()
        .any(|c| c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
        || err.chain().any(|c| {
            matches!(c.downcast_ref::<Error>(), Some(Error::Io { cause, .. }) if cause.kind() == io::ErrorKind::BrokenPipe)
        });
    if broken_pipe {
        return Exit::Success;
    }
    let core = err.chain().find_map(|c| c.downcast_ref::<Error>());
    let mut stderr = io::stderr().lock();
    let message = format!("{err:#}").replace('\n', " ");
    let _ = writeln!(stderr, "error: {message}");
    if let Some(hint) = core.and_then(Error::hint) {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    core.map_or(Exit::Failure, Error::exit)
}

/// Parse a comma-separated or repeated list of credential names.
fn parse_names(raw: &[String]) -> Result<Vec<crate::model::credential::CredentialName>, Error> {
    raw.iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(crate::model::credential::CredentialName::parse)
        .collect()
}
