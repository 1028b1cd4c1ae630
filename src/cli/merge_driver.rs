//! `agentcred merge-driver %O %A %B %P`: git's merge driver for a store (see `gitmerge`).

use std::path::PathBuf;

use clap::Args;

use crate::cli::context::Ctx;
use crate::crypto::identity::{self, Unlock};
use crate::error::Error;
use crate::gitmerge::{self, Merged};
use crate::util::output::escape;

/// Merge agentcred.toml / recipients.txt for git (registered by init and git-setup)
#[derive(Debug, Args)]
#[command(
    after_help = "Git runs this; you do not. It never prompts: the identity must unlock without a
terminal (a plain identity file, the keychain, AGENTCRED_IDENTITY, or AGENTCRED_PASSPHRASE).
On failure git reports a conflict.

Examples:
  agentcred git-setup          # registers it in this clone's git config, as:
  git config merge.agentcred.driver 'agentcred merge-driver %O %A %B %P'"
)]
pub struct MergeDriverArgs {
    /// The common ancestor's version (%O)
    base: PathBuf,
    /// Our version, replaced by the result (%A)
    ours: PathBuf,
    /// Their version (%B)
    theirs: PathBuf,
    /// The file's path in the work tree (%P)
    path: PathBuf,
}

impl MergeDriverArgs {
    pub fn run(self, _ctx: &Ctx) -> anyhow::Result<()> {
        let shown = escape(&self.path.display().to_string());
        // Git gives a driver no terminal worth asking on: never prompt.
        let identity = identity::load(Unlock { may_prompt: false }).map_err(|e| {
            anyhow::Error::from(e).context(format!(
                "agentcred cannot merge {shown} without unlocking your identity"
            ))
        })?;
        let merged = gitmerge::drive(
            &identity,
            &self.base,
            &self.ours,
            &self.theirs,
            &self.path,
            crate::cli::context::say_on_stderr(),
        )
        .map_err(|e| anyhow::Error::from(e).context(format!("agentcred did not merge {shown}")))?;
        match merged {
            Merged::Clean {
                generation: Some(generation),
            } => {
                eprintln!("agentcred: merged {shown}, sealed at generation {generation}");
                Ok(())
            }
            Merged::Clean { generation: None } => Ok(()),
            Merged::Conflicts(conflicts) => {
                for (what, why) in &conflicts {
                    eprintln!("agentcred: CONFLICT in {}: {why}", escape(what));
                }
                let names: Vec<&str> = conflicts.iter().map(|(w, _)| w.as_str()).collect();
                Err(Error::MergeUnresolved {
                    conflicts: names.join(", "),
                }
                .into())
            }
        }
    }
}
