//! `agentcred rename`: give a credential a new name; its value, history and agents'
//! grants follow.

use clap::Args;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::model::credential::{CredentialName, EnvVarName};

/// Rename a credential (its value, history and agents' grants follow)
#[derive(Debug, Args)]
#[command(
    after_help = "The variable a program receives stays the same unless --env is given:
renaming a credential does not change what your programs read.

Examples:
  agentcred rename gh-token github-token
  agentcred rename openai openai-api-key --env OPENAI_API_KEY"
)]
pub struct RenameArgs {
    /// The credential's current name
    old: String,

    /// Its new name
    new: String,

    /// Also inject it as this variable from now on
    #[arg(long, value_name = "VAR")]
    env: Option<String>,
}

impl RenameArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("rename");
        let old = CredentialName::parse(&self.old)?;
        let new = CredentialName::parse(&self.new)?;
        ctx.audit
            .note(|d| d.credentials = [old.to_string(), new.to_string()].into());
        let env = self.env.as_deref().map(EnvVarName::parse).transpose()?;
        if old == new {
            return Err(Error::Usage(format!("{old} already has that name")).into());
        }
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        let mut txn = store.begin(identity)?;
        let agents = txn.rename(&old, &new, env, crate::model::rotation::now())?;
        let env = txn
            .entry(&new)
            .map(|entry| entry.env.clone())
            .ok_or_else(|| Error::CredentialNotFound {
                name: new.to_string(),
            })?;
        ctx.audit.ok()?;
        txn.commit()?;
        crate::oauth::forget(&store, &old);
        eprintln!("renamed {old} to {new} (injected as {env})");
        if !agents.is_empty() {
            eprintln!(
                "agent{} now allowed {new} instead of {old}: {}",
                if agents.len() == 1 { "" } else { "s" },
                agents.join(", ")
            );
        }
        Ok(())
    }
}
