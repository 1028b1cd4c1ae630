//! `agentcred config`: store-wide settings, sealed in the manifest like everything else.

use clap::{Args, Subcommand};

use crate::cli::context::Ctx;

/// Show or change store-wide settings
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred config require-agent true     # exec and export refuse to run without an agent
  agentcred config require-agent          # print the setting")]
pub struct ConfigArgs {
    #[command(subcommand)]
    setting: Setting,
}

#[derive(Debug, Subcommand)]
enum Setting {
    /// Make exec (and export) refuse to run when no agent applies, so no program gets
    /// every credential by accident
    #[command(after_help = "Examples:
  agentcred config require-agent true     # exec without an agent is refused (exit 7)
  agentcred config require-agent false    # back to a warning
  agentcred config require-agent          # prints true or false")]
    RequireAgent {
        /// true or false; without it, print the setting
        #[arg(value_parser = clap::builder::BoolishValueParser::new())]
        value: Option<bool>,
    },
}

impl ConfigArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let Setting::RequireAgent { value } = self.setting;
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        let Some(value) = value else {
            println!("{}", store.reader(identity)?.defaults()?.require_agent);
            return Ok(());
        };
        ctx.audit.begin("config");
        let mut txn = store.begin(identity)?;
        if !txn.set_require_agent(value) {
            eprintln!("require-agent is already {value}");
            return Ok(());
        }
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!(
            "require-agent is {value}: {}",
            if value {
                "exec and export refuse to run when no agent applies"
            } else {
                "with no agent, exec gives a program every credential (with a warning)"
            }
        );
        Ok(())
    }
}
