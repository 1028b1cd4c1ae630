//! `agentcred list`: credentials' metadata, never values.

use std::io::Write;

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::manifest::{Defaults, Entry, Manifest};
use crate::model::credential::AgentName;
use crate::model::rotation;
use crate::util::output;

/// List credentials: name, env, backend, kind, rotation status
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred list
  agentcred list --agent mybot                  # what agent mybot may receive
  agentcred list --json | jq -r '.credentials[] | select(.status == \"overdue\") | .name'")]
pub struct ListArgs {
    /// Only the credentials this agent may receive
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,

    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

/// One credential as `list --json` and `show --json` print it.
#[derive(Serialize)]
pub struct CredentialJson<'a> {
    pub name: &'a str,
    pub env: &'a str,
    pub backend: &'static str,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub created_at: String,
    pub rotated_at: String,
    pub rotate_every: Option<String>,
    pub due_at: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_info: Option<ValueInfoJson<'a>>,
    /// The token endpoint of an `oauth2` credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<&'a crate::oauth::ClientConfig>,
    /// Where `exec --broker` sends it: `{"url", "header", "base_url_env"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a crate::model::upstream::Upstream>,
}

/// What was read from the value: `{"format": "jwt", "expires_at": ...}`.
#[derive(Serialize)]
pub struct ValueInfoJson<'a> {
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_id: Option<&'a str>,
}

impl<'a> CredentialJson<'a> {
    pub fn new(name: &'a str, entry: &'a Entry, defaults: &Defaults, now: Timestamp) -> Self {
        let due = entry.due_at(defaults);
        let rotate_every = match entry.policy() {
            rotation::Policy::Default => Some(defaults.rotate_every.to_string()),
            rotation::Policy::Every(period) => Some(period.to_string()),
            rotation::Policy::Due(_) | rotation::Policy::Expiry(_) | rotation::Policy::Never => {
                None
            }
        };
        let value_info = entry.value_info.as_ref().map(|info| ValueInfoJson {
            format: info.format.as_str(),
            expires_at: info.expires_at.map(output::rfc3339),
            client_email: info.client_email.as_deref(),
            private_key_id: info.private_key_id.as_deref(),
        });
        CredentialJson {
            name,
            env: entry.env.as_str(),
            backend: entry.backend.as_str(),
            kind: entry.kind.as_str(),
            description: entry.description.as_deref(),
            created_at: output::rfc3339(entry.created_at),
            rotated_at: output::rfc3339(entry.rotated_at),
            rotate_every,
            due_at: due.map(output::rfc3339),
            status: rotation::status(due, now, defaults.due_soon_window).as_str(),
            value_info,
            oauth2: entry.oauth2.as_deref(),
            upstream: entry.upstream.as_deref(),
        }
    }
}

/// Load the manifest verified when the identity is at hand without a prompt; otherwise
/// unverified, saying so on stderr. Returns the manifest and whether it was verified.
pub fn load_manifest(ctx: &Ctx) -> anyhow::Result<(Manifest, bool)> {
    load_manifest_with(ctx, true)
}

/// [`load_manifest`], without the credentials' history when `history` is false (faster
/// to read: `list` and `due` never show it).
pub fn load_manifest_with(ctx: &Ctx, history: bool) -> anyhow::Result<(Manifest, bool)> {
    let store = ctx.open_store()?;
    match ctx.identity_if_unlocked()? {
        Some(identity) => {
            let manifest = match history {
                true => store.reader(identity)?.manifest()?,
                false => store
                    .reader_of_every(identity)?
                    .manifest_without_history()?,
            };
            Ok((manifest, true))
        }
        None => {
            eprintln!("{}", ctx.unverified_note());
            Ok((store.manifest_unverified()?, false))
        }
    }
}

/// `{"verified": .., "credentials": [..]}`, serialized straight from the manifest.
struct ListJson<'a> {
    verified: bool,
    manifest: &'a Manifest,
    now: Timestamp,
}

impl Serialize for ListJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Credentials<'a>(&'a ListJson<'a>);
        impl Serialize for Credentials<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let m = self.0.manifest;
                serializer.collect_seq(
                    m.credentials.iter().map(|(name, entry)| {
                        CredentialJson::new(name, entry, &m.defaults, self.0.now)
                    }),
                )
            }
        }
        let mut s = serializer.serialize_struct("List", 2)?;
        s.serialize_field("verified", &self.verified)?;
        s.serialize_field("credentials", &Credentials(self))?;
        s.end()
    }
}

impl ListArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let agent = self.agent.as_deref().map(AgentName::parse).transpose()?;
        let (mut manifest, verified) = load_manifest_with(ctx, false)?;
        if let Some(name) = agent {
            let allow = manifest
                .agent(&name)
                .ok_or_else(|| Error::AgentNotFound {
                    name: name.to_string(),
                })?
                .allow
                .clone();
            manifest
                .credentials
                .retain(|credential, _| allow.contains(credential));
        }
        let now = crate::model::rotation::now();
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        if self.json {
            serde_json::to_writer_pretty(
                &mut out,
                &ListJson {
                    verified,
                    manifest: &manifest,
                    now,
                },
            )?;
            writeln!(out)?;
        } else if manifest.credentials.is_empty() {
            writeln!(
                std::io::stderr(),
                "no credentials yet: `agentcred add NAME` stores one"
            )?;
        } else {
            let rows = || {
                manifest.credentials.iter().map(|(name, entry)| {
                    let row = CredentialJson::new(name, entry, &manifest.defaults, now);
                    let due = entry.due_at(&manifest.defaults);
                    [
                        name.clone(),
                        row.env.to_string(),
                        row.backend.to_string(),
                        row.kind.to_string(),
                        output::relative(entry.rotated_at, now),
                        due.map_or_else(
                            || "-".into(),
                            |d| format!("{} ({})", output::date(d), output::relative(d, now)),
                        ),
                        row.status.to_string(),
                    ]
                })
            };
            output::table(
                &mut out,
                &["NAME", "ENV", "BACKEND", "KIND", "ROTATED", "DUE", "STATUS"],
                rows,
            )?;
        }
        out.flush()?;
        Ok(())
    }
}
