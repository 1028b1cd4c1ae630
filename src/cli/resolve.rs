//! `agentcred resolve NAME --ours|--theirs`: settle a conflict the merge driver recorded.

use std::io::Write;

use clap::Args;

use crate::cli::context::Ctx;
use crate::gitmerge::{self, Resolved};
use crate::manifest::conflict::Side;
use crate::util::output::escape;

/// Choose a side for a conflict of a stopped git merge of the store
#[derive(Debug, Args)]
#[command(
    after_help = "Both sides are verified again with the store key. The chosen side's entry and
its secret file (checked against the entry's hash) go into the merge; once every conflict
has a side, the merged manifest is sealed and staged (`git add`): `git commit` finishes.
In a rebase, \"ours\" is the branch being rebased onto, as in git.

Examples:
  agentcred resolve openai-api-key --theirs
  agentcred resolve defaults --ours"
)]
#[command(group(clap::ArgGroup::new("side").required(true).args(["ours", "theirs"])))]
pub struct ResolveArgs {
    /// The credential, agent, or setting (defaults, vault) in conflict
    name: String,
    /// Keep our side (HEAD)
    #[arg(long)]
    ours: bool,
    /// Take their side (the branch being merged)
    #[arg(long)]
    theirs: bool,
}

impl ResolveArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let side = if self.ours { Side::Ours } else { Side::Theirs };
        let identity = ctx.identity()?;
        let (chosen, resolved) = gitmerge::resolve(
            identity,
            &ctx.store_dir,
            &self.name,
            side,
            crate::cli::context::say_on_stderr(),
        )?;
        let mut out = std::io::stdout().lock();
        let word = if self.ours { "ours" } else { "theirs" };
        for key in chosen {
            writeln!(out, "Resolved {} with {word}", escape(&key))?;
        }
        match resolved {
            Resolved::Partly { open } => {
                writeln!(out, "Still in conflict: {}", escape(&open.join(", ")))?;
            }
            Resolved::Done { generation, files } => {
                for file in files {
                    writeln!(out, "Put back {}", escape(&file))?;
                }
                writeln!(
                    out,
                    "Merged and sealed at generation {generation}; staged for commit: run `git commit`"
                )?;
            }
        }
        Ok(())
    }
}
