//! `agentcred init`: create a store, and the user's identity if there is none yet.

use std::io::Write;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use crate::context::Ctx;
use crate::error::Error;
use crate::identity;
use crate::output::escape;
use crate::store::Store;

/// Where a newly created identity is kept.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum IdentityStorage {
    /// A file in the config dir (~/.config/agentcred/identity.txt), 0600
    File,
}

/// Create a store (and an identity if you have none)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred init
  agentcred init --passphrase
  agentcred --store ./team-store init --recipient age1teammate...")]
pub struct InitArgs {
    /// Where to keep a new identity
    #[arg(long, value_enum, default_value = "file")]
    identity: IdentityStorage,

    /// Protect a new identity file with a passphrase (AGENTCRED_PASSPHRASE or a prompt)
    #[arg(long)]
    passphrase: bool,

    /// Also encrypt to this age recipient (repeatable)
    #[arg(long = "recipient", value_name = "R")]
    recipients: Vec<String>,
}

impl InitArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let IdentityStorage::File = self.identity;
        let mut extra = Vec::new();
        for r in &self.recipients {
            extra.push(
                r.parse::<age::x25519::Recipient>()
                    .map_err(|_| Error::InvalidValue {
                        what: "recipient",
                        input: escape(r),
                        reason: "expected an age X25519 recipient (age1...)".into(),
                    })?,
            );
        }
        if ctx.store_dir.join(crate::manifest::FILE_NAME).exists() {
            return Err(Error::StoreExists {
                path: ctx.store_dir.clone(),
            }
            .into());
        }
        let mut out = std::io::stdout().lock();
        let (identity, created) = match identity::locate() {
            Some(_) => (ctx.identity()?, None),
            None => {
                let path = identity::default_file().ok_or_else(|| {
                    Error::Usage("cannot find a config directory for the identity".into())
                })?;
                let new = identity::create_file(&path, self.passphrase, ctx.unlock())?;
                (ctx.adopt_identity(new), Some(path))
            }
        };
        if self.passphrase && created.is_none() {
            eprintln!(
                "note: an identity already exists ({}); --passphrase applies only to a new one",
                identity.source()
            );
        }
        let mut recipients = identity.recipients();
        for r in extra {
            if !recipients
                .iter()
                .any(|have| have.to_string() == r.to_string())
            {
                recipients.push(r);
            }
        }
        let (store, fingerprint) = Store::create(&ctx.store_dir, &recipients)
            .with_context(|| format!("cannot create a store at {}", ctx.store_dir.display()))?;
        writeln!(out, "Created store {}", store.root().display())?;
        match created {
            Some(path) => writeln!(out, "Created identity {}", path.display())?,
            None => writeln!(out, "Using identity {}", identity.source())?,
        }
        writeln!(out, "Your recipient: {}", identity.recipients()[0])?;
        writeln!(
            out,
            "Store key fingerprint: {fingerprint} (pin it on CI runners with AGENTCRED_STORE_FINGERPRINT)"
        )?;
        Ok(())
    }
}
