//! `agentcred add`: store a credential.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use jiff::Timestamp;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::manifest::{Defaults, Entry, RotateEvery};
use crate::model::credential::{BackendKind, CredentialName, EnvVarName, Kind};
use crate::model::rotation::{Period, parse_date};
use crate::oauth::{AuthMethod, ClientConfig, Grant};
use crate::store::NewEntry;
use crate::util::output::{self, escape};

use super::input::read_value;

/// Store a credential (value from a hidden prompt, stdin, or --from-file)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred add openai-api-key                      # prompts, hidden
  printf %s \"$KEY\" | agentcred add OPENAI_API_KEY   # from stdin
  agentcred add gcp-sa --from-file sa.json --env GOOGLE_CREDENTIALS_JSON
  agentcred add github-token --rotate-every 30d --description 'bot PAT'
  agentcred add gcp-key --kind file --env GOOGLE_APPLICATION_CREDENTIALS --from-file sa.json
  agentcred add openai-api-key --provider openai     # exec --broker can broker it
  agentcred add slack-token --backend keychain       # value in the OS keychain
  agentcred add db-password --backend vault          # value in Vault/OpenBao (see `vault`)
  agentcred add api --kind oauth2 --token-url https://auth.example.com/oauth/token \\
      --client-id my-bot --scope 'read write' --env API_TOKEN   # the value is the client secret
  agentcred add mail --kind oauth2 --grant authorization_code --client-id my-app \\
      --auth-url https://auth.example.com/authorize --token-url https://auth.example.com/token \\
      --scope 'mail.read offline_access'   # then `agentcred login mail`
  agentcred add gcp --kind oauth2 --grant jwt-bearer --from-file sa.json \\
      --scope https://www.googleapis.com/auth/cloud-platform   # programs get hour-long tokens")]
pub struct AddArgs {
    /// Credential name (lowercase; OPENAI_API_KEY is read as openai-api-key)
    name: String,

    /// Environment variable to inject it as [default: the name upper-cased]
    #[arg(long, value_name = "VAR")]
    env: Option<String>,

    /// Where the value lives
    #[arg(long, value_enum, default_value = "age")]
    backend: BackendKind,

    /// How the value reaches a program
    #[arg(long, value_enum, default_value = "secret")]
    kind: Kind,

    /// Rotation period, like 90d, 12w, 6mo, 1y [default: the store's, 90d]
    #[arg(long, value_name = "DUR", value_parser = parse_period, conflicts_with_all = ["due", "no_rotation"])]
    rotate_every: Option<Period>,

    /// Due for rotation on this date (2027-01-31 or RFC 3339)
    #[arg(long, value_name = "DATE", value_parser = parse_timestamp, conflicts_with = "no_rotation")]
    due: Option<Timestamp>,

    /// Never due for rotation
    #[arg(long)]
    no_rotation: bool,

    /// When the value was last rotated, if before now (for existing keys)
    #[arg(long, value_name = "DATE", value_parser = parse_timestamp)]
    rotated_at: Option<Timestamp>,

    /// A note for people (no secrets)
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,

    /// Read the value from this file, bytes kept exactly
    #[arg(long, value_name = "PATH")]
    from_file: Option<PathBuf>,

    /// Replace an existing credential
    #[arg(long)]
    force: bool,

    /// The token endpoint (https://, or http:// to a loopback address)
    #[arg(long, value_name = "URL", help_heading = OAUTH2_HEADING)]
    token_url: Option<String>,

    /// The client id (not secret; the value stored is the client secret)
    #[arg(long, value_name = "ID", help_heading = OAUTH2_HEADING)]
    client_id: Option<String>,

    /// The scope to request (space-separated)
    #[arg(long, value_name = "SCOPE", help_heading = OAUTH2_HEADING)]
    scope: Option<String>,

    /// The audience to request (an `audience` parameter, as some providers want)
    #[arg(long, value_name = "AUDIENCE", help_heading = OAUTH2_HEADING)]
    audience: Option<String>,

    /// How the client authenticates to the token endpoint [default: basic]
    #[arg(long, value_enum, value_name = "METHOD", help_heading = OAUTH2_HEADING)]
    auth_method: Option<AuthMethod>,

    /// How tokens are obtained: client_credentials (the value is the client secret),
    /// authorization_code (a person signs in with `agentcred login`; the value becomes the
    /// refresh token), jwt-bearer (the value is a service-account key file)
    #[arg(long, value_enum, value_name = "GRANT", help_heading = OAUTH2_HEADING)]
    grant: Option<Grant>,

    /// The authorization endpoint the person signs in at (authorization_code)
    #[arg(long, value_name = "URL", help_heading = OAUTH2_HEADING)]
    auth_url: Option<String>,

