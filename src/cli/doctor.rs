//! `agentcred doctor`: check the store's health; `--reseal` accepts a deliberate hand edit.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::cli::context::Ctx;
use crate::doctor::{self, Finding, Level};
use crate::error::Error;
use crate::util::output::{self, escape};

/// Check the store: permissions, seal, recipients, every secret, leftovers, audit, rotation
#[derive(Debug, Args)]
#[command(
    after_help = "Exits 0 only when the store is healthy; otherwise with the most serious
problem's code (6 integrity, 5 cannot unlock, 4 not found, 3 overdue, 1 other). Each
problem comes with its fix. Warnings (due soon, leftovers) do not make a store unhealthy.

Examples:
  agentcred doctor
  agentcred doctor --json | jq '.findings[] | select(.level != \"ok\")'
  agentcred doctor --reseal          # after a deliberate hand edit of agentcred.toml"
)]
pub struct DoctorArgs {
    /// One JSON document on stdout
    #[arg(long, conflicts_with_all = ["reseal", "trust"])]
    json: bool,

    /// Re-sign the manifest after a deliberate hand edit (shows what changed, then asks)
    #[arg(long, conflicts_with = "trust")]
    reseal: bool,

    /// Trust the store as it is now on this machine (after a deliberate replacement, store
    /// key change or rollback that other commands refuse; shows it, then asks)
    #[arg(long)]
    trust: bool,

    /// With --reseal or --trust: do not ask for confirmation
    #[arg(short, long)]
    yes: bool,
}

#[derive(Serialize)]
struct Json<'a> {
    healthy: bool,
    store: String,
    findings: &'a [Finding],
}

impl DoctorArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        if self.reseal {
            return self.reseal(ctx);
        }
        if self.trust {
            return self.trust(ctx);
        }
        let mut report = doctor::check(
            &ctx.store_dir,
            ctx.identity(),
            crate::cli::context::say_on_stderr(),
        );
        let (works, message, fix) = crate::sandbox::doctor(&ctx.store_dir);
        report.findings.push(Finding {
            check: "sandbox",
            level: if works { Level::Ok } else { Level::Warning },
            message,
            fix,
            exit: crate::exit::Exit::Success,
        });
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if self.json {
            serde_json::to_writer_pretty(
                &mut out,
                &Json {
                    healthy: report.healthy(),
                    store: ctx.store_dir.display().to_string(),
                    findings: &report.findings,
                },
            )?;
            writeln!(out)?;
        } else {
            let color = output::color_stdout();
            for finding in &report.findings {
                let (label, code) = match finding.level {
                    Level::Ok => ("ok", "32"),
                    Level::Warning => ("warning", "33"),
                    Level::Problem => ("PROBLEM", "31"),
                };
                let label = if color {
                    format!("\x1b[{code}m{label:<8}\x1b[0m")
                } else {
                    format!("{label:<8}")
                };
                writeln!(out, "{label} {:<12} {}", finding.check, finding.message)?;
                if let Some(fix) = &finding.fix {
                    writeln!(out, "{:<21} fix: {fix}", "")?;
                }
            }
        }
        out.flush()?;
        let problems = report
            .findings
            .iter()
            .filter(|f| f.level == Level::Problem)
            .count();
        if problems > 0 {
            return Err(Error::Unhealthy {
                problems,
                exit: report.exit(),
            }
            .into());
        }
        Ok(())
    }

    /// Remember the store as it is now as the trusted one on this machine: its id at this
    /// path, its key's fingerprint, its generation. For a deliberate replacement, key change
    /// or rollback that other commands refuse.
    fn trust(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("trust");
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        let (store_id, fingerprint, generation) = store.trust_preview(identity)?;
        eprintln!(
            "Trust the store at {} on this machine from now on?\n  store id:              {store_id}\n  store key fingerprint: {fingerprint}\n  generation:            {generation}",
            ctx.store_dir.display()
        );
        if !self.yes {
            confirm(ctx, "Trust this store?", "trust")?;
        }
        ctx.audit.ok()?;
        crate::store::state::trust(&ctx.store_dir, &store_id, &fingerprint, generation);
        // The audit log as it is now (with this event) is the one to extend.
        crate::audit::reanchor(store.root())?;
        eprintln!("trusted: the next commands compare the store against these");
        Ok(())
    }

    fn reseal(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("reseal");
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        let (txn, changes) = store.begin_reseal(identity)?;
        if changes.seal_matched && !changes.recipients_changed {
            eprintln!("the manifest's seal already matches: nothing to reseal");
            return Ok(());
        }
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "Resealing accepts these changes made outside agentcred:"
        )?;
        for edit in &changes.edits {
            writeln!(err, "  - {edit}")?;
        }
        if changes.edits.is_empty() && !changes.seal_matched {
            writeln!(
                err,
                "  - changes outside any credential or agent entry (header, defaults, or a removed entry)"
            )?;
        }
        if changes.recipients_changed {
            let recipients = store.recipients()?.recipients();
            writeln!(
                err,
                "  - recipients.txt now lists {} recipient(s); new values will be encrypted to:",
                recipients.len()
            )?;
            for r in recipients {
                writeln!(err, "      {}", escape(&r.to_string()))?;
            }
        }
        drop(err);
        let txn = if self.yes {
            txn
        } else {
            // Ask with the store unlocked: a question left unanswered must not block every
            // other agentcred. Then lock again and reseal only if nothing changed meanwhile.
            drop(txn);
            confirm(ctx, "Reseal the store with these changes?", "reseal")?;
            let (txn, again) = store.begin_reseal(identity)?;
            if again != changes {
                anyhow::bail!(
                    "the store changed while you were deciding; nothing was resealed (run doctor --reseal again)"
                );
            }
            txn
        };
        let generation = txn.manifest().generation + 1;
        // The event just before the commit point, once the second read found the same file.
        txn.commit_with(&mut |_, _| {}, &mut || ctx.audit.ok())?;
        eprintln!("resealed the store at generation {generation}");
        Ok(())
    }
}

/// Ask a yes/no question on the terminal; refuse (exit 2) where no one can answer.
fn confirm(ctx: &Ctx, question: &str, what: &str) -> anyhow::Result<()> {
    if !super::input::confirm_destructive(ctx.may_prompt(), question, what)? {
        anyhow::bail!("nothing was changed");
    }
    Ok(())
}
