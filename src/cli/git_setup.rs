//! `agentcred git-setup`: register the merge driver in this clone (`init` does it too).

use std::io::Write;

use anyhow::Context as _;
use clap::Args;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::gitmerge;

/// Register agentcred as git's merge driver for the store (run once per clone)
#[derive(Debug, Args)]
#[command(
    after_help = "Writes .gitattributes in the store (agentcred.toml and recipients.txt merge with
agentcred, secret files never line by line) and the repository's git config
(merge.agentcred.name, merge.agentcred.driver). Git never takes a driver command from the
repository itself, so every clone runs this once.

Examples:
  git clone git@example.com:team/secrets.git && cd secrets
  agentcred --store . git-setup"
)]
pub struct GitSetupArgs {}

impl GitSetupArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.open_store()?;
        let program = std::env::current_exe().context("cannot find the agentcred program")?;
        match gitmerge::setup(store.root(), &program)? {
            Some(top) => {
                writeln!(
                    std::io::stdout().lock(),
                    "Registered the agentcred merge driver in {} (.gitattributes in the store; commit it)",
                    top.display()
                )?;
                Ok(())
            }
            None => Err(Error::Usage(format!(
                "{} is not in a git work tree (or git is not installed)",
                store.root().display()
            ))
            .into()),
        }
    }
}
