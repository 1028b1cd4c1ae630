//! `agentcred exec`: run a program with credentials in its environment.

use std::ffi::OsString;

use clap::Args;

use crate::context::Ctx;
use crate::credential::{CredentialName, Kind};
use crate::error::Error;
use crate::exec::{self, ExecPlan, Injection};

use super::parse_names;

/// Run a program with credentials injected as environment variables
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred exec -- python bot.py
  agentcred exec --only openai-api-key -- ./mybot --verbose
  agentcred exec --clean-env -- env
  agentcred exec --mask -- ./agent.sh 2>&1 | tee transcript.log

A file credential (add --kind file) is written to a private file while the program runs;
its variable holds the path. With file credentials or --mask, agentcred runs the program
as a child, forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 and SIGWINCH, and exits
with its status; otherwise it replaces itself with the program.")]
pub struct ExecArgs {
    /// Inject only these credentials (comma-separated or repeated)
    #[arg(long, value_name = "NAME,...")]
    only: Vec<String>,

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
        let only = parse_names(&self.only)?;
        let store = ctx.open_store()?;
        let reader = store.reader(ctx.identity()?)?;
        let selected: Vec<(CredentialName, crate::manifest::Entry)> = if only.is_empty() {
            let manifest = reader.manifest()?;
            manifest
                .credentials
                .into_iter()
                .filter_map(|(name, entry)| CredentialName::parse(&name).ok().map(|n| (n, entry)))
                .collect()
        } else {
            only.into_iter()
                .map(|name| reader.entry(&name).map(|entry| (name, entry)))
                .collect::<Result<_, _>>()?
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
            crate::rotation::now(),
            self.deny_overdue,
        )
        .map_err(|e| {
            let program = self.command.first().map(|p| p.to_string_lossy());
            anyhow::Error::from(e).context(format!(
                "not starting {}",
                crate::output::escape(program.as_deref().unwrap_or("the program"))
            ))
        })?;
        for warning in overdue {
            eprintln!("{warning}");
        }
        let mut injections = Vec::with_capacity(selected.len());
        for (name, entry) in selected {
            let injection = Injection {
                value: reader.value(&name, &entry)?,
                name,
                env: entry.env,
                kind: entry.kind,
            };
            exec::check_injection(&injection)?;
            injections.push(injection);
        }
        drop(reader);
        if ctx.verbose {
            let names: Vec<String> = injections
                .iter()
                .map(|i| match i.kind {
                    Kind::Secret => format!("{} as {}", i.name, i.env),
                    Kind::File => format!("{} as a file in {}", i.name, i.env),
                })
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
        let mut command = self.command.into_iter();
        let program = command
            .next()
            .ok_or_else(|| anyhow::anyhow!("no command given"))?;
        let plan = ExecPlan {
            program,
            args: command.collect(),
            injections,
            clean_env: self.clean_env,
            mask: self.mask,
        };
        let code = exec::run(plan, &ctx.core_limit, ctx.verbose)?;
        // Spawn mode: the program has ended and its files are gone; end with its status.
        std::process::exit(code)
    }
}
