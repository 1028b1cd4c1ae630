//! The upstream flags shared by `add` and `edit` (CONTRACT section 10):
//! `--provider P | --upstream URL [--header 'H: FMT'] [--base-url-env VAR] | --no-upstream`.

use clap::Args;

use crate::error::Error;
use crate::model::upstream::{DEFAULT_HEADER, Upstream, UpstreamChange};

const HEADING: &str = "Upstream for exec --broker";

/// Where `exec --broker` may send the credential.
#[derive(Debug, Default, Args)]
pub struct UpstreamFlags {
    /// Use a preset upstream: openai, anthropic, github, mistral, groq, openrouter,
    /// huggingface (URL, header and base-URL variable)
    #[arg(long, value_name = "NAME", help_heading = HEADING, conflicts_with_all = ["upstream", "header", "no_upstream"])]
    provider: Option<String>,

    /// The API's base URL: https://, or http:// to a loopback address; may have a path
    /// prefix (https://api.example.com/v1)
    #[arg(long, value_name = "URL", help_heading = HEADING, conflicts_with = "no_upstream")]
    upstream: Option<String>,

    /// The header that carries the value, with {} for it (or {base64}) [default:
    /// 'Authorization: Bearer {}']
    #[arg(long, value_name = "'NAME: FORMAT'", help_heading = HEADING, conflicts_with = "no_upstream")]
    header: Option<String>,

    /// The variable through which programs find the API (e.g. OPENAI_BASE_URL); the
    /// broker's URL goes there
    #[arg(long, value_name = "VAR", help_heading = HEADING, conflicts_with = "no_upstream")]
    base_url_env: Option<String>,

    /// Remove the upstream (edit)
    #[arg(long, help_heading = HEADING)]
    no_upstream: bool,
}

impl UpstreamFlags {
    /// What the flags ask for, checked.
    pub fn change(&self) -> Result<UpstreamChange, Error> {
        if self.no_upstream {
            return Ok(UpstreamChange::Remove);
        }
        if let Some(provider) = &self.provider {
            let mut upstream = crate::model::provider::upstream(provider)?;
            if let Some(var) = &self.base_url_env {
                upstream = Upstream::new(&upstream.url, &upstream.header, Some(var))?;
            }
            return Ok(UpstreamChange::Set(upstream));
        }
        if self.upstream.is_none() && self.header.is_none() && self.base_url_env.is_none() {
            return Ok(UpstreamChange::Keep);
        }
        // Checked here as well as when applied, so that `add` refuses a bad URL or header
        // before it asks for the value.
        if let Some(url) = &self.upstream {
            Upstream::new(
                url,
                self.header.as_deref().unwrap_or(DEFAULT_HEADER),
                self.base_url_env.as_deref(),
            )?;
        }
        Ok(UpstreamChange::Update {
            url: self.upstream.clone(),
            header: self.header.clone(),
            base_url_env: self.base_url_env.clone(),
        })
    }
}
