//! `agentcred agent`: manage agents, the least-privilege profiles `exec` applies.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::cli::context::{Ctx, user_at_host};
use crate::error::Error;
use crate::manifest::{Agent, Manifest};
use crate::model::credential::{AgentName, CredentialName};
use crate::store::Txn;
use crate::util::output::{self, escape};

use super::list::load_agents;
use super::parse_names;

/// Manage agents: which credentials each program may receive, and how
#[derive(Debug, Args)]
#[command(
    after_help = "An agent named like a program applies when that program is run:
`agentcred exec -- mybot` gives mybot only what agent mybot allows.

Examples:
  agentcred agent add mybot --allow openai-api-key,github-token
  agentcred agent add deployer --allow cloud-key --program ./deploy.sh --pin-sha256 --clean-env
  agentcred agent grant mybot slack-token
  agentcred agent list"
)]
pub struct AgentArgs {
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    Add(AddArgs),
    Rm(RmArgs),
    List(ListArgs),
    Show(ShowArgs),
    Grant(GrantArgs),
    Revoke(RevokeArgs),
    Command(super::agent_command::CommandArgs),
}

/// Create an agent allowed some credentials
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent add mybot --allow openai-api-key,github-token
  agentcred agent add ci --allow deploy-key --program /usr/local/bin/deploy --pin-sha256")]
struct AddArgs {
    /// Agent name (lowercase; `exec` matches it against program names)
    name: String,

    /// The credentials it may receive (comma-separated or repeated)
    #[arg(long, value_name = "NAME,...", required = true)]
    allow: Vec<String>,

    /// Give its credentials only to this program (looked up in PATH, pinned as an
    /// absolute path)
    #[arg(long, value_name = "PATH")]
    program: Option<OsString>,

    /// Also pin the program's SHA-256: a changed program is refused
    #[arg(long, requires = "program")]
    pin_sha256: bool,

    /// exec starts it from an empty environment plus PATH, HOME, USER, LANG, TERM, TMPDIR
    #[arg(long)]
    clean_env: bool,

    /// exec masks its credentials' values in its output
    #[arg(long)]
    mask: bool,

    /// exec refuses to start it while one of its credentials is overdue
    #[arg(long)]
    deny_overdue: bool,

    /// exec runs it in a sandbox: it cannot read the store or the identity, nor reach the
    /// unlock cache, the keychain or agentcred (see `exec --sandbox`)
    #[arg(long)]
    sandbox: bool,
    /// exec brokers its credentials (as exec --broker): it gets placeholders, never values
    #[arg(long)]
    broker: bool,

    /// Replace an existing agent
    #[arg(long)]
    force: bool,
}

/// Delete an agent (its credentials stay)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent rm mybot")]
struct RmArgs {
    /// Agent name
    name: String,
}

/// List agents
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent list
  agentcred agent list --json | jq -r '.agents[].name'")]
struct ListArgs {
    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

/// Show one agent
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent show mybot --json")]
struct ShowArgs {
    /// Agent name
    name: String,

    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

/// Allow an agent more credentials
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent grant mybot slack-token github-token")]
struct GrantArgs {
    /// Agent name
    name: String,

    /// Credentials to allow
    #[arg(required = true, value_name = "CREDENTIAL")]
    credentials: Vec<String>,
}

/// Take credentials away from an agent
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred agent revoke mybot github-token")]
struct RevokeArgs {
    /// Agent name
    name: String,

    /// Credentials to take away
    #[arg(required = true, value_name = "CREDENTIAL")]
    credentials: Vec<String>,
}

impl AgentArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self.command {
            AgentCommand::Add(args) => args.run(ctx),
            AgentCommand::Rm(args) => args.run(ctx),
            AgentCommand::List(args) => args.run(ctx),
            AgentCommand::Show(args) => args.run(ctx),
            AgentCommand::Grant(args) => args.run(ctx),
            AgentCommand::Revoke(args) => args.run(ctx),
            AgentCommand::Command(args) => args.run(ctx),
        }
    }
}

/// Refuse a credential name the store does not have (exit 4).
fn check_exist(txn: &Txn<'_>, names: &[CredentialName]) -> Result<(), Error> {
    match names.iter().find(|n| txn.entry(n).is_none()) {
        Some(missing) => Err(Error::CredentialNotFound {
            name: missing.to_string(),
        }),
        None => Ok(()),
    }
}

fn not_found(name: &AgentName) -> Error {
    Error::AgentNotFound {
        name: name.to_string(),
    }
}

fn to_strings(names: &[CredentialName]) -> Vec<String> {
    names.iter().map(ToString::to_string).collect()
}