    /// The device authorization endpoint, for `login --device` (RFC 8628)
    #[arg(long, value_name = "URL", help_heading = OAUTH2_HEADING)]
    device_auth_url: Option<String>,

    /// A fixed port for the sign-in redirect to 127.0.0.1 [default: any free port]
    #[arg(long, value_name = "PORT", help_heading = OAUTH2_HEADING)]
    redirect_port: Option<u16>,

    /// A confidential client (authorization_code): read its client secret like a value
    /// (prompt, stdin or --from-file); without it the client is public and nothing is read
    #[arg(long, help_heading = OAUTH2_HEADING)]
    confidential: bool,

    #[command(flatten)]
    upstream: super::upstream_flags::UpstreamFlags,
}

const OAUTH2_HEADING: &str = "OAuth 2.0 (--kind oauth2)";

impl AddArgs {
    /// The token endpoint of an `oauth2` credential, checked; none for other kinds.
    fn oauth2_config(&self) -> Result<Option<ClientConfig>, Error> {
        if self.kind != Kind::Oauth2 {
            let given = self.token_url.is_some()
                || self.client_id.is_some()
                || self.scope.is_some()
                || self.audience.is_some()
                || self.auth_method.is_some()
                || self.grant.is_some()
                || self.auth_url.is_some()
                || self.device_auth_url.is_some()
                || self.redirect_port.is_some()
                || self.confidential;
            if given {
                return Err(Error::Usage(
                    "--token-url, --client-id, --scope, --audience, --auth-method, --grant, --auth-url, --device-auth-url, --redirect-port and --confidential are for --kind oauth2".into(),
                ));
            }
            return Ok(None);
        }
        let grant = self.grant.unwrap_or_default();
        if grant != Grant::AuthorizationCode
            && (self.auth_url.is_some()
                || self.device_auth_url.is_some()
                || self.redirect_port.is_some()
                || self.confidential)
        {
            return Err(Error::Usage(
                "--auth-url, --device-auth-url, --redirect-port and --confidential are for --grant authorization_code".into(),
            ));
        }
        if grant == Grant::JwtBearer {
            // The endpoint and the client come from the key file, read with the value.
            return Ok(Some(ClientConfig {
                token_url: self.token_url.clone().unwrap_or_default(),
                client_id: self.client_id.clone().unwrap_or_default(),
                scope: self.scope.clone(),
                audience: self.audience.clone(),
                grant,
                ..ClientConfig::default()
            }));
        }
        if grant == Grant::AuthorizationCode
            && self.auth_url.is_none()
            && self.device_auth_url.is_none()
        {
            return Err(Error::Usage(
                "--grant authorization_code needs --auth-url URL (or --device-auth-url URL for `login --device`)".into(),
            ));
        }
        let (Some(token_url), Some(client_id)) = (&self.token_url, &self.client_id) else {
            return Err(Error::Usage(
                "--kind oauth2 needs --token-url URL and --client-id ID (the value stored is the client secret)".into(),
            ));
        };
        let config = ClientConfig {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            scope: self.scope.clone(),
            audience: self.audience.clone(),
            auth_method: self.auth_method.unwrap_or_default(),
            grant,
            auth_url: self.auth_url.clone(),
            device_auth_url: self.device_auth_url.clone(),
            redirect_port: self.redirect_port,
        };
        config.validate()?;
        Ok(Some(config))
    }
}

pub fn parse_period(s: &str) -> Result<Period, String> {
    s.parse::<Period>().map_err(|e| e.to_string())
}

pub fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    parse_date(s).map_err(|e| e.to_string())
}

/// Refuse control characters in text that is printed to terminals and stored in the manifest.
pub fn check_description(text: &str) -> Result<(), Error> {
    if text.chars().any(|c| c.is_control()) || text.len() > 1024 {
        return Err(Error::InvalidValue {
            what: "description",
            input: escape(text),
            reason: "it must be one line of at most 1024 bytes, without control characters".into(),
        });
    }
    Ok(())
}

/// `due 2027-01-31`, `due 2027-01-31 when the token expires`, `never due`.
pub fn due_summary(entry: &Entry, defaults: &Defaults) -> String {
    let what = entry
        .value_info
        .as_ref()
        .map_or("value", |info| info.format.describe());
    match (entry.due_at(defaults), entry.policy()) {
        (None, _) => "never due".into(),
        (Some(due), crate::model::rotation::Policy::Expiry(_)) => {
            format!("due {} when the {what} expires", output::date(due))
        }
        (Some(due), _) => format!("due {}", output::date(due)),
    }
}

