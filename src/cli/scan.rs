//! `agentcred scan`: find stored values (and their encoded forms) in files.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretSlice};
use serde::Serialize;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::mask::{self, Patterns};
use crate::model::credential::CredentialName;
use crate::scan::{self, Scanned, Visit};
use crate::util::output::escape;

/// Find stored values in files: `file:line: NAME`, never the value (exit 1 when found)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred scan                        # the current directory, .gitignore respected
  agentcred scan src/ deploy/.env
  kubectl logs deploy/bot | agentcred scan -
  agentcred scan --mark-compromised     # what was found becomes due for rotation now

Each value is looked for as itself, in base64 (standard and URL-safe, padded or not, also
inside a longer base64 text) and percent-encoded. Values shorter than 8 bytes are not looked
for. Hidden files are searched, .git is not; binary files (a NUL byte in the first 8 KiB)
are skipped. Exit status: 0 when nothing was found, 1 when something was.")]
pub struct ScanArgs {
    /// Files or directories to search, or - for stdin [default: .]
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Mark every credential found due for rotation now, recording where it was found
    #[arg(long)]
    mark_compromised: bool,

    /// Also search files excluded by .gitignore, .ignore and .git/info/exclude
    #[arg(long)]
    no_ignore: bool,

    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    path: &'a str,
    line: u64,
    name: &'a str,
}

#[derive(Serialize)]
struct ScanJson<'a> {
    findings: Vec<FindingJson<'a>>,
    files_scanned: u64,
    marked_compromised: Vec<&'a str>,
}

/// Each stored credential, with the hash of the value that was looked for.
struct Looked {
    name: CredentialName,
    sha256: Option<String>,
}

impl ScanArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let roots = if self.paths.is_empty() {
            vec![PathBuf::from(".")]
        } else {
            self.paths
        };
        for root in roots.iter().filter(|r| r.as_os_str() != "-") {
            std::fs::symlink_metadata(root).map_err(|e| {
                Error::Usage(format!(
                    "cannot scan {}: {e}",
                    escape(&root.to_string_lossy())
                ))
            })?;
        }
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        let (patterns, looked) = {
            // Read like `export` reads: the manifest in pieces, each entry without its
            // history, description and MAC (10,000 credentials: 9 MiB, not 20).
            let reader = store.reader_of_values(identity)?;
            // Collected in place into the reader's vector, each entry dropped once its
            // value is read; then the room the entries took is given back.
            let mut found: Vec<(Looked, SecretSlice<u8>)> = reader
                .every_credential()?
                .into_iter()
                .map(|(name, mut entry, _)| {
                    let value = reader.value(&name, &entry)?;
                    let sha256 = entry.sha256.take();
                    Ok((Looked { name, sha256 }, value))
                })
                .collect::<crate::error::Result<_>>()?;
            found.shrink_to_fit();
            drop(reader);
            let later = Patterns::build_later(
                found
                    .iter()
                    .map(|(looked, value)| (looked.name.to_string(), value.expose_secret())),
            )?;
            for name in &later.too_short {
                eprintln!(
                    "note: not looking for {name}: its value is shorter than {} bytes",
                    mask::MIN_LEN
                );
            }
            // The search holds its own copies: ours go before its table is made.
            let looked: Vec<Looked> = found.into_iter().map(|(looked, _)| looked).collect();
            (later.patterns.map(mask::Unready::finish), looked)
        };
        let Some(patterns) = patterns else {
            eprintln!("note: no stored value to look for");
            return Ok(());
        };
        let labels = patterns.labels();

        let stdout = io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        // (as shown to people, escaped; the real name, for JSON; line; label)
        let mut findings: Vec<(String, String, u64, usize)> = Vec::new();
        let mut files_scanned = 0u64;
        let mut ignored: Vec<String> = Vec::new();
        let mut scanner = scan::Scanner::new(&patterns);
        let mut scan_one = |shown: String,
                            real: String,
                            source: &mut dyn io::Read,
                            out: &mut BufWriter<io::StdoutLock<'_>>|
         -> io::Result<()> {
            match scanner.scan(source) {
                Ok(Scanned::Text(found)) => {
                    files_scanned += 1;
                    for (line, label) in found {
                        if !self.json {
                            writeln!(out, "{shown}:{line}: {}", &labels[label])?;
                        }
                        findings.push((shown.clone(), real.clone(), line, label));
                    }
                }
                Ok(Scanned::Binary) => {
                    if ctx.verbose {
                        eprintln!("agentcred: skipping binary file {shown}");
                    }
                }
                Err(e) => eprintln!("warning: cannot read {shown}: {e}"),
            }
            Ok(())
        };
        for root in &roots {
            if root.as_os_str() == "-" {
                scan_one(
                    "<stdin>".into(),
                    "-".into(),
                    &mut io::stdin().lock(),
                    &mut out,
                )?;
                continue;
            }
            let mut failed = None;
            scan::walk(std::slice::from_ref(root), self.no_ignore, |visit| {
                if failed.is_some() {
                    return;
                }
                match visit {
                    Visit::File { path, shown } => match std::fs::File::open(&path) {
                        Ok(mut file) => {
                            let real = path
                                .strip_prefix(".")
                                .unwrap_or(&path)
                                .to_string_lossy()
                                .into_owned();
                            if let Err(e) = scan_one(shown, real, &mut file, &mut out) {
                                failed = Some(e);
                            }
                        }
                        Err(e) => eprintln!("warning: cannot read {shown}: {e}"),
                    },
                    Visit::Error(message) => eprintln!("warning: {message}"),
                    Visit::Ignored { shown } => ignored.push(shown),
                }
            });
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        out.flush()?;
        drop(out);
        // A clean result says what it covered, and what .gitignore kept out of it.
        let mut summary = format!(
            "{}searched {files_scanned} file{}",
            if findings.is_empty() {
                "nothing found: "
            } else {
                ""
            },
            if files_scanned == 1 { "" } else { "s" }
        );
        if !ignored.is_empty() {
            const SHOWN: usize = 5;
            let more = ignored.len().saturating_sub(SHOWN);
            summary.push_str(&format!(
                "; not searched, ignored by .gitignore or the like: {}{} (--no-ignore searches them)",
                ignored[..ignored.len().min(SHOWN)].join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ));
        }
        eprintln!("{summary}");

        let mut places: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (shown, _, line, label) in &findings {
            places
                .entry(*label)
                .or_default()
                .push(format!("{shown}:{line}"));
        }
        let mut marked = Vec::new();
        if self.mark_compromised && !places.is_empty() {
            marked = mark_compromised(ctx, &store, &looked, labels, &places)?;
        }
        if self.json {
            let mut stdout = io::stdout().lock();
            serde_json::to_writer_pretty(
                &mut stdout,
                &ScanJson {
                    findings: findings
                        .iter()
                        .map(|(_, path, line, label)| FindingJson {
                            path,
                            line: *line,
                            name: &labels[*label],
                        })
                        .collect(),
                    files_scanned,
                    marked_compromised: marked.iter().map(String::as_str).collect(),
                },
            )?;
            writeln!(stdout)?;
        }
        if findings.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = places.keys().map(|&l| &labels[l]).collect();
        Err(Error::Leaked {
            places: findings.len(),
            names: names.join(", "),
            marked: !marked.is_empty(),
        }
        .into())
    }
}

