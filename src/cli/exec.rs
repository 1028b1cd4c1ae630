//! `agentcred exec`: run a program with credentials in its environment.

use std::ffi::OsString;

use clap::Args;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::exec::{self, ExecPlan, Injection};
use crate::model::credential::{CredentialName, Kind};
use crate::oauth;
use crate::policy::{self, ENV_AGENT, ExecPolicy, Names};

use super::parse_names;

/// Run a program with credentials injected as environment variables
#[derive(Debug, Args)]
#[command(
    override_usage = "agentcred exec [OPTIONS] -- <CMD> [ARGS]...",
    after_help = "Which credentials: --only, else --agent, else $AGENTCRED_AGENT, else an agent
named like the program, else every credential. With an agent, --only may only narrow
what it allows.

Examples:
  agentcred exec -- python3 bot.py
  agentcred exec -- mybot                 # the agent named mybot, if there is one
  agentcred exec --agent ci -- ./deploy
  agentcred exec --only openai-api-key -- ./mybot --verbose
  agentcred exec --clean-env -- env
  agentcred exec --mask -- ./agent.sh 2>&1 | tee transcript.log

A file credential (add --kind file) is written to a private file while the program runs;
its variable holds the path. With file credentials or --mask, agentcred runs the program
as a child, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH, and exits
with its status; otherwise it replaces itself with the program."
)]
pub struct ExecArgs {
    /// Inject only these credentials (comma-separated or repeated)
    #[arg(long, value_name = "NAME,...")]
    only: Vec<String>,

    /// Use this agent's credentials and policy [default: $AGENTCRED_AGENT, else an agent
    /// named like the program]
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,

    /// Start from an empty environment plus PATH, HOME, USER, LANG, TERM, TMPDIR
    #[arg(long)]
    clean_env: bool,

    /// Refuse to start the program when a selected credential is overdue (exit 3)
    #[arg(long)]
    deny_overdue: bool,

    /// Replace injected values (and their base64 and URL-encoded forms) in the program's
    /// stdout and stderr with <agentcred:NAME>; a terminal stays a terminal
    #[arg(long)]
    mask: bool,

    /// Broker credentials that have an upstream: the program gets a placeholder and a
    /// local proxy's URL, never the value; the proxy adds the real key toward that
    /// upstream only (a credential without an upstream is refused unless in --raw)
    #[arg(long)]
    broker: bool,

    /// With --broker: inject these credentials' values as usual
    #[arg(long, value_name = "NAME,...")]
    raw: Vec<String>,

