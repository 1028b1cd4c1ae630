//! `agentcred edit`: change a credential's metadata. The value and the rotation clock are
//! untouched: fixing a description must not make an overdue key look fresh (as `add
//! --force` did).

use clap::Args;
use jiff::Timestamp;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::manifest::RotateEvery;
use crate::model::credential::{CredentialName, EnvVarName};
use crate::model::rotation::Period;
use crate::store::EntryEdit;

use super::add::{check_description, due_summary, parse_period, parse_timestamp};

/// Change a credential's metadata (the value and its rotation date stay)
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred edit gh-token --description 'deploy bot PAT, repo scope'
  agentcred edit gh-token --env GITHUB_TOKEN
  agentcred edit gh-token --rotate-every 30d
  agentcred edit legacy-key --due 2027-01-31
  agentcred edit gh-token --provider github         # exec --broker can broker it
  agentcred edit gh-token --no-upstream
  agentcred edit gh-token --description ''          # clears it

To change the value, `agentcred rotate NAME`; to change the name, `agentcred rename`.")]
pub struct EditArgs {
    /// Credential name
    name: String,

    /// Inject it as this environment variable
    #[arg(long, value_name = "VAR")]
    env: Option<String>,

    /// A note for people (no secrets); '' clears it
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,

    /// Rotation period from its last rotation, like 90d, 12w, 6mo, 1y
    #[arg(long, value_name = "DUR", value_parser = parse_period, conflicts_with_all = ["due", "no_rotation"])]
    rotate_every: Option<Period>,

    /// Due for rotation on this date (2027-01-31 or RFC 3339)
    #[arg(long, value_name = "DATE", value_parser = parse_timestamp, conflicts_with = "no_rotation")]
    due: Option<Timestamp>,

    /// Never due for rotation
    #[arg(long)]
    no_rotation: bool,

    #[command(flatten)]
    upstream: super::upstream_flags::UpstreamFlags,
}

impl EditArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("edit");
        let name = CredentialName::parse(&self.name)?;
        ctx.audit
            .note(|d| d.credentials = [name.to_string()].into());
        let env = self.env.as_deref().map(EnvVarName::parse).transpose()?;
        if let Some(text) = self.description.as_deref().filter(|t| !t.is_empty()) {
            check_description(text)?;
        }
        let rotation = match (self.rotate_every, self.due, self.no_rotation) {
            (Some(period), ..) => Some((Some(RotateEvery::Every(period)), None)),
            (None, Some(due), _) => Some((None, Some(due))),
            (None, None, true) => Some((Some(RotateEvery::Never), None)),
            (None, None, false) => None,
        };
        let upstream = self.upstream.change()?;
        let keep_upstream = upstream == crate::model::upstream::UpstreamChange::Keep;
        if env.is_none() && self.description.is_none() && rotation.is_none() && keep_upstream {
            return Err(Error::Usage(
                "nothing to change: give --env, --description, --rotate-every, --due, --no-rotation, --provider, --upstream, --header, --base-url-env or --no-upstream"
                    .into(),
            )
            .into());
        }
        let store = ctx.open_store()?;
        let mut txn = store.begin(ctx.identity()?)?;
        let (rotate_every, due) = match rotation {
            Some((rotate_every, due)) => (Some(rotate_every), Some(due)),
            None => (None, None),
        };
        let change = EntryEdit {
            env,
            description: self
                .description
                .map(|text| Some(text).filter(|t| !t.is_empty())),
            rotate_every,
            due,
            upstream: (!keep_upstream).then_some(upstream),
        };
        let (entry, changed) = txn.edit(&name, change, crate::model::rotation::now())?;
        let entry = entry.clone();
        let summary = format!(
            "edited {name}: {} (injected as {}, {})",
            changed.join(", "),
            entry.env,
            due_summary(&entry, &txn.manifest().defaults)
        );
        ctx.audit.ok()?;
        txn.commit()?;
        eprintln!("{summary}");
        Ok(())
    }
}
