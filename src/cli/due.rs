//! `agentcred due`: what is overdue or due soon, soonest first; `--check` is the CI gate.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::model::rotation::{self, Period, Status};
use crate::util::output;

use super::add::parse_period;
use super::list::{CredentialJson, load_rows};

/// List credentials overdue or due soon for rotation, soonest first
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred due                   # overdue, and due within the store's window (14d)
  agentcred due --within 30d
  agentcred due --check           # exit 3 when anything is overdue: a CI step or a cron job
  agentcred due --json | jq -r '.credentials[] | \"\\(.name) \\(.due_at)\"'

Needs no passphrase: without an unlocked identity it reads the metadata unverified and
says so on stderr.")]
pub struct DueArgs {
    /// List what is due within DUR (90d, 12w, 6mo, 1y, 36h) [default: the store's window, 14d]
    #[arg(long, value_name = "DUR", value_parser = parse_period)]
    within: Option<Period>,

    /// One JSON document on stdout
    #[arg(long)]
    json: bool,

    /// Exit 3 when any credential is overdue
    #[arg(long)]
    check: bool,
}

#[derive(Serialize)]
struct DueJson<'a> {
    verified: bool,
    window: String,
    overdue: usize,
    due_soon: usize,
    credentials: Vec<CredentialJson<'a>>,
}

impl DueArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        // Read as `list` reads (a few bytes a credential); only those due are kept whole.
        let (rows, manifest, verified) = load_rows(ctx)?;
        let now = rotation::now();
        let defaults = &manifest.defaults;
        let window = self.within.unwrap_or(defaults.due_soon_window);
        let mut kept = Vec::new();
        for row in rows.iter() {
            let entry = rows.entry(row)?;
            let Some(at) = entry.due_at(defaults) else {
                continue;
            };
            let status = rotation::status(Some(at), now, window);
            if matches!(status, Status::Overdue | Status::DueSoon) {
                kept.push((rows.name(row).to_string(), entry, at, status));
            }
        }
        drop(rows);
        let mut due: Vec<_> = kept
            .iter()
            .map(|(name, entry, at, status)| (name.as_str(), entry, *at, *status))
            .collect();
        due.sort_by(|a, b| (a.2, a.0).cmp(&(b.2, b.0)));
        let overdue: Vec<(&str, jiff::Timestamp)> = due
            .iter()
            .filter(|d| d.3 == Status::Overdue)
            .map(|d| (d.0, d.2))
            .collect();
        let mut out = std::io::stdout().lock();
        if self.json {
            let credentials = due
                .iter()
                .map(|&(name, entry, _, status)| {
                    // The status against the window asked for, not the store's.
                    let mut row = CredentialJson::new(name, entry, defaults, now);
                    row.status = status.as_str();
                    row
                })
                .collect();
            serde_json::to_writer_pretty(
                &mut out,
                &DueJson {
                    verified,
                    window: window.to_string(),
                    overdue: overdue.len(),
                    due_soon: due.len() - overdue.len(),
                    credentials,
                },
            )?;
            writeln!(out)?;
        } else if due.is_empty() {
            writeln!(
                std::io::stderr(),
                "nothing is overdue or due within {window}"
            )?;
        } else {
            let rows = || {
                due.iter().map(|&(name, entry, at, status)| {
                    [
                        name.to_string(),
                        entry.env.to_string(),
                        output::relative(entry.rotated_at, now),
                        format!("{} ({})", output::date(at), output::relative(at, now)),
                        status.as_str().to_string(),
                    ]
                })
            };
            output::table(&mut out, &["NAME", "ENV", "ROTATED", "DUE", "STATUS"], rows)?;
        }
        out.flush()?;
        if self.check && !overdue.is_empty() {
            return Err(Error::overdue(&overdue, now).into());
        }
        Ok(())
    }
}
