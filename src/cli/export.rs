//! `agentcred export`: print values for tools that insist on a file.

use std::io::Write;

use clap::{Args, ValueEnum};
use secrecy::ExposeSecret;

use crate::cli::context::Ctx;
use crate::envfile;
use crate::error::Error;
use crate::model::credential::{AgentName, CredentialName};
use crate::policy::{self, Chosen, ExecPolicy, Names, Rule};

use super::parse_selection;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// KEY='value' lines
    Dotenv,
    /// One JSON object, {"KEY": "value"}
    Json,
    /// export KEY='value' lines, safe to eval in any POSIX shell
    Shell,
}

/// Print credentials' values as .env, JSON or shell (prefer `exec`)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred export --only openai-api-key --format shell
  agentcred export --agent mybot --format json
  agentcred export --format dotenv > .env.local   # writes secrets to a file: prefer exec")]
pub struct ExportArgs {
    /// Export only these credentials (comma-separated or repeated)
    #[arg(long, value_name = "NAME,...")]
    only: Vec<String>,

    /// Export this agent's credentials (--only may narrow them)
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value = "dotenv")]
    format: Format,
}

impl ExportArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("export");
        let only = parse_selection(&self.only)?;
        let agent = self.agent.as_deref().map(AgentName::parse).transpose()?;
        ctx.audit
            .note(|d| d.agent = agent.as_ref().map(ToString::to_string));
        let store = ctx.open_store()?;
        // An agent's grants are policy: a rolled-back store could bring back a revoked one.
        let reader = if agent.is_some() {
            store.reader_for_exec(ctx.identity()?)?
        } else {
            store.reader_of_every(ctx.identity()?)?
        };
        if agent.is_none() && reader.defaults()?.require_agent {
            return Err(Error::AgentRequired {
                program: "export".into(),
            }
            .into());
        }
        // Every credential: the reader's vector, read with the manifest (not one search of
        // it per name, quadratic in a store of 10,000); each has a slot for its value.
        let mut read: Vec<crate::store::Slot> = if let Some(name) = agent {
            let found = reader.agent(&name)?.ok_or_else(|| Error::AgentNotFound {
                name: name.to_string(),
            })?;
            let chosen = Chosen {
                name,
                agent: found,
                rule: Rule::Flag,
            };
            match policy::select(only, Some(chosen), ExecPolicy::default())?.names {
                Names::These(names) => entries_of(&reader, names)?,
                Names::Every => unreachable!("an agent always names its credentials"),
            }
        } else if only.is_empty() {
            reader.every_credential()?
        } else {
            entries_of(&reader, only)?
        };
        ctx.audit.note(|d| {
            d.credentials = read.iter().map(|(name, _, _)| name.to_string()).collect();
        });
        // exec gives a file credential's variable a path, never the contents: a variable
        // holding the whole key file would be a different contract.
        let mut skipped = Vec::new();
        read.retain(|(name, entry, _)| {
            let file = entry.kind == crate::model::credential::Kind::File;
            if file {
                skipped.push(name.to_string());
            }
            !file
        });
        for (name, entry, slot) in &mut read {
            *slot = Some(reader.value(name, entry)?);
        }
        // In the order they are printed; two credentials for one variable are refused,
        // as exec refuses them (one would silently replace the other).
        read.sort_by(|a, b| a.1.env.cmp(&b.1.env));
        if let Some(pair) = read.windows(2).find(|pair| pair[0].1.env == pair[1].1.env) {
            return Err(Error::DuplicateEnv {
                first: pair[0].0.to_string(),
                second: pair[1].0.to_string(),
                env: pair[0].1.env.to_string(),
            }
            .into());
        }
        // An oauth2 credential's variable holds an access token, as with exec: obtained
        // with the store unlocked (a request takes time, and a rotated refresh token is
        // written back in a transaction of its own). The value cache is written only once
        // the command has succeeded: a refused refresh leaves the store as it was.
        let store_id = reader.store_id().to_owned();
        let (notes, cache) = reader.hand_back();
        for note in notes {
            store.note(&note);
        }
        let tokens = crate::oauth::TokenCache::new(&store, ctx.identity()?, &store_id);
        for (name, entry, slot) in &mut read {
            if entry.kind == crate::model::credential::Kind::Oauth2
                && let Some(secret) = slot
            {
                *slot = Some(crate::oauth::access_token(
                    &tokens,
                    name,
                    entry,
                    secret,
                    ctx.verbose,
                )?);
            }
        }
        // Each value as text, borrowed from its slot.
        let mut lines = Vec::with_capacity(read.len());
        for (name, entry, slot) in &read {
            let value = slot.as_ref().map_or(&[][..], |v| v.expose_secret());
            let text = std::str::from_utf8(value).map_err(|_| Error::NotEnvSafe {
                name: name.to_string(),
                reason: "it is not UTF-8 text, which this format cannot carry".into(),
            })?;
            lines.push((entry.env.as_str(), name, text));
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        match self.format {
            Format::Json => {
                let map = JsonObject(&lines);
                text.push_str(&serde_json::to_string_pretty(&map)?);
                text.push('\n');
            }
            Format::Dotenv | Format::Shell => {
                for (key, name, value) in &lines {
                    if !envfile::shell_safe(value) {
                        return Err(Error::NotEnvSafe {
                            name: name.to_string(),
                            reason: "it contains a NUL byte, which a shell variable cannot hold (use --format json)".into(),
                        }
                        .into());
                    }
                    text.push_str(&match self.format {
                        Format::Shell => envfile::shell_line(key, value),
                        _ => envfile::dotenv_line(key, value),
                    });
                }
            }
        }
        drop(lines);
        ctx.audit.ok()?;
        for note in cache.write() {
            store.note(&note);
        }
        if !skipped.is_empty() {
            eprintln!(
                "note: skipped file credential{} {}: exec gives programs a path to a private file; `agentcred get NAME > FILE` writes one",
                if skipped.len() == 1 { "" } else { "s" },
                skipped.join(", ")
            );
        }
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

/// These credentials' entries, each with an empty slot for its value.
fn entries_of(
    reader: &crate::store::Reader<'_>,
    names: Vec<CredentialName>,
) -> crate::error::Result<Vec<crate::store::Slot>> {
    names
        .into_iter()
        .map(|name| reader.entry(&name).map(|entry| (name, entry, None)))
        .collect()
}

/// `--format json`'s object: the variables in order, written without a map's copy.
struct JsonObject<'a>(&'a [(&'a str, &'a CredentialName, &'a str)]);

impl serde::Serialize for JsonObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, _, value)| (key, value)))
    }
}
