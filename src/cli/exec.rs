//! `agentcred exec`: run a program with credentials in its environment.

use std::ffi::OsString;

use clap::Args;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::exec::plan::{self, Deps, Request};
use crate::exec::{self};

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

    /// Run the program in a sandbox: it and everything it starts cannot read the store,
    /// the identity or agentcred's config, use the unlock cache, reach the keychain, or
    /// read agentcred's memory; refuses (exit 1) where the system cannot enforce that
    #[arg(long)]
    sandbox: bool,

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
        // A mistyped flag lands where the program goes; say so, with the closest flag,
        // instead of "command not found" (the use case refuses it too, without a guess).
        if let Some(program) = self.command.first()
            && program.as_encoded_bytes().starts_with(b"-")
        {
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
            return Err(Error::UnknownExecOption {
                option: crate::util::output::escape(flag),
                guess,
            }
            .into());
        }
        let request = Request {
            command: self.command,
            only: self.only,
            agent: self.agent,
            clean_env: self.clean_env,
            deny_overdue: self.deny_overdue,
            mask: self.mask,
            verbose: ctx.verbose,
            broker: self.broker,
            raw: self.raw,
            sandbox: self.sandbox,
        };
        let (plan, cache) = plan::prepare(
            request,
            Deps {
                open_store: &|| ctx.open_store(),
                identity: &|| ctx.identity(),
                audit: &ctx.audit,
                say: &mut |line| eprintln!("{line}"),
            },
        )?;
        ctx.audit.ok()?;
        for note in cache.write() {
            eprintln!("{note}");
        }
        let code = exec::run(plan, &ctx.core_limit, ctx.verbose, &|line| {
            eprintln!("{line}")
        })?;
        // Spawn mode: the program has ended and its files are gone; end with its status.
        std::process::exit(code)
    }
}
