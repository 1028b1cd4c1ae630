//! `agentcred audit`: show the audit log, or verify its hash chain.

use std::io::Write;

use clap::Args;
use jiff::Timestamp;

use crate::audit::{self, Event};
use crate::cli::context::Ctx;
use crate::model::credential::AgentName;
use crate::util::output::{self, escape};

use super::add::parse_timestamp;

/// Show the audit log of secret reads and changes, or verify its hash chain
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred audit --since 2026-05-01 --agent mybot
  agentcred audit --json | jq '.[] | select(.outcome != \"ok\")'
  agentcred audit --verify")]
pub struct AuditArgs {
    /// Only events at or after this date (2027-01-31 or RFC 3339)
    #[arg(long, value_name = "DATE", value_parser = parse_timestamp)]
    since: Option<Timestamp>,

    /// Only events of this agent
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,

    /// Check the hash chain: exit 6 naming the first line that breaks it
    #[arg(long, conflicts_with_all = ["since", "agent"])]
    verify: bool,

    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

impl AuditArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let agent = self.agent.as_deref().map(AgentName::parse).transpose()?;
        let store = ctx.open_store()?;
        if self.verify {
            return verify(store.root(), self.json);
        }
        let reader = audit::open_for_reading(store.root())?;
        let wanted = |event: &Event| {
            self.since
                .is_none_or(|since| event.at().is_some_and(|at| at >= since))
                && agent
                    .as_ref()
                    .is_none_or(|a| event.agent.as_deref() == Some(a.as_str()))
        };
        let warn = |scan: Option<audit::Scan>| {
            if let Some(broken) = scan.and_then(|s| s.broken) {
                eprintln!("warning: {broken} (see `agentcred audit --verify`)");
            }
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if self.json {
            // Each event is written as it is read: an `exec` of every one of 10,000
            // credentials names them all in its line (90 kB), and a log of such lines is
            // not held whole. A chain break is said after the events, once it is known.
            let mut json = serde_json::Serializer::pretty(&mut out);
            let mut events = serde::Serializer::serialize_seq(&mut json, None)?;
            let scan = match reader {
                Some(reader) => Some(audit::scan(reader, |event| {
                    if wanted(&event) {
                        serde::ser::SerializeSeq::serialize_element(&mut events, &event).map_err(
                            |e| crate::error::Error::io("cannot write the output", e.into()),
                        )?;
                    }
                    Ok(())
                })?),
                None => None,
            };
            serde::ser::SerializeSeq::end(events)?;
            writeln!(out)?;
            out.flush()?;
            warn(scan);
            return Ok(());
        }
        // The table keeps each event's cells, not the event: its credentials cell shows
        // 40 characters of the names.
        let mut rows: Vec<([String; 9], String)> = Vec::new();
        let mut requests = false;
        let scan = match reader {
            Some(reader) => Some(audit::scan(reader, |event| {
                if wanted(&event) {
                    requests |= event.request.is_some();
                    rows.push((row(&event), request_cell(&event)));
                }
                Ok(())
            })?),
            None => None,
        };
        warn(scan);
        if rows.is_empty() {
            eprintln!(
                "no audit events{}",
                if self.since.is_some() || agent.is_some() {
                    " match"
                } else {
                    " yet"
                }
            );
        } else {
            // The REQUEST column only when the log shows brokered requests: most logs
            // have none, and their table stays as narrow as before.
            let mut header = vec![
                "SEQ",
                "TIME",
                "ACTION",
                "OUTCOME",
                "AGENT",
                "PROGRAM",
                "CREDENTIALS",
                "USER",
                "PID",
            ];
            if requests {
                header.push("REQUEST");
            }
            output::table(&mut out, &header, || {
                rows.iter().map(move |(cells, request)| {
                    let mut cells = cells.to_vec();
                    if requests {
                        cells.push(request.clone());
                    }
                    cells
                })
            })?;
        }
        out.flush()?;
        Ok(())
    }
}

fn row(event: &Event) -> [String; 9] {
    let or_dash = |text: Option<&str>| text.map_or_else(|| "-".to_string(), escape);
    [
        event.seq.to_string(),
        event
            .at()
            .map_or_else(|| escape(&event.time), output::rfc3339),
        escape(&event.action),
        escape(&event.outcome),
        or_dash(event.agent.as_deref()),
        or_dash(event.program.as_deref()),
        if event.credentials.is_empty() {
            "-".into()
        } else {
            credentials_cell(&event.credentials)
        },
        escape(&event.user),
        event.pid.to_string(),
    ]
}

/// The REQUEST column: `GET api.openai.com/v1/models 200` (the path never has its query;
/// the decision, `brokered` or `blocked`, is the event's OUTCOME), `-` for other events.
fn request_cell(event: &Event) -> String {
    event.request.as_ref().map_or_else(
        || "-".to_string(),
        |r| escape(&format!("{} {}{} {}", r.method, r.host, r.path, r.status)),
    )
}

/// The credentials column: names up to about 40 characters, then how many more, so one
/// `import` of a thousand keys stays one readable row (`--json` has every name).
fn credentials_cell(names: &[String]) -> String {
    const WIDTH: usize = 40;
    let mut cell = String::new();
    for (shown, name) in names.iter().enumerate() {
        let name = escape(name);
        if !cell.is_empty() && cell.len() + 1 + name.len() > WIDTH {
            return format!("{cell},+{} more", names.len() - shown);
        }
        if !cell.is_empty() {
            cell.push(',');
        }
        cell.push_str(&name);
    }
    cell
}

fn verify(root: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let scan = audit::verify_log(root)?;
    if let Some(broken) = scan.broken {
        return Err(broken.into());
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "intact": true, "events": scan.lines, "head": scan.head }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} event{}, chain intact; head {}",
            audit::FILE_NAME,
            scan.lines,
            if scan.lines == 1 { "" } else { "s" },
            scan.head
        )?;
    }
    Ok(())
}
