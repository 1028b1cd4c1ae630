//! `agentcred vault`: the store's Vault/OpenBao settings (address, KV mount, prefix), kept
//! in the manifest's `[vault]` table; the environment overrides them.

use std::io::Write;

use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;

use crate::backend::vault::{self, Settings};
use crate::cli::context::Ctx;
use crate::error::Error;
use crate::model::credential::BackendKind;
use crate::util::output::escape;

use super::list::load_manifest;

/// The Vault/OpenBao server of `--backend vault` credentials
#[derive(Debug, Args)]
#[command(
    after_help = "The address, KV v2 mount and path prefix are kept in the manifest (nothing
secret); VAULT_ADDR (or BAO_ADDR), AGENTCRED_VAULT_MOUNT and AGENTCRED_VAULT_PREFIX override
them. The token comes from VAULT_TOKEN (or BAO_TOKEN), else an AppRole login with
AGENTCRED_VAULT_ROLE_ID and AGENTCRED_VAULT_SECRET_ID, else ~/.vault-token.

Examples:
  agentcred vault set --addr https://vault.example.com:8200
  agentcred vault show
  VAULT_TOKEN=... agentcred add db-password --backend vault"
)]
pub struct VaultArgs {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    Set(SetArgs),
    Show(ShowArgs),
}

/// Record the Vault address, mount or prefix in the store
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("what").required(true).multiple(true).args(["addr", "mount", "prefix"])),
    after_help = "Examples:
  agentcred vault set --addr https://vault.example.com:8200
  agentcred vault set --addr https://bao.internal:8200 --mount kv --prefix team/agents"
)]
struct SetArgs {
    /// The server (https://, or http:// to a loopback address)
    #[arg(long, value_name = "URL")]
    addr: Option<String>,

    /// The KV v2 mount [default: secret]
    #[arg(long, value_name = "MOUNT")]
    mount: Option<String>,

    /// The path under the mount [default: agentcred/STORE_ID]
    #[arg(long, value_name = "PATH")]
    prefix: Option<String>,
}

/// Show the Vault settings in effect (and where each comes from); sends nothing
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred vault show
  agentcred vault show --json")]
struct ShowArgs {
    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

impl VaultArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self.command {
            VaultCommand::Set(args) => args.run(ctx),
            VaultCommand::Show(args) => args.run(ctx),
        }
    }
}

impl SetArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("vault-set");
        let store = ctx.open_store()?;
        let mut txn = store.begin(ctx.identity()?)?;
        let store_id = txn.store_id().to_string();
        let current = txn.manifest().vault.clone();
        let base = current.clone().unwrap_or(Settings {
            addr: None,
            mount: vault::DEFAULT_MOUNT.into(),
            prefix: vault::default_prefix(&store_id),
        });
        let new = Settings::new(
            self.addr.or(base.addr.clone()),
            Some(self.mount.unwrap_or(base.mount.clone())),
            Some(self.prefix.unwrap_or(base.prefix.clone())),
            &store_id,
        )?;
        if current.as_ref() == Some(&new) {
            eprintln!("the Vault settings are already these; nothing changed");
            return Ok(());
        }
        let living = txn
            .manifest()
            .credentials
            .values()
            .filter(|e| e.backend == BackendKind::Vault)
            .count();
        if living > 0 && (new.mount != base.mount || new.prefix != base.prefix) {
            return Err(Error::Unsupported(format!(
                "{living} credential{} live under {}/{} in Vault; agentcred does not move them (rm and add them again after the change)",
                if living == 1 { "" } else { "s" },
                base.mount,
                base.prefix
            ))
            .into());
        }
        txn.set_vault_settings(new.clone());
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!(
            "vault: {}, values under {}/{}/",
            escape(
                new.addr
                    .as_deref()
                    .unwrap_or("(no address: set VAULT_ADDR)")
            ),
            new.mount,
            new.prefix
        );
        Ok(())
    }
}

#[derive(Serialize)]
struct ShowJson {
    verified: bool,
    #[serde(flatten)]
    effective: vault::Effective,
    credentials: usize,
}

impl ShowArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let (manifest, verified) = load_manifest(ctx)?;
        let effective = vault::effective(manifest.vault.as_ref(), &manifest.store_id);
        let credentials = manifest
            .credentials
            .values()
            .filter(|e| e.backend == BackendKind::Vault)
            .count();
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(
                &mut out,
                &ShowJson {
                    verified,
                    effective,
                    credentials,
                },
            )?;
            writeln!(out)?;
            return Ok(());
        }
        let from = |value: Option<&str>, source: Option<&str>| match (value, source) {
            (Some(value), Some("manifest")) => escape(value),
            (Some(value), Some(source)) => format!("{} (from {source})", escape(value)),
            (Some(value), None) => escape(value),
            (None, _) => "none (set VAULT_ADDR, or `agentcred vault set --addr URL`)".into(),
        };
        let lines = [
            (
                "address",
                from(effective.addr.as_deref(), effective.addr_from.as_deref()),
            ),
            ("mount", escape(&effective.mount)),
            ("prefix", escape(&effective.prefix)),
            (
                "namespace",
                effective
                    .namespace
                    .as_deref()
                    .map_or_else(|| "-".into(), escape),
            ),
            (
                "token",
                effective.token_from.as_deref().map_or_else(
                    || "none (set VAULT_TOKEN, or AGENTCRED_VAULT_ROLE_ID and AGENTCRED_VAULT_SECRET_ID)".into(),
                    |source| format!("from {source}"),
                ),
            ),
            ("credentials", credentials.to_string()),
        ];
        for (key, value) in lines {
            writeln!(out, "{:<13}{value}", format!("{key}:"))?;
        }
        Ok(())
    }
}