impl AddArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("agent-add");
        let name = AgentName::parse(&self.name)?;
        let allow = parse_names(&self.allow)?;
        ctx.audit.note(|d| {
            d.agent = Some(name.to_string());
            d.credentials = allow.iter().map(CredentialName::as_str).collect();
        });
        let (program, program_sha256, program_name) = match &self.program {
            Some(path) => {
                let pin =
                    crate::exec::program::pin_program(path, std::env::var_os("PATH").as_deref())?;
                let sha = if self.pin_sha256 {
                    Some(crate::exec::program::program_sha256(pin.path.as_ref())?)
                } else {
                    None
                };
                ctx.audit.note(|d| d.program = Some(pin.name.clone()));
                (Some(pin.path), sha, Some(pin.name))
            }
            None => (None, None, None),
        };
        let store = ctx.open_store()?;
        let mut txn = store.begin(ctx.identity()?)?;
        if txn.agent(&name).is_some() && !self.force {
            return Err(Error::AgentExists {
                name: name.to_string(),
            }
            .into());
        }
        check_exist(&txn, &allow)?;
        let summary = format!(
            "agent {name} may receive {}{}",
            if allow.is_empty() {
                "nothing".to_string()
            } else {
                to_strings(&allow).join(", ")
            },
            program
                .as_deref()
                .map_or_else(String::new, |p| format!(", only in {}", escape(p)))
        );
        let agent = Agent {
            allow: allow.iter().map(ToString::to_string).collect(),
            program,
            program_sha256,
            program_name,
            clean_env: self.clean_env,
            mask: self.mask,
            deny_overdue: self.deny_overdue,
            sandbox: self.sandbox,
            broker: self.broker,
            created_at: crate::model::rotation::now(),
            created_by: user_at_host(),
            commands: Default::default(),
            mac: String::new(),
        };
        txn.put_agent(&name, agent);
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!("{summary}");
        Ok(())
    }
}

impl RmArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("agent-rm");
        let name = AgentName::parse(&self.name)?;
        ctx.audit.note(|d| d.agent = Some(name.to_string()));
        let store = ctx.open_store()?;
        let mut txn = store.begin(ctx.identity()?)?;
        let removed = txn.remove_agent(&name).ok_or_else(|| not_found(&name))?;
        ctx.audit
            .note(|d| d.credentials = removed.allow.iter().cloned().collect());
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!("deleted agent {name}");
        Ok(())
    }
}

/// `grant` and `revoke`: change an agent's allowance in one transaction.
fn change_allowance(
    ctx: &Ctx,
    action: &'static str,
    name: &str,
    credentials: &[String],
    grant: bool,
) -> anyhow::Result<()> {
    ctx.audit.begin(action);
    let name = AgentName::parse(name)?;
    let names = parse_names(credentials)?;
    ctx.audit.note(|d| {
        d.agent = Some(name.to_string());
        d.credentials = names.iter().map(CredentialName::as_str).collect();
    });
    let store = ctx.open_store()?;
    let mut txn = store.begin(ctx.identity()?)?;
    if txn.agent(&name).is_none() {
        return Err(not_found(&name).into());
    }
    if grant {
        check_exist(&txn, &names)?;
    }
    let (unchanged, agent) = txn.change_allowance(&name, &names, grant)?;
    let now_allowed = agent.allow.iter().cloned().collect::<Vec<_>>().join(", ");
    if unchanged.len() == names.len() {
        eprintln!(
            "agent {name} {} {}: nothing to change",
            if grant {
                "already has"
            } else {
                "does not have"
            },
            unchanged.join(", ")
        );
        return Ok(());
    }
    ctx.audit.ok()?;
    txn.commit()?;
    if !unchanged.is_empty() {
        eprintln!(
            "agent {name} {} {}",
            if grant { "already had" } else { "did not have" },
            unchanged.join(", ")
        );
    }
    eprintln!(
        "agent {name} may receive {}",
        if now_allowed.is_empty() {
            "nothing"
        } else {
            &now_allowed
        }
    );
    Ok(())
}

impl GrantArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        change_allowance(ctx, "agent-grant", &self.name, &self.credentials, true)
    }
}

impl RevokeArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        change_allowance(ctx, "agent-revoke", &self.name, &self.credentials, false)
    }
}

/// One agent as `agent list --json` and `agent show --json` print it.
#[derive(Serialize)]
struct AgentJson<'a> {
    name: &'a str,
    allow: &'a BTreeSet<String>,
    program: Option<&'a str>,
    program_sha256: Option<&'a str>,
    clean_env: bool,
    mask: bool,
    deny_overdue: bool,
    sandbox: bool,
    broker: bool,
    created_at: String,
    created_by: &'a str,
    commands: &'a std::collections::BTreeMap<String, crate::manifest::AgentCommand>,
}

