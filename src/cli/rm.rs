//! `agentcred rm`: delete a credential's value and metadata.

use clap::Args;

use crate::cli::context::Ctx;
use crate::model::credential::CredentialName;

/// Delete a credential (its value and its metadata)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred rm old-token          # asks first, on a terminal
  agentcred rm old-token --yes    # in scripts")]
pub struct RmArgs {
    /// Credential name
    name: String,

    /// Do not ask for confirmation (needed without a terminal)
    #[arg(short, long)]
    yes: bool,
}

impl RmArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("rm");
        let name = CredentialName::parse(&self.name)?;
        ctx.audit
            .note(|d| d.credentials = [name.to_string()].into());
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        store.reader_for_one(identity, &name)?.entry(&name)?;
        if !self.yes
            && !super::input::confirm_destructive(
                ctx.may_prompt(),
                &format!("Delete credential {name}?"),
                &format!("delete {name}"),
            )?
        {
            anyhow::bail!("not deleted");
        }
        let mut txn = store.begin(identity)?;
        let agents = txn.remove_credential(&name)?;
        ctx.audit.ok()?;
        txn.commit()?;
        crate::oauth::forget(&store, &name);
        if !agents.is_empty() {
            eprintln!(
                "removed {name} from the agent{} allowed it: {}",
                if agents.len() == 1 { " that" } else { "s that" },
                agents.join(", ")
            );
        }
        eprintln!("deleted {name}");
        Ok(())
    }
}
