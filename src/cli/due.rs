//! `agentcred due`: what is overdue or due soon, soonest first; `--check` is the CI gate.

use std::io::Write;

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::manifest::Defaults;
use crate::model::rotation::{self, Period, Status};
use crate::util::output;

use super::add::parse_period;
use super::list::{CredentialJson, Row, Rows, load_rows};

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
    credentials: DueRows<'a>,
}

/// The credentials due, serialized one at a time from `list`'s rows (an entry is rebuilt
/// for each as it is printed, not held for all of them).
struct DueRows<'a> {
    rows: &'a Rows,
    due: &'a [(&'a Row, Timestamp, Status)],
    defaults: &'a Defaults,
    now: Timestamp,
}

impl Serialize for DueRows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a DueRows<'a>, &'a Row, Status);
        impl Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let One(list, row, status) = *self;
                let entry = list.rows.entry(row).map_err(serde::ser::Error::custom)?;
                let mut json =
                    CredentialJson::new(list.rows.name(row), &entry, list.defaults, list.now);
                // The status against the window asked for, not the store's.
                json.status = status.as_str();
                json.serialize(serializer)
            }
        }
        serializer.collect_seq(
            self.due
                .iter()
                .map(|&(row, _, status)| One(self, row, status)),
        )
    }
}

impl DueArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        // Read as `list` reads (a few bytes a credential); those due are kept as
        // references to their rows.
        let (rows, manifest, verified) = load_rows(ctx)?;
        let now = rotation::now();
        let defaults = &manifest.defaults;
        let window = self.within.unwrap_or(defaults.due_soon_window);
        let mut due: Vec<(&Row, Timestamp, Status)> = rows
            .iter()
            .filter_map(|row| {
                let at = rows.due_at(row, defaults)?;
                let status = rotation::status(Some(at), now, window);
                matches!(status, Status::Overdue | Status::DueSoon).then_some((row, at, status))
            })
            .collect();
        due.sort_by(|a, b| (a.1, rows.name(a.0)).cmp(&(b.1, rows.name(b.0))));
        let overdue: Vec<(&str, Timestamp)> = due
            .iter()
            .filter(|d| d.2 == Status::Overdue)
            .map(|d| (rows.name(d.0), d.1))
            .collect();
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(
                &mut out,
                &DueJson {
                    verified,
                    window: window.to_string(),
                    overdue: overdue.len(),
                    due_soon: due.len() - overdue.len(),
                    credentials: DueRows {
                        rows: &rows,
                        due: &due,
                        defaults,
                        now,
                    },
                },
            )?;
            writeln!(out)?;
        } else if due.is_empty() {
            writeln!(
                std::io::stderr(),
                "nothing is overdue or due within {window}"
            )?;
        } else {
            let cells = || {
                due.iter().map(|&(row, at, status)| {
                    [
                        rows.name(row).to_string(),
                        rows.env(row).to_string(),
                        output::relative(Rows::rotated_at(row), now),
                        format!("{} ({})", output::date(at), output::relative(at, now)),
                        status.as_str().to_string(),
                    ]
                })
            };
            output::table(
                &mut out,
                &["NAME", "ENV", "ROTATED", "DUE", "STATUS"],
                cells,
            )?;
        }
        out.flush()?;
        if self.check && !overdue.is_empty() {
            return Err(Error::overdue(&overdue, now).into());
        }
        Ok(())
    }
}