/// A note when the value expires before the user's own policy makes it due.
pub fn expiry_note(name: &CredentialName, entry: &Entry, defaults: &Defaults) -> Option<String> {
    let expiry = entry.expires_before_due(defaults)?;
    let now = crate::model::rotation::now();
    Some(format!(
        "note: the value of {name} {} on {} ({}), before it is due for rotation",
        if expiry <= now { "expired" } else { "expires" },
        output::date(expiry),
        output::relative(expiry, now)
    ))
}

impl AddArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("add");
        let name = CredentialName::parse(&self.name)?;
        ctx.audit
            .note(|d| d.credentials = [name.to_string()].into());
        let env = match &self.env {
            Some(env) => EnvVarName::parse(env)?,
            None => name.default_env()?,
        };
        if let Some(text) = &self.description {
            check_description(text)?;
        }
        let mut oauth2 = self.oauth2_config()?;
        let mut upstream = None;
        self.upstream.change()?.apply(self.kind, &mut upstream)?;
        let now = crate::model::rotation::now();
        if self.rotated_at.is_some_and(|at| at > now) {
            return Err(Error::FutureDate {
                flag: "--rotated-at",
            }
            .into());
        }
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        // Check before asking for the value, so a typo costs no typing. The whole file:
        // a reader of one credential reads it again when the name is not there, which
        // for `add` is the usual case.
        let reader = store.reader(identity)?;
        reader.check_backend(self.backend)?;
        // `add --force` with the value already stored changes metadata only: the rotation
        // clock keeps running (else an overdue key would look fresh). A value that cannot
        // be read counts as different: --force is how a lost one is replaced.
        let old = match reader.entry(&name) {
            Ok(_) if !self.force => {
                return Err(Error::Exists {
                    name: name.to_string(),
                }
                .into());
            }
            Ok(entry) => reader
                .value_uncached(&name, &entry)
                .ok()
                .map(|value| (entry.sha256, value)),
            Err(Error::CredentialNotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        drop(reader);
        let value = match oauth2.as_mut() {
            Some(config) => super::login::initial_value(
                ctx,
                &name,
                config,
                self.confidential,
                self.from_file.as_deref(),
            )?,
            None => read_value(ctx, &name, self.from_file.as_deref())?,
        };
        let mut txn = store.begin(identity)?;
        let previous = txn.entry(&name).cloned();
        if previous.is_some() && !self.force {
            return Err(Error::Exists {
                name: name.to_string(),
            }
            .into());
        }
        let same_value = match (&previous, &old) {
            (Some(previous), Some((sha256, old_value))) => {
                previous.sha256 == *sha256
                    && bool::from(old_value.expose_secret().ct_eq(value.expose_secret()))
            }
            _ => false,
        };
        drop(old);
        let rotated_at = match (self.rotated_at, &previous) {
            (Some(at), _) => at,
            (None, Some(previous)) if same_value => previous.rotated_at,
            _ => now,
        };
        // The date given survives a later `rotate` in the history.
        let reasons: Vec<String> = (self.rotated_at.filter(|at| *at < now))
            .map(|at| format!("last rotated {} (--rotated-at)", output::date(at)))
            .into_iter()
            .chain(same_value.then(|| "same value; the rotation clock keeps running".into()))
            .collect();
        let new = NewEntry {
            env,
            kind: self.kind,
            backend: self.backend,
            description: self.description,
            rotated_at,
            rotate_every: if self.no_rotation {
                Some(RotateEvery::Never)
            } else {
                self.rotate_every.map(RotateEvery::Every)
            },
            due: self.due,
            oauth2: oauth2.map(Box::new),
            upstream,
        };
        let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
        let entry = txn
            .put_value(&name, value.expose_secret(), new, now, "created", reason)?
            .clone();
        let defaults = &txn.manifest().defaults;
        let summary = format!(
            "stored {name} as {} ({}, {})",
            entry.env,
            entry.backend.as_str(),
            due_summary(&entry, defaults)
        );
        let mut notes: Vec<String> = expiry_note(&name, &entry, defaults).into_iter().collect();
        if same_value && self.rotated_at.is_none() {
            notes.push(format!(
                "note: the value is the one already stored: {name} keeps its rotation date {} (use `agentcred edit` to change metadata only)",
                output::date(rotated_at)
            ));
        }
        let due = entry.due_at(defaults);
        if crate::model::rotation::status(due, now, defaults.due_soon_window)
            == crate::model::rotation::Status::Overdue
            && let Some(due) = due
        {
            notes.push(format!(
                "note: {name} is already overdue for rotation (due {}); `agentcred rotate {name}` stores a new value",
                output::date(due)
            ));
        }
        ctx.audit.ok()?;
        txn.commit()?;
        let mut stderr = std::io::stderr().lock();
        writeln!(stderr, "{summary}")?;
        for note in notes {
            writeln!(stderr, "{note}")?;
        }
        Ok(())
    }
}
