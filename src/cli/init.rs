//! `agentcred init`: create a store, and the user's identity if there is none yet.

use std::io::Write;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::backend::vault;
use crate::cli::context::Ctx;
use crate::crypto::identity::{self, Identity};
use crate::crypto::os_keychain;
use crate::crypto::recipient::Recipient;
use crate::error::Error;
use crate::store::Store;

/// Where a newly created identity is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdentityStorage {
    /// The OS keychain (service agentcred, account identity): no file, no passphrase
    Keychain,
    /// A file in the config dir (~/.config/agentcred/identity.txt), 0600
    File,
}

/// Create a store (and an identity if you have none)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred init                       # identity in the OS keychain if one is reachable
  agentcred init --identity file --passphrase
  agentcred --store ./team-store init --recipient age1teammate...
  agentcred init --vault-addr https://vault.example.com:8200   # for --backend vault")]
pub struct InitArgs {
    /// Where to keep a new identity [default: keychain when one is reachable, else file]
    #[arg(long, value_enum, value_name = "WHERE")]
    identity: Option<IdentityStorage>,

    /// Protect a new identity file with a passphrase (AGENTCRED_PASSPHRASE or a prompt)
    #[arg(long)]
    passphrase: bool,

    /// Also encrypt to this recipient: age1... or an SSH public key (repeatable)
    #[arg(long = "recipient", value_name = "R")]
    recipients: Vec<String>,

    /// The Vault or OpenBao server for `--backend vault` credentials (VAULT_ADDR overrides)
    #[arg(long, value_name = "URL", help_heading = VAULT_HEADING)]
    vault_addr: Option<String>,

    /// The KV v2 mount [default: secret]
    #[arg(long, value_name = "MOUNT", requires = "vault_addr", help_heading = VAULT_HEADING)]
    vault_mount: Option<String>,

    /// The path under the mount [default: agentcred/STORE_ID]
    #[arg(long, value_name = "PATH", requires = "vault_addr", help_heading = VAULT_HEADING)]
    vault_prefix: Option<String>,
}

const VAULT_HEADING: &str = "Vault/OpenBao (for --backend vault)";

impl InitArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        if self.passphrase && self.identity == Some(IdentityStorage::Keychain) {
            return Err(Error::Usage(
                "--passphrase protects an identity file; the keychain protects its own items (drop one of --passphrase and --identity keychain)".into(),
            )
            .into());
        }
        let mut extra = Vec::new();
        for r in &self.recipients {
            extra.push(Recipient::parse(r)?);
        }
        // Checked before anything is created (the prefix's default needs the store id).
        let vault = self.vault_addr.clone().map(|addr| vault::Requested {
            addr,
            mount: self.vault_mount.clone(),
            prefix: self.vault_prefix.clone(),
        });
        if let Some(requested) = &vault {
            vault::Settings::new(
                Some(requested.addr.clone()),
                requested.mount.clone(),
                requested.prefix.clone(),
                "0",
            )?;
        }
        if ctx.store_dir.join(crate::manifest::FILE_NAME).exists() {
            return Err(Error::StoreExists {
                path: ctx.store_dir.clone(),
            }
            .into());
        }
        let mut out = std::io::stdout().lock();
        let (identity, created) = match ctx.identity() {
            Ok(identity) => (identity, false),
            Err(Error::NoIdentity) => (ctx.adopt_identity(self.create(ctx, None)?), true),
            Err(Error::NoIdentityKeychainDown { reason }) => {
                (ctx.adopt_identity(self.create(ctx, Some(reason))?), true)
            }
            Err(e) => return Err(e.into()),
        };
        if (self.passphrase || self.identity.is_some()) && !created {
            eprintln!(
                "note: an identity already exists ({}); --identity and --passphrase apply only to a new one",
                identity.source()
            );
        }
        let mut recipients = identity.recipients();
        for r in extra {
            if !recipients.contains(&r) {
                recipients.push(r);
            }
        }
        let (store, fingerprint) = Store::create(
            &ctx.store_dir,
            &recipients,
            vault,
            crate::cli::context::say_on_stderr(),
        )
        .with_context(|| format!("cannot create a store at {}", ctx.store_dir.display()))?;
        writeln!(out, "Created store {}", store.root().display())?;
        if created {
            writeln!(out, "Created identity in {}", identity.source())?;
        } else {
            writeln!(out, "Using identity {}", identity.source())?;
        }
        writeln!(out, "Your recipient: {}", identity.recipients()[0])?;
        writeln!(
            out,
            "Store key fingerprint: {fingerprint} (pin it on CI runners with AGENTCRED_STORE_FINGERPRINT)"
        )?;
        // Inside a git work tree: register the merge driver (CONTRACT section 13).
        if let Ok(program) = std::env::current_exe()
            && let Some(top) = crate::gitmerge::setup(store.root(), &program)?
        {
            writeln!(
                out,
                "Git: registered the agentcred merge driver in {} (teammates run `agentcred git-setup` once per clone)",
                top.display()
            )?;
        }
        if let Some(settings) = store.manifest_unverified()?.vault {
            writeln!(
                out,
                "Vault: {} (values of --backend vault credentials under {}/{}/)",
                settings.addr.as_deref().unwrap_or("-"),
                settings.mount,
                settings.prefix
            )?;
        }
        Ok(())
    }
}

impl InitArgs {
    /// Create the identity where the user asked, or in the keychain when one is reachable
    /// (and no passphrase was asked for), else in a file. `keychain_down` is why the
    /// lookup could not ask the keychain, if it could not.
    fn create(&self, ctx: &Ctx, keychain_down: Option<String>) -> Result<Identity, Error> {
        let storage = match self.identity {
            Some(storage) => storage,
            None if self.passphrase => IdentityStorage::File,
            None => match keychain_down.map_or_else(os_keychain::probe, Err) {
                Ok(()) => IdentityStorage::Keychain,
                Err(reason) => {
                    eprintln!(
                        "note: no OS keychain to keep the identity in ({reason}); using a file"
                    );
                    IdentityStorage::File
                }
            },
        };
        match storage {
            IdentityStorage::Keychain => identity::create_in_keychain(),
            IdentityStorage::File => {
                let path = identity::default_file().ok_or_else(|| {
                    Error::Usage("cannot find a config directory for the identity".into())
                })?;
                identity::create_file(&path, self.passphrase, ctx.unlock())
            }
        }
    }
}