    /// The program and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

impl ExecArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("exec");
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("no command given"))?;
        // A mistyped flag lands here as the program; say so instead of "command not found".
        if program.as_encoded_bytes().starts_with(b"-") {
            let typed = program.to_string_lossy();
            let flag = typed.split('=').next().unwrap_or_default();
            let command = <ExecArgs as clap::Args>::augment_args(clap::Command::new("exec"));
            let longs: Vec<String> = command
                .get_arguments()
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .collect();
            let guess = super::closest(flag, longs.iter().map(String::as_str))
                .map(|l| format!(": did you mean {l}?"))
                .unwrap_or_default();
            return Err(Error::Usage(format!(
                "unknown option {} for exec{guess} (the program goes after --; a program named like an option needs ./)",
                crate::util::output::escape(flag)
            ))
            .into());
        }
        ctx.audit.note(|d| {
            d.program = Some(
                crate::exec::program::program_basename(program)
                    .map_or_else(|| program.to_string_lossy().into_owned(), String::from),
            );
        });
        let only = parse_names(&self.only)?;
        ctx.audit
            .note(|d| d.credentials = only.iter().map(ToString::to_string).collect());
        let store = ctx.open_store()?;
        let resolved =
            crate::exec::program::resolve_program(program, std::env::var_os("PATH").as_deref())?;
        let env_agent = std::env::var_os(ENV_AGENT).filter(|v| !v.is_empty());
        ctx.audit.note(|d| {
            d.agent = self
                .agent
                .clone()
                .or_else(|| env_agent.as_ref().map(|v| v.to_string_lossy().into_owned()));
        });
        let reader = store.reader(ctx.identity()?)?;
        let chosen = policy::choose_agent(
            self.agent.as_deref(),
            env_agent.as_deref(),
            program,
            |name| reader.agent(name),
        )?;
        ctx.audit
            .note(|d| d.agent = chosen.as_ref().map(|c| c.name.to_string()));
        let flags = ExecPolicy {
            clean_env: self.clean_env,
            deny_overdue: self.deny_overdue,
            broker: self.broker,
            ..ExecPolicy::default()
        };
        let selection = policy::select(only, chosen, flags)?;
        let selected: Vec<(CredentialName, crate::manifest::Entry)> = match &selection.names {
            Names::Every => reader
                .manifest()?
                .credentials
                .into_iter()
                .filter_map(|(name, entry)| CredentialName::parse(&name).ok().map(|n| (n, entry)))
                .collect(),
            Names::These(names) => names
                .iter()
                .map(|name| reader.entry(name).map(|entry| (name.clone(), entry)))
                .collect::<Result<_, _>>()?,
        };
        ctx.audit.note(|d| {
            d.credentials = selected.iter().map(|(n, _)| n.to_string()).collect();
        });
        // An agent's credentials go only to its pinned program: run the path checked.
        // Otherwise run the file found along PATH, as execvp would have.
        let run_path = match &selection.agent {
            Some(chosen) => policy::check_program(chosen, &resolved)?,
            None => resolved.found,
        };
        let mut targets: std::collections::BTreeMap<&str, &CredentialName> = Default::default();
        for (name, entry) in &selected {
            if let Some(other) = targets.insert(entry.env.as_str(), name) {
                return Err(Error::Usage(format!(
                    "credentials {other} and {name} are both injected as {}; choose one with --only",
                    entry.env
                ))
                .into());
            }
        }
        drop(targets);
        let overdue = exec::overdue_check(
            selected.iter().map(|(name, entry)| (name, entry)),
            &reader.defaults()?,
            crate::model::rotation::now(),
            selection.policy.deny_overdue,
        )
        .map_err(|e| {
            let program = self.command.first().map(|p| p.to_string_lossy());
            anyhow::Error::from(e).context(format!(
                "not starting {}",
                crate::util::output::escape(program.as_deref().unwrap_or("the program"))
            ))
        })?;
        for warning in overdue {
            eprintln!("{warning}");
        }
        let mut values = Vec::with_capacity(selected.len());
        for (name, entry) in selected {
            let value = reader.value(&name, &entry)?;
            values.push((name, entry, value));
        }
        let store_id = reader.store_id().to_owned();
        drop(reader);
        let brokering = selection.policy.broker;
        if !brokering && !self.raw.is_empty() {
            return Err(Error::Usage(
                "--raw goes with --broker (or an agent whose policy brokers)".into(),
            )
            .into());
        }
        let (values, brokered) = if brokering {
            let split = crate::broker::session::split(values, &parse_names(&self.raw)?)?;
            (split.raw, split.brokered)
        } else {
            (values, Vec::new())
        };
        let raw_names: Vec<CredentialName> = if brokering {
            values.iter().map(|(n, _, _)| n.clone()).collect()
        } else {
            Vec::new()
        };
        // oauth2 credentials hold a client secret; the program gets an access token instead.
        // Done with the store unlocked: a token request may take seconds.
        let values = oauth::access_tokens(&store, ctx.identity()?, &store_id, values, ctx.verbose)
            .map_err(|e| not_starting(e.into(), program))?;
        let mut injections = Vec::with_capacity(values.len());
        for (name, entry, value) in values {
            let injection = Injection {
                value,
                name,
                env: entry.env,
                kind: entry.kind,
            };
            exec::check_injection(&injection)?;
            injections.push(injection);
        }
        if ctx.verbose {
            eprintln!("agentcred: {}", selection.explain(program));
            let names: Vec<String> = injections
                .iter()
                .map(|i| match i.kind {
                    Kind::Secret => format!("{} as {}", i.name, i.env),
                    Kind::Oauth2 => format!("{} as an access token in {}", i.name, i.env),
                    Kind::File => format!("{} as a file in {}", i.name, i.env),
                })
                .map(
                    |text| match raw_names.iter().any(|n| text.starts_with(&format!("{n} "))) {
                        true => format!("{text} (raw, not brokered)"),
                        false => text,
                    },
                )
                .collect();
            eprintln!(
                "agentcred: injecting {}",
                if names.is_empty() {
                    "nothing".into()
                } else {
                    names.join(", ")
                }
            );
        }
        let broker = if brokering {
            let session = crate::broker::session::Session::start(
                brokered,
                Some(broker_audit(&store, &selection, program)),
            )?;
            if ctx.verbose {
                for line in &session.summary {
                    eprintln!("agentcred: {line}");
                }
            }
            Some(session)
        } else {
            None
        };
        let plan = ExecPlan {
            program: run_path.into_os_string(),
            argv0: program.clone(),
            args: args.to_vec(),
            injections,
            clean_env: selection.policy.clean_env,
            mask: self.mask || selection.policy.mask,
            agent: selection.agent.map(|chosen| chosen.name),
            broker,
        };
        if ctx.identity()?.unlocked_in_session() {
            eprintln!(
                "warning: your identity is unlocked in this login session's kernel keyring (agentcred unlock), where {} can read it; run `agentcred lock` before running programs you do not trust",
                crate::util::output::escape(&program.to_string_lossy())
            );
        }
        ctx.audit.ok()?;
        let code = exec::run(plan, &ctx.core_limit, ctx.verbose)?;
        // Spawn mode: the program has ended and its files are gone; end with its status.
        std::process::exit(code)
    }
}

/// Say that the program was not started, and why.
fn not_starting(e: anyhow::Error, program: &std::ffi::OsStr) -> anyhow::Error {
    e.context(format!(
        "not starting {}",
        crate::util::output::escape(&program.to_string_lossy())
    ))
}

/// The broker's audit callback: one `broker` event per request, with the agent and the
/// program of this exec; its outcome is the decision (`brokered` or `blocked`).
fn broker_audit(
    store: &crate::store::Store,
    selection: &policy::Selection,
    program: &std::ffi::OsStr,
) -> crate::broker::AuditFn {
    let root = store.root().to_path_buf();
    let agent = selection
        .agent
        .as_ref()
        .map(|chosen| chosen.name.to_string());
    let program = crate::exec::program::program_basename(program).map(String::from);
    Box::new(move |event: crate::broker::AuditEvent| {
        let draft = crate::audit::Draft {
            action: "broker",
            agent: agent.clone(),
            credentials: vec![event.credential],
            program: program.clone(),
            request: Some(crate::audit::Request {
                method: event.method,
                host: event.host,
                path: event.path,
                status: event.status,
                decision: event.decision.as_str().into(),
            }),
        };
        if let Err(e) = crate::audit::append(&root, &draft, event.decision.as_str()) {
            eprintln!("warning: a brokered request was not audited: {e}");
        }
    })
}
