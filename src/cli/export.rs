//! `agentcred export`: print values for tools that insist on a file.

use std::collections::BTreeMap;
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
        // Every credential: their entries from one read of the manifest, not one search
        // of it per name (quadratic in a store of 10,000).
        let mut every = None;
        let names: Vec<CredentialName> = if let Some(name) = agent {
            let found = reader.agent(&name)?.ok_or_else(|| Error::AgentNotFound {
                name: name.to_string(),
            })?;
            let chosen = Chosen {
                name,
                agent: found,
                rule: Rule::Flag,
            };
            match policy::select(only, Some(chosen), ExecPolicy::default())?.names {
                Names::These(names) => names,
                Names::Every => unreachable!("an agent always names its credentials"),
            }
        } else if only.is_empty() {
            let entries = reader.manifest_without_history()?.credentials;
            let names = entries
                .keys()
                .filter_map(|n| CredentialName::parse(n).ok())
                .collect();
            every = Some(entries);
            names
        } else {
            only
        };
        ctx.audit
            .note(|d| d.credentials = names.iter().map(ToString::to_string).collect());
        let mut values = BTreeMap::new();
        let mut names_by_env: BTreeMap<String, String> = BTreeMap::new();
        let store_id = reader.store_id().to_owned();
        let mut skipped = Vec::new();
        let mut read = Vec::new();
        for name in names {
            let entry = match every.as_mut().and_then(|e| e.remove(name.as_str())) {
                Some(entry) => entry,
                None => reader.entry(&name)?,
            };
            // exec gives a file credential's variable a path, never the contents: a
            // variable holding the whole key file would be a different contract.
            if entry.kind == crate::model::credential::Kind::File {
                skipped.push(name.to_string());
                continue;
            }
            let value = reader.value(&name, &entry)?;
            read.push((name, entry, value));
        }
        // An oauth2 credential's variable holds an access token, as with exec: obtained
        // with the store unlocked (a request takes time, and a rotated refresh token is
        // written back in a transaction of its own). The value cache is written only once
        // the command has succeeded: a refused refresh leaves the store as it was.
        let (notes, cache) = reader.hand_back();
        for note in notes {
            store.note(&note);
        }
        let tokens = crate::oauth::TokenCache::new(&store, ctx.identity()?, &store_id);
        for (name, entry, mut value) in read {
            if entry.kind == crate::model::credential::Kind::Oauth2 {
                value = crate::oauth::access_token(&tokens, &name, &entry, &value, ctx.verbose)?;
            }
            let text = String::from_utf8(value.expose_secret().to_vec()).map_err(|_| {
                Error::NotEnvSafe {
                    name: name.to_string(),
                    reason: "it is not UTF-8 text, which this format cannot carry".into(),
                }
            })?;
            names_by_env.insert(entry.env.to_string(), name.to_string());
            values.insert(entry.env.to_string(), zeroize::Zeroizing::new(text));
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        match self.format {
            Format::Json => {
                let map: BTreeMap<&str, &str> = values
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                text.push_str(&serde_json::to_string_pretty(&map)?);
                text.push('\n');
            }
            Format::Dotenv | Format::Shell => {
                for (key, value) in &values {
                    if !envfile::shell_safe(value) {
                        let name = names_by_env.get(key).map_or(key.as_str(), String::as_str);
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
