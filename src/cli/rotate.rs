//! `agentcred rotate`: replace a credential's value, optionally generated and verified
//! first, and restart its rotation clock.
//!
//! Order matters: the old entry is read under the shared lock, the new value is obtained
//! (and verified) holding no lock at all, and only then is the exclusive lock taken for a
//! transaction that stages, records and commits. See [`crate::rotate`] for why.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretSlice};
use subtle::ConstantTimeEq;

use crate::cli::context::Ctx;
use crate::crypto::identity::Identity;
use crate::error::Error;
use crate::exec::{self, Injection};
use crate::manifest::Entry;
use crate::model::credential::{CredentialName, Kind};
use crate::oauth;
use crate::rotate;
use crate::store::Store;
use crate::util::output;

use super::add::{due_summary, expiry_note};
use super::input::read_value;

/// Replace a credential's value and restart its rotation clock
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred rotate openai-api-key                   # prompts, hidden
  printf %s \"$NEW\" | agentcred rotate gh-token      # from stdin
  agentcred rotate gcp-sa --from-file new-key.json
  agentcred rotate webhook-secret --generate 'openssl rand -hex 32'
  agentcred rotate gh-token --verify 'gh api user >/dev/null'   # gh reads GH_TOKEN

The new value comes from a hidden prompt on a terminal, else stdin, else --from-file, or
from the stdout of --generate CMD. --verify CMD runs with the new value in the credential's
variable (for a file credential, in a private file whose path is the variable; for an
oauth2 credential, an access token the new client secret or service-account key must
first obtain); if it fails, the old value is kept (exit 1). Both run under `sh -c`, before
anything is written: no reader ever sees an unverified value. A due date set with --due
applied to the old value; after a rotation the credential follows its period again. A
credential that holds a person's sign-in (--grant authorization_code) is not rotated
here: the server rotates its refresh token, and `agentcred login NAME` replaces it.")]
pub struct RotateArgs {
    /// Credential name
    name: String,

    /// Read the new value from this file, bytes kept exactly
    #[arg(long, value_name = "PATH", conflicts_with = "generate")]
    from_file: Option<PathBuf>,

    /// Take the new value from this command's stdout (run with `sh -c`)
    #[arg(long, value_name = "CMD")]
    generate: Option<String>,

    /// Check the new value with this command (run with `sh -c`, the value in the
    /// credential's variable); keep the old value if it fails
    #[arg(long, value_name = "CMD")]
    verify: Option<String>,
}

impl RotateArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("rotate");
        let name = CredentialName::parse(&self.name)?;
        ctx.audit
            .note(|d| d.credentials = [name.to_string()].into());
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        // Read the current entry and value (this also checks them), then let go of the lock.
        let (before, old_value) = {
            let reader = store.reader_for_one(identity, &name)?;
            let entry = reader.entry(&name)?;
            let value = reader.value_uncached(&name, &entry)?;
            (entry, value)
        };
        oauth::check_rotatable(&name, &before)?;
        let new_value = match &self.generate {
            Some(command) => rotate::generate(command, &name)?,
            None => read_value(ctx, &name, self.from_file.as_deref())?,
        };
        oauth::check_new_value(&name, &before, &new_value)?;
        if bool::from(new_value.expose_secret().ct_eq(old_value.expose_secret())) {
            return Err(Error::Unchanged {
                name: name.to_string(),
            }
            .into());
        }
        drop(old_value);
        if let Some(command) = &self.verify {
            // A program given an oauth2 credential gets access tokens, never the client
            // secret: the new secret must mint one, and CMD gets that token.
            let value = if before.kind == Kind::Oauth2 {
                oauth::mint(&name, &before, &new_value).map_err(|e| {
                    let what = match before.oauth2.as_deref().map(|c| c.grant) {
                        Some(oauth::Grant::JwtBearer) => "service-account key",
                        _ => "client secret",
                    };
                    anyhow::Error::from(e).context(format!(
                        "{name} keeps its old value: its new {what} did not obtain an access token"
                    ))
                })?
            } else {
                SecretSlice::from(new_value.expose_secret().to_vec())
            };
            let injection = Injection {
                name: name.clone(),
                env: before.env.clone(),
                kind: before.kind,
                value,
            };
            exec::check_injection(&injection)?;
            rotate::verify(command, &injection)?;
            if ctx.verbose {
                eprintln!("agentcred: the --verify command accepted the new value of {name}");
            }
        }
        store_value(ctx, &store, identity, &name, &before, &new_value)
    }
}

/// Write the new value in one transaction: stage, record, commit.
fn store_value(
    ctx: &Ctx,
    store: &Store,
    identity: &Identity,
    name: &CredentialName,
    before: &Entry,
    value: &SecretSlice<u8>,
) -> anyhow::Result<()> {
    let mut txn = store.begin(identity)?;
    let Some(current) = txn.entry(name).cloned() else {
        return Err(anyhow::Error::from(Error::CredentialNotFound {
            name: name.to_string(),
        })
        .context(format!(
            "{name} was removed while rotating; the new value was not stored"
        )));
    };
    let mut notes = Vec::new();
    if current.sha256 != before.sha256 {
        // Another writer replaced the value meanwhile: last writer wins, whole.
        notes.push(format!(
                "note: {name} was changed by someone else while rotating; this rotation replaces that change"
            ));
    }
    // Staged where the credential lives now (age file or keychain item).
    let now = crate::model::rotation::now();
    let (entry, cleared) = txn.rotate_value(name, value.expose_secret(), now)?;
    let entry = entry.clone();
    if let Some(due) = cleared {
        notes.push(format!(
            "note: the one-off due date {} was for the old value and is cleared",
            output::date(due)
        ));
    }
    let defaults = &txn.manifest().defaults;
    let summary = format!("rotated {name} ({})", due_summary(&entry, defaults));
    notes.extend(expiry_note(name, &entry, defaults));
    ctx.audit.ok()?;
    txn.commit()?;
    let mut stderr = std::io::stderr().lock();
    writeln!(stderr, "{summary}")?;
    for note in notes {
        writeln!(stderr, "{note}")?;
    }
    Ok(())
}
