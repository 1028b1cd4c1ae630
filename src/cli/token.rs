//! `agentcred token`: a valid OAuth access token for an `oauth2` credential, to stdout.

use std::io::{IsTerminal, Write};

use clap::Args;
use secrecy::ExposeSecret;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::model::credential::{CredentialName, Kind};
use crate::oauth::{self, TokenCache};

/// Print an OAuth access token for an oauth2 credential (cached until near expiry)
#[derive(Debug, Args)]
#[command(
    after_help = "The token comes from the cache while more than max(60 s, 10% of its lifetime)
is left; otherwise agentcred runs the client-credentials grant and caches the new one.
A newline is added only when stdout is a terminal.

Examples:
  agentcred token api
  curl -H \"Authorization: Bearer $(agentcred token api)\" https://api.example.com/v1/me"
)]
pub struct TokenArgs {
    /// Credential name (of kind oauth2)
    name: String,
}

impl TokenArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("token");
        let name = CredentialName::parse(&self.name)?;
        ctx.audit
            .note(|d| d.credentials = [name.to_string()].into());
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        let (entry, secret, store_id) = {
            let reader = store.reader_for_one(identity, &name)?;
            let entry = reader.entry(&name)?;
            if entry.kind != Kind::Oauth2 {
                return Err(Error::Usage(format!(
                    "credential {name} is of kind {}, not oauth2; `agentcred get {name}` prints its value",
                    entry.kind.as_str()
                ))
                .into());
            }
            let secret = reader.value(&name, &entry)?;
            (entry, secret, reader.store_id().to_owned())
        };
        let cache = TokenCache::new(&store, identity, &store_id);
        let token = oauth::access_token(&cache, &name, &entry, &secret, ctx.verbose)?;
        drop(secret);
        ctx.audit.ok()?;
        let mut out = std::io::stdout().lock();
        out.write_all(token.expose_secret())?;
        if out.is_terminal() {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }
}
