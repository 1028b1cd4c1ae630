//! `agentcred identity --public`: the recipient to hand to a teammate.

use std::io::Write;

use clap::Args;

use crate::cli::context::Ctx;

/// Print your age recipient (public key), for a store member to add
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred identity            # the same as --public: a private key is never printed
  agentcred identity --public")]
pub struct IdentityArgs {
    /// Print the public recipient (age1...): what this command does, with or without it
    #[arg(long)]
    public: bool,
}

impl IdentityArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let _ = self.public;
        let identity = ctx.identity()?;
        let mut out = std::io::stdout().lock();
        for recipient in identity.recipients() {
            writeln!(out, "{recipient}")?;
        }
        Ok(())
    }
}
