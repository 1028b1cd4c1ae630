//! `agentcred get`: one value to stdout, exactly.

use std::io::{IsTerminal, Write};

use clap::Args;
use secrecy::ExposeSecret;

use crate::cli::context::Ctx;
use crate::model::credential::CredentialName;

/// Print a credential's value (a newline is added only on a terminal)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred get openai-api-key
  curl -H \"Authorization: Bearer $(agentcred get github-token)\" ...")]
pub struct GetArgs {
    /// Credential name
    name: String,
}

impl GetArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("get");
        let name = CredentialName::parse(&self.name)?;
        ctx.audit
            .note(|d| d.credentials = [name.to_string()].into());
        let store = ctx.open_store()?;
        let reader = store.reader_for_one(ctx.identity()?, &name)?;
        let entry = reader.entry(&name)?;
        let value = reader.value_uncached(&name, &entry)?;
        reader.finish();
        ctx.audit.ok()?;
        let mut out = std::io::stdout().lock();
        out.write_all(value.expose_secret())?;
        if out.is_terminal() {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }
}