impl<'a> AgentJson<'a> {
    fn new(name: &'a str, agent: &'a Agent) -> Self {
        AgentJson {
            name,
            allow: &agent.allow,
            program: agent.program.as_deref(),
            program_sha256: agent.program_sha256.as_deref(),
            clean_env: agent.clean_env,
            mask: agent.mask,
            deny_overdue: agent.deny_overdue,
            sandbox: agent.sandbox,
            broker: agent.broker,
            created_at: output::rfc3339(agent.created_at),
            created_by: &agent.created_by,
            commands: &agent.commands,
        }
    }
}

/// The policy flags that are set, for people: `clean-env, mask`, or `-`.
fn policy_text(agent: &Agent) -> String {
    let flags: Vec<&str> = [
        (agent.clean_env, "clean-env"),
        (agent.mask, "mask"),
        (agent.deny_overdue, "deny-overdue"),
        (agent.sandbox, "sandbox"),
        (agent.broker, "broker"),
    ]
    .into_iter()
    .filter_map(|(on, text)| on.then_some(text))
    .collect();
    if flags.is_empty() {
        "-".into()
    } else {
        flags.join(", ")
    }
}

fn allow_text(agent: &Agent) -> String {
    if agent.allow.is_empty() {
        "-".into()
    } else {
        agent
            .allow
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl ListArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let (manifest, verified) = load_agents(ctx)?;
        let mut out = std::io::stdout().lock();
        if self.json {
            #[derive(Serialize)]
            struct ListJson<'a> {
                verified: bool,
                agents: Vec<AgentJson<'a>>,
            }
            let agents = manifest
                .agents
                .iter()
                .map(|(name, agent)| AgentJson::new(name, agent))
                .collect();
            serde_json::to_writer_pretty(&mut out, &ListJson { verified, agents })?;
            writeln!(out)?;
        } else if manifest.agents.is_empty() {
            eprintln!("no agents yet: `agentcred agent add NAME --allow CREDENTIAL,...` makes one");
        } else {
            let rows = || {
                manifest.agents.iter().map(|(name, agent)| {
                    [
                        escape(name),
                        allow_text(agent),
                        agent.program.as_deref().map_or("-".into(), escape),
                        policy_text(agent),
                    ]
                })
            };
            output::table(&mut out, &["NAME", "ALLOW", "PROGRAM", "POLICY"], rows)?;
        }
        out.flush()?;
        Ok(())
    }
}

impl ShowArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let name = AgentName::parse(&self.name)?;
        let (manifest, verified) = load_agents(ctx)?;
        show(&manifest, verified, &name, self.json)
    }
}

fn show(manifest: &Manifest, verified: bool, name: &AgentName, json: bool) -> anyhow::Result<()> {
    let agent = manifest.agent(name).ok_or_else(|| not_found(name))?;
    let mut out = std::io::stdout().lock();
    if json {
        #[derive(Serialize)]
        struct ShowJson<'a> {
            #[serde(flatten)]
            agent: AgentJson<'a>,
            verified: bool,
        }
        serde_json::to_writer_pretty(
            &mut out,
            &ShowJson {
                agent: AgentJson::new(name.as_str(), agent),
                verified,
            },
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let yes_no = |on: bool| if on { "yes" } else { "no" }.to_string();
    let now = crate::model::rotation::now();
    let lines = [
        ("name", name.to_string()),
        ("allow", allow_text(agent)),
        (
            "program",
            agent.program.as_deref().map_or("any".into(), escape),
        ),
        (
            "program sha256",
            agent.program_sha256.clone().unwrap_or_else(|| "-".into()),
        ),
        ("clean env", yes_no(agent.clean_env)),
        ("mask", yes_no(agent.mask)),
        ("deny overdue", yes_no(agent.deny_overdue)),
        ("sandbox", yes_no(agent.sandbox)),
        ("broker", yes_no(agent.broker)),
        (
            "created",
            format!(
                "{} ({}) by {}",
                output::date(agent.created_at),
                output::relative(agent.created_at, now),
                escape(&agent.created_by)
            ),
        ),
    ];
    for (key, value) in lines {
        writeln!(out, "{:<16}{value}", format!("{key}:"))?;
    }
    for (command, declared) in &agent.commands {
        let mut line = escape(&declared.program);
        for arg in &declared.args {
            line.push(' ');
            line.push_str(&escape(arg));
        }
        if declared.extra_args {
            line.push_str(" [ARGS...]");
        }
        if declared.read_only {
            line.push_str(" (read-only)");
        }
        writeln!(out, "{:<16}{command}: {line}", "command:")?;
    }
    Ok(())
}
