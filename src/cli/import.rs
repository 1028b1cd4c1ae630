//! `agentcred import`: store every variable of a `.env` file, in one transaction.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;

use crate::cli::context::Ctx;
use crate::envfile;
use crate::error::Error;
use crate::model::credential::{BackendKind, CredentialName, EnvVarName, Kind};
use crate::store::NewEntry;
use crate::util::output::first_names;

use super::add::parse_timestamp;

/// Import a .env file (KEY=value lines; comments, quotes and `export` allowed)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred import .env && shred -u .env
  agentcred import legacy.env --rotated-at 2026-03-01")]
pub struct ImportArgs {
    /// The .env file, or - for stdin
    file: PathBuf,

    /// When these keys were last rotated, if before now
    #[arg(long, value_name = "DATE", value_parser = parse_timestamp)]
    rotated_at: Option<Timestamp>,

    /// Replace credentials that already exist
    #[arg(long)]
    force: bool,
}

impl ImportArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("import");
        // A .env file is small; a bound keeps `import /dev/zero` from eating the memory.
        const MAX_FILE: u64 = 64 * 1024 * 1024;
        let mut text = zeroize::Zeroizing::new(String::new());
        if self.file.as_os_str() == "-" {
            std::io::stdin()
                .take(MAX_FILE + 1)
                .read_to_string(&mut text)
                .map_err(|e| Error::io("cannot read stdin", e))?;
        } else {
            std::fs::File::open(&self.file)
                .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
                .map_err(|e| Error::io(format!("cannot read {}", self.file.display()), e))?;
        }
        if text.len() as u64 > MAX_FILE {
            return Err(Error::Usage("the .env file is larger than 64 MiB".into()).into());
        }
        // Errors name the file and line; `-` is stdin. A UTF-8 byte order mark (Windows
        // editors write one) is not part of the first name.
        let file = if self.file.as_os_str() == "-" {
            "stdin".to_string()
        } else {
            crate::util::output::escape(&self.file.display().to_string())
        };
        let pairs = envfile::parse(text.strip_prefix('\u{feff}').unwrap_or(&text))
            .map_err(|e| anyhow::Error::from(e).context(file.clone()))?;
        let mut seen = BTreeSet::new();
        let mut items = Vec::with_capacity(pairs.len());
        let mut empty = Vec::new();
        for pair in pairs {
            let at = format!("{file}, line {}", pair.line);
            // The text before `=` is not echoed unless it is a variable name: on a
            // malformed line it is often the value.
            let env = EnvVarName::parse(&pair.key).map_err(|e| {
                Error::Usage(match e {
                    Error::RefusedEnvVar { var } if var.len() <= 64 => format!(
                        "{at}: {var} cannot be set by agentcred: it changes how programs load or run"
                    ),
                    _ => format!(
                        "{at}: the text before '=' is not a variable name (A-Z, a-z, 0-9, '_', not starting with a digit)"
                    ),
                })
            })?;
            let name = CredentialName::parse(&pair.key).map_err(|_| {
                Error::Usage(format!(
                    "{at}: {env} cannot be a credential name (at most 64 characters, and names are lowercase or all-uppercase)"
                ))
            })?;
            if !seen.insert(name.clone()) {
                return Err(Error::Usage(format!("{at}: {env} is defined twice")).into());
            }
            if pair.value.is_empty() {
                // A placeholder (`EMPTY=`) is not a secret: skip it, say so below.
                empty.push(env.to_string());
                continue;
            }
            // The checks `add` and `exec` make, before anything is stored: a value that no
            // exec could inject would otherwise break every plain exec of the store.
            let too_big = pair.value.len() > super::input::MAX_VALUE;
            let env_problem = crate::exec::check_env_value(&name, Some(&env), &pair.value).err();
            if too_big || env_problem.is_some() {
                let reason = if too_big {
                    "is larger than 16 MiB".to_string()
                } else if pair.value.contains(&0) {
                    "contains a NUL byte, so it cannot be an environment variable".to_string()
                } else {
                    "is larger than 128 KiB, so it cannot be an environment variable".to_string()
                };
                return Err(Error::Usage(format!(
                    "{at}: the value of {env} {reason}; store it with `agentcred add {name} --kind file --from-file FILE`"
                ))
                .into());
            }
            items.push((name, env, pair.value));
        }
        if !empty.is_empty() {
            eprintln!(
                "note: skipped {} empty variable{} in {file}: {}",
                empty.len(),
                if empty.len() == 1 { "" } else { "s" },
                first_names(&empty, None)
            );
        }
        if items.is_empty() {
            return Err(Error::Usage(format!("{file} defines no variables with a value")).into());
        }
        ctx.audit.note(|d| {
            d.credentials = items.iter().map(|(n, ..)| n.as_str()).collect();
        });
        let now = crate::model::rotation::now();
        let rotated_at = self.rotated_at.unwrap_or(now);
        if rotated_at > now {
            return Err(Error::FutureDate {
                flag: "--rotated-at",
            }
            .into());
        }
        let store = ctx.open_store()?;
        let mut txn = store.begin(ctx.identity()?)?;
        if !self.force
            && let Some((name, ..)) = items.iter().find(|(name, ..)| txn.entry(name).is_some())
        {
            return Err(Error::Exists {
                name: name.to_string(),
            }
            .into());
        }
        for (name, env, value) in &items {
            let previous = txn.entry(name);
            let new = NewEntry {
                env: env.clone(),
                kind: Kind::Secret,
                // A replaced credential keeps its backend.
                backend: previous.map_or(BackendKind::Age, |p| p.backend),
                description: previous.and_then(|p| p.description.clone()),
                rotated_at,
                rotate_every: previous.and_then(|p| p.rotate_every),
                due: previous.and_then(|p| p.due),
                oauth2: None,
                upstream: previous.and_then(|p| p.upstream.clone()),
            };
            // The date given survives a later `rotate` in the history.
            let reason = (rotated_at < now).then(|| {
                format!(
                    "last rotated {} (--rotated-at)",
                    crate::util::output::date(rotated_at)
                )
            });
            txn.put_value(name, value, new, now, "imported", reason)?;
        }
        ctx.audit.ok()?;
        txn.commit()?;
        let names: Vec<String> = items.iter().map(|(n, ..)| n.to_string()).collect();
        eprintln!(
            "imported {} credential{}: {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            first_names(&names, Some("`agentcred list` shows them"))
        );
        Ok(())
    }
}
