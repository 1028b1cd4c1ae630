//! `agentcred show`: one credential's metadata and rotation history.

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::manifest::{Defaults, Entry};
use crate::model::credential::CredentialName;
use crate::model::settings::VaultSettings;
use crate::util::output::{self, escape};

use super::list::CredentialJson;

/// Show one credential's metadata and history (never its value)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred show openai-api-key
  agentcred show openai-api-key --json")]
pub struct ShowArgs {
    /// Credential name
    name: String,

    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    at: String,
    action: &'a str,
    by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct ShowJson<'a> {
    #[serde(flatten)]
    credential: CredentialJson<'a>,
    verified: bool,
    history: Vec<HistoryJson<'a>>,
}

impl ShowArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let name = CredentialName::parse(&self.name)?;
        let (shown, verified) = load_one(ctx, &name)?;
        let Shown {
            entry,
            defaults,
            store_id,
            vault,
        } = &shown;
        let now = crate::model::rotation::now();
        let info = CredentialJson::new(name.as_str(), entry, defaults, now);
        let mut out = std::io::stdout().lock();
        if self.json {
            let history = entry
                .history
                .iter()
                .map(|e| HistoryJson {
                    at: output::rfc3339(e.at),
                    action: &e.action,
                    by: &e.by,
                    reason: e.reason.as_deref(),
                })
                .collect();
            serde_json::to_writer_pretty(
                &mut out,
                &ShowJson {
                    credential: info,
                    verified,
                    history,
                },
            )?;
            writeln!(out)?;
            return Ok(());
        }
        let due = entry.due_at(defaults);
        let mut lines = vec![
            ("name", name.to_string()),
            ("env", info.env.to_string()),
            ("backend", info.backend.to_string()),
            ("kind", info.kind.to_string()),
        ];
        if let Some(account) = crate::backend::keychain::entry_account(store_id, &name, entry) {
            lines.push((
                "item",
                format!(
                    "service {}, account {account}",
                    crate::crypto::os_keychain::SERVICE
                ),
            ));
        }
        if entry.backend == crate::model::credential::BackendKind::Vault {
            lines.push((
                "vault path",
                crate::backend::vault::kv_path(vault.as_ref(), store_id, &name),
            ));
        }
        if let Some(text) = info.description {
            lines.push(("description", escape(text)));
        }
        lines.push((
            "created",
            format!(
                "{} ({})",
                output::date(entry.created_at),
                output::relative(entry.created_at, now)
            ),
        ));
        lines.push((
            "rotated",
            format!(
                "{} ({})",
                output::date(entry.rotated_at),
                output::relative(entry.rotated_at, now)
            ),
        ));
        lines.push((
            "rotate every",
            info.rotate_every.clone().unwrap_or_else(|| "-".into()),
        ));
        let expiry_drives = matches!(entry.policy(), crate::model::rotation::Policy::Expiry(_));
        lines.push((
            "due",
            due.map_or_else(
                || "never".into(),
                |d| {
                    format!(
                        "{} ({}{})",
                        output::date(d),
                        output::relative(d, now),
                        if expiry_drives {
                            ", when the value expires"
                        } else {
                            ""
                        }
                    )
                },
            ),
        ));
        lines.push(("status", info.status.to_string()));
        if let Some(value) = &entry.value_info {
            lines.push(("value", value.format.describe().to_string()));
            if let Some(at) = value.expires_at {
                let verb = if at <= now { "expired" } else { "expires" };
                lines.push((
                    verb,
                    format!("{} ({})", output::date(at), output::relative(at, now)),
                ));
            }
            if let Some(email) = &value.client_email {
                lines.push(("client email", escape(email)));
            }
            if let Some(id) = &value.private_key_id {
                lines.push(("key id", escape(id)));
            }
        }
        if let Some(client) = &entry.oauth2 {
            lines.push(("token url", escape(&client.token_url)));
            lines.push(("client id", escape(&client.client_id)));
            if let Some(scope) = &client.scope {
                lines.push(("scope", escape(scope)));
            }
            if let Some(audience) = &client.audience {
                lines.push(("audience", escape(audience)));
            }
            lines.push(("auth method", client.auth_method.as_str().to_string()));
            lines.extend(super::login::show_lines(
                &name,
                entry.history.as_slice(),
                client,
            ));
        }
        if let Some(upstream) = &entry.upstream {
            lines.push(("upstream", escape(&upstream.to_string())));
        }
        for (key, value) in lines {
            writeln!(out, "{:<14}{value}", format!("{key}:"))?;
        }
        if !entry.history.is_empty() {
            writeln!(out, "history:")?;
            for event in &entry.history {
                write!(
                    out,
                    "  {}  {:<9} {}",
                    output::date(event.at),
                    event.action,
                    escape(&event.by)
                )?;
                match &event.reason {
                    Some(reason) => writeln!(out, "  ({})", escape(reason))?,
                    None => writeln!(out)?,
                }
            }
        }
        Ok(())
    }
}

/// One credential and what `show` prints beside it.
struct Shown {
    entry: Entry,
    defaults: Defaults,
    store_id: String,
    vault: Option<VaultSettings>,
}

/// The credential `name`, verified when the identity is at hand without a prompt (the
/// manifest read in pieces, keeping only this credential's section: a store of 10,000
/// costs what a store of ten does); otherwise from the manifest read unverified, saying
/// so on stderr.
fn load_one(ctx: &Ctx, name: &CredentialName) -> anyhow::Result<(Shown, bool)> {
    let store = ctx.open_store()?;
    if let Some(identity) = ctx.identity_if_unlocked()? {
        let reader = store.reader_for_one(identity, name)?;
        let shown = Shown {
            entry: reader.entry(name)?,
            defaults: reader.defaults()?,
            store_id: reader.store_id().to_string(),
            vault: reader.vault_settings()?,
        };
        return Ok((shown, true));
    }
    eprintln!("{}", ctx.unverified_note());
    let mut manifest = store.manifest_unverified_of(name)?;
    let entry =
        manifest
            .credentials
            .remove(name.as_str())
            .ok_or_else(|| Error::CredentialNotFound {
                name: name.to_string(),
            })?;
    let shown = Shown {
        entry,
        defaults: manifest.defaults,
        store_id: manifest.store_id,
        vault: manifest.vault,
    };
    Ok((shown, false))
}
