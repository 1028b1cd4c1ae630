//! `agentcred completions SHELL`: print the shell's completion script.

use std::io::Write;

use clap::Args;

use crate::cli::complete::Shell;
use crate::cli::context::Ctx;

/// Print a shell completion script (credential and agent names complete too)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred completions bash > ~/.local/share/bash-completion/completions/agentcred
  agentcred completions zsh > ~/.zfunc/_agentcred        # with fpath+=(~/.zfunc)
  agentcred completions fish > ~/.config/fish/completions/agentcred.fish
  agentcred completions powershell >> $PROFILE
  agentcred completions elvish >> ~/.config/elvish/rc.elv

The script asks agentcred itself for candidates, so names stored later complete too.
Completion reads only the manifest's names: it never unlocks or decrypts anything.")]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    shell: Shell,
}

impl CompletionsArgs {
    pub fn run(self, _ctx: &Ctx) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(&self.shell.script())?;
        out.flush()?;
        Ok(())
    }
}