/// Make each credential found due now, with a `compromised` event saying where it was
/// found. A credential whose value changed since it was looked for (rotated meanwhile) is
/// left alone: the leaked value is no longer the stored one.
fn mark_compromised(
    ctx: &Ctx,
    store: &crate::store::Store,
    looked: &[Looked],
    labels: &mask::Labels,
    places: &BTreeMap<usize, Vec<String>>,
) -> anyhow::Result<Vec<String>> {
    ctx.audit.begin("scan-mark-compromised");
    ctx.audit.note(|d| {
        d.credentials = places.keys().map(|&l| &labels[l]).collect();
    });
    let mut txn = store.begin(ctx.identity()?)?;
    let now = crate::model::rotation::now();
    let mut marked = Vec::new();
    for (&label, where_found) in places {
        let name = &labels[label];
        let Some(before) = looked.iter().find(|l| l.name.as_str() == name) else {
            continue;
        };
        let Some(entry) = txn.entry(&before.name) else {
            eprintln!("note: {name} was removed while scanning; not marked");
            continue;
        };
        if entry.sha256 != before.sha256 {
            eprintln!("note: {name} was rotated while scanning; not marked");
            continue;
        }
        let mut reason = format!(
            "found by scan in {}",
            where_found
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        if where_found.len() > 3 {
            reason.push_str(&format!(" and {} more", where_found.len() - 3));
        }
        txn.mark_due_now(&before.name, now, "compromised", Some(reason))?;
        marked.push(name.to_string());
    }
    if !marked.is_empty() {
        ctx.audit.note(|d| d.credentials = marked.iter().collect());
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!("marked due now: {}", marked.join(", "));
    }
    Ok(marked)
}
