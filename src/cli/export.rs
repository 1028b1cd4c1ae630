//! `agentcred export`: print values for tools that insist on a file.

use std::io::Write;

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretSlice};

use crate::cli::context::Ctx;
use crate::envfile;
use crate::error::Error;
use crate::model::credential::{AgentName, CredentialName, EnvVarName};
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
            store.reader_of_values(ctx.identity()?)?
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
            d.credentials = read.iter().map(|(name, _, _)| name.as_str()).collect();
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
        // In the order they are printed. A name given twice counts once; two credentials
        // for one variable are refused before any value is read, as exec refuses them
        // (one would silently replace the other). Unstable sort: no scratch copy of
        // 10,000 entries, and (variable, name) orders every pair.
        read.sort_unstable_by(|a, b| (&a.1.env, &a.0).cmp(&(&b.1.env, &b.0)));
        read.dedup_by(|a, b| a.0 == b.0);
        if let Some(pair) = read.windows(2).find(|pair| pair[0].1.env == pair[1].1.env) {
            return Err(Error::DuplicateEnv {
                first: pair[0].0.to_string(),
                second: pair[1].0.to_string(),
                env: pair[0].1.env.to_string(),
            }
            .into());
        }
        for (name, entry, slot) in &mut read {
            *slot = Some(reader.value(name, entry)?);
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
        // Every value is checked before anything is printed: all or nothing. Then only
        // each variable and its value are kept, in the same vector, and the room the
        // entries took (2.7 MB for 10,000) is given back before the audit line is written.
        for (name, _, slot) in &read {
            let text = std::str::from_utf8(value_of(slot)).map_err(|_| Error::NotEnvSafe {
                name: name.to_string(),
                reason: "it is not UTF-8 text, which this format cannot carry".into(),
            })?;
            if !matches!(self.format, Format::Json) && !envfile::shell_safe(text) {
                return Err(Error::NotEnvSafe {
                    name: name.to_string(),
                    reason: "it contains a NUL byte, which a shell variable cannot hold (use --format json)".into(),
                }
                .into());
            }
        }
        let mut read: Vec<(EnvVarName, SecretSlice<u8>)> = read
            .into_iter()
            .map(|(_, entry, slot)| (entry.env, slot.unwrap_or_else(empty)))
            .collect();
        read.shrink_to_fit();
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
        // Written a piece at a time from the values in their slots, through one buffer
        // that is wiped after use (not a copy of the whole output: 600 kB for 10,000).
        let mut out = Wiped::new(std::io::stdout().lock());
        match self.format {
            Format::Json => {
                let object = JsonObject(&read);
                serde_json::to_writer_pretty(&mut out, &object)?;
                out.write_all(b"\n")?;
            }
            Format::Dotenv | Format::Shell => {
                for (env, value) in &read {
                    let line = zeroize::Zeroizing::new(match self.format {
                        Format::Shell => envfile::shell_line(env.as_str(), text_of(value)),
                        _ => envfile::dotenv_line(env.as_str(), text_of(value)),
                    });
                    out.write_all(line.as_bytes())?;
                }
            }
        }
        out.finish()?;
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

/// A value as its slot holds it (every slot is filled before anything is printed).
fn value_of(slot: &Option<secrecy::SecretSlice<u8>>) -> &[u8] {
    slot.as_ref().map_or(&[], |value| value.expose_secret())
}

/// A value as text (every value was checked to be UTF-8 before anything is printed).
fn text_of(value: &SecretSlice<u8>) -> &str {
    std::str::from_utf8(value.expose_secret()).unwrap_or_default()
}

/// An empty value, for a slot that was not filled (every slot is, before this is used).
fn empty() -> SecretSlice<u8> {
    SecretSlice::from(Vec::new())
}

/// `--format json`'s object: the variables in order, written without a map's copy.
struct JsonObject<'a>(&'a [(EnvVarName, SecretSlice<u8>)]);

impl serde::Serialize for JsonObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                .map(|(env, value)| (env.as_str(), text_of(value))),
        )
    }
}

/// Output written through a buffer of 64 KiB that is wiped when dropped.
struct Wiped<W: Write> {
    out: W,
    buffer: zeroize::Zeroizing<Vec<u8>>,
}

impl<W: Write> Wiped<W> {
    const SIZE: usize = 64 * 1024;

    fn new(out: W) -> Self {
        Wiped {
            out,
            buffer: zeroize::Zeroizing::new(Vec::with_capacity(Self::SIZE)),
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.flush()
    }
}

impl<W: Write> Write for Wiped<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.buffer.len() + bytes.len() > Self::SIZE {
            self.out.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        if bytes.len() >= Self::SIZE {
            self.out.write_all(bytes)?;
        } else {
            self.buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        self.out.flush()
    }
}
