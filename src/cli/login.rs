//! `agentcred login NAME`: a person signs in so an agent can act for them; the refresh
//! token obtained becomes the credential's value. Also what `add` stores for the OAuth
//! grants whose value is not typed in.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretSlice};

use crate::cli::context::{Ctx, user_at_host};
use crate::error::{Error, Result};
use crate::model::credential::CredentialName;
use crate::oauth::jwt::KeyFile;
use crate::oauth::login::{Options, login};
use crate::oauth::refresh::Stored;
use crate::oauth::{ClientConfig, Grant};

use super::input::read_value;

/// Sign in to an oauth2 authorization_code credential, in a browser or with a code
#[derive(Debug, Args)]
#[command(
    after_help = "agentcred prints the sign-in URL (and opens it in a browser unless \
--no-browser), waits for the redirect to 127.0.0.1, and exchanges the code once (PKCE S256). \
With --device it prints a code to enter on another device instead (RFC 8628). The refresh \
token becomes the stored value; `token` and `exec` then mint access tokens from it. Register \
http://127.0.0.1/callback as the client's redirect URI (any port), or \
http://127.0.0.1:PORT/callback with --redirect-port. A redirect with another state, an error \
from the server, or no sign-in before --timeout: exit 1, and nothing is stored.

Examples:
  agentcred login mail
  agentcred login mail --no-browser --timeout 600
  agentcred login mail --device"
)]
pub struct LoginArgs {
    /// Credential name (of kind oauth2, --grant authorization_code)
    name: String,

    /// Print the URL only; do not start a browser
    #[arg(long)]
    no_browser: bool,

    /// Sign in on another device with a code (the device authorization grant)
    #[arg(long)]
    device: bool,

    /// How long to wait for the sign-in, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,

    /// The port for the redirect listener on 127.0.0.1 [default: the credential's, or any]
    #[arg(long, value_name = "PORT", conflicts_with = "device")]
    redirect_port: Option<u16>,
}

impl LoginArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("login");
        let name = CredentialName::parse(&self.name)?;
        ctx.audit
            .note(|d| d.credentials = [name.to_string()].into());
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        let options = Options {
            no_browser: self.no_browser,
            device: self.device,
            timeout: Duration::from_secs(self.timeout),
            port: self.redirect_port,
            by: user_at_host(),
        };
        login(&store, identity, &name, &options)?;
        ctx.audit.ok()?;
        eprintln!(
            "logged in: {name} now holds a refresh token; `agentcred token {name}` prints an access token"
        );
        Ok(())
    }
}

/// The value `add` stores for an `oauth2` credential, filling in what a key file says.
pub fn initial_value(
    ctx: &Ctx,
    name: &CredentialName,
    config: &mut ClientConfig,
    confidential: bool,
    from_file: Option<&Path>,
) -> Result<SecretSlice<u8>> {
    match config.grant {
        Grant::ClientCredentials => read_value(ctx, name, from_file),
        Grant::AuthorizationCode => {
            // A public client has no secret: nothing to ask for until `login`.
            let mut stored = Stored::default();
            if confidential || from_file.is_some() {
                let secret = read_value(ctx, name, from_file)?;
                let text = std::str::from_utf8(secret.expose_secret()).map_err(|_| {
                    Error::Usage(format!("the client secret for {name} is not UTF-8"))
                })?;
                stored.client_secret = Some(text.to_owned());
            }
            Ok(SecretSlice::from(stored.to_bytes().to_vec()))
        }
        Grant::JwtBearer => {
            let value = read_value(ctx, name, from_file)?;
            let key = KeyFile::parse(name, value.expose_secret())?;
            if config.token_url.is_empty() {
                config.token_url = key.token_uri.clone();
            }
            if config.client_id.is_empty() {
                config.client_id = key.client_email.clone();
            }
            config.validate()?;
            if config.scope.is_none() {
                return Err(Error::Usage(format!(
                    "--grant jwt-bearer needs --scope S: the token for {name} is minted for it"
                )));
            }
            // Sign once now, so a key that cannot sign is refused here, not at exec.
            crate::oauth::jwt::assertion(
                name,
                &key,
                config.scope.as_deref(),
                &config.token_url,
                0,
            )?;
            Ok(value)
        }
    }
}

/// What `show` adds for the grants of this module: the grant, its endpoints, and when the
/// person last signed in (a login after the value was last replaced by `add`).
pub fn show_lines(
    name: &CredentialName,
    history: &[crate::manifest::Event],
    client: &ClientConfig,
) -> Vec<(&'static str, String)> {
    use crate::util::output::{self, escape};
    let mut lines = Vec::new();
    if client.grant == Grant::ClientCredentials {
        return lines;
    }
    lines.push(("grant", client.grant.as_str().to_string()));
    if client.grant != Grant::AuthorizationCode {
        return lines;
    }
    if let Some(url) = &client.auth_url {
        lines.push(("auth url", escape(url)));
    }
    if let Some(url) = &client.device_auth_url {
        lines.push(("device url", escape(url)));
    }
    if let Some(port) = client.redirect_port {
        lines.push(("redirect port", port.to_string()));
    }
    let last = history
        .iter()
        .rev()
        .take_while(|e| e.action != "created" && e.action != "replaced")
        .find(|e| e.action == "logged in");
    lines.push((
        "logged in",
        match last {
            Some(event) => format!(
                "{} ({}) by {}",
                output::date(event.at),
                output::relative(event.at, crate::model::rotation::now()),
                escape(&event.by)
            ),
            None => format!("never: run agentcred login {name}"),
        },
    ));
    lines
}
