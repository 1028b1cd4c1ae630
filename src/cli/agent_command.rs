//! `agentcred agent command add|rm`: the commands an agent's MCP client may run by name
//! (`agentcred mcp`, tool `run`). A declaration pins the program like `agent add --program
//! --pin-sha256` does, and fixes its arguments; the client only chooses which one to run.

use std::ffi::OsString;

use clap::{Args, Subcommand};

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::exec::program as pin;
use crate::manifest::{AgentCommand, valid_command_name};
use crate::model::credential::AgentName;
use crate::util::output::escape;

/// Declare the commands an agent may run through `agentcred mcp`
#[derive(Debug, Args)]
#[command(
    after_help = "The program is pinned by path and SHA-256: a changed program is refused.
It runs with the agent's credentials, stdin closed, output masked and capped.

Examples:
  agentcred agent command add llm deploy -- ./deploy.sh --prod
  agentcred agent command add llm status --read-only --description 'show the deployment' -- ./deploy.sh --status
  agentcred agent command add llm test --allow-args -- /usr/bin/make test
  agentcred agent command rm llm deploy"
)]
pub struct CommandArgs {
    #[command(subcommand)]
    command: CommandCommand,
}

#[derive(Debug, Subcommand)]
enum CommandCommand {
    Add(AddArgs),
    Rm(RmArgs),
}

/// Declare a command an agent may run
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent command add llm deploy -- ./deploy.sh --prod
  agentcred agent command add llm status --read-only -- ./deploy.sh --status
  agentcred agent command add llm test --allow-args -- /usr/bin/make test")]
struct AddArgs {
    /// Agent name
    agent: String,

    /// The command's name, as the MCP client asks for it
    name: String,

    /// It changes nothing (MCP clients may run it without asking)
    #[arg(long)]
    read_only: bool,

    /// The client may append arguments after the declared ones
    #[arg(long)]
    allow_args: bool,

    /// What it does, shown to the model
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,

    /// Replace an existing declaration
    #[arg(long)]
    force: bool,

    /// The program (looked up in PATH, pinned as an absolute path) and its arguments
    #[arg(required = true, last = true, value_name = "PROGRAM")]
    command: Vec<OsString>,
}

/// Remove a declared command
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent command rm llm deploy")]
struct RmArgs {
    /// Agent name
    agent: String,

    /// The command's name
    name: String,
}

impl CommandArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self.command {
            CommandCommand::Add(args) => args.run(ctx),
            CommandCommand::Rm(args) => args.run(ctx),
        }
    }
}

fn check_name(name: &str) -> Result<(), Error> {
    if valid_command_name(name) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid command name {}: use lowercase letters, digits, '.', '_' and '-' (at most 64)",
            escape(name)
        )))
    }
}

impl AddArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("agent-command-add");
        let agent_name = AgentName::parse(&self.agent)?;
        check_name(&self.name)?;
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| Error::Usage("no program given after --".into()))?;
        let pinned = pin::pin_program(program, std::env::var_os("PATH").as_deref())?;
        ctx.audit.note(|d| {
            d.agent = Some(agent_name.to_string());
            d.program = pin::program_basename(pinned.path.as_ref()).map(String::from);
        });
        let args = args
            .iter()
            .map(|a| {
                a.to_str().map(String::from).ok_or_else(|| {
                    Error::Usage(
                        "an argument is not UTF-8 text, which the manifest cannot hold".into(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let declared = AgentCommand {
            program_sha256: pin::program_sha256(pinned.path.as_ref())?,
            program: pinned.path,
            args,
            extra_args: self.allow_args,
            read_only: self.read_only,
            description: self.description.filter(|d| !d.is_empty()),
        };
        let store = ctx.open_store()?;
        let mut txn = store.begin(ctx.identity()?)?;
        let agent = txn.agent_mut(&agent_name)?;
        if agent.commands.contains_key(&self.name) && !self.force {
            return Err(anyhow::anyhow!(
                "agent {agent_name} already has a command {}; pass --force to replace it",
                self.name
            ));
        }
        let summary = format!(
            "agent {agent_name} may run {} ({}{})",
            self.name,
            escape(&declared.program),
            if declared.args.is_empty() {
                String::new()
            } else {
                format!(" with {} fixed argument(s)", declared.args.len())
            }
        );
        agent.commands.insert(self.name, declared);
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!("{summary}");
        Ok(())
    }
}

impl RmArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("agent-command-rm");
        let agent_name = AgentName::parse(&self.agent)?;
        check_name(&self.name)?;
        ctx.audit.note(|d| d.agent = Some(agent_name.to_string()));
        let store = ctx.open_store()?;
        let mut txn = store.begin(ctx.identity()?)?;
        let agent = txn.agent_mut(&agent_name)?;
        let removed =
            agent
                .commands
                .remove(&self.name)
                .ok_or_else(|| Error::AgentCommandNotFound {
                    agent: agent_name.to_string(),
                    name: self.name.clone(),
                })?;
        ctx.audit.note(|d| {
            d.program = pin::program_basename(removed.program.as_ref()).map(String::from);
        });
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!("agent {agent_name} may no longer run {}", self.name);
        Ok(())
    }
}
