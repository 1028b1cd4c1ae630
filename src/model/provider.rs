//! Upstream presets for common APIs (`add --provider NAME`): pure data. Each fills the
//! three parts of an [`Upstream`]: URL, header template and base-URL variable.
//!
//! The variable is the one the provider's official SDK reads for its base URL where there
//! is one (README lists which SDKs honour which); the URL is the base that SDK expects
//! (with `/v1` where its paths do not carry it).

use crate::error::{Error, Result};
use crate::model::upstream::Upstream;

/// One preset.
pub struct Provider {
    pub name: &'static str,
    pub url: &'static str,
    pub header: &'static str,
    pub base_url_env: &'static str,
    /// How this provider's keys start: a placeholder starts the same way, for clients
    /// that check the shape of a key.
    pub key_prefix: &'static str,
}

pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "openai",
        url: "https://api.openai.com/v1",
        header: "Authorization: Bearer {}",
        base_url_env: "OPENAI_BASE_URL",
        key_prefix: "sk-",
    },
    Provider {
        name: "anthropic",
        url: "https://api.anthropic.com",
        header: "x-api-key: {}",
        base_url_env: "ANTHROPIC_BASE_URL",
        key_prefix: "sk-ant-",
    },
    Provider {
        name: "github",
        url: "https://api.github.com",
        header: "Authorization: Bearer {}",
        base_url_env: "GITHUB_API_URL",
        key_prefix: "ghp_",
    },
    Provider {
        name: "mistral",
        url: "https://api.mistral.ai",
        header: "Authorization: Bearer {}",
        base_url_env: "MISTRAL_BASE_URL",
        key_prefix: "",
    },
    Provider {
        name: "groq",
        url: "https://api.groq.com",
        header: "Authorization: Bearer {}",
        base_url_env: "GROQ_BASE_URL",
        key_prefix: "gsk_",
    },
    Provider {
        name: "openrouter",
        url: "https://openrouter.ai/api/v1",
        header: "Authorization: Bearer {}",
        base_url_env: "OPENROUTER_BASE_URL",
        key_prefix: "sk-or-v1-",
    },
    Provider {
        name: "huggingface",
        url: "https://huggingface.co",
        header: "Authorization: Bearer {}",
        base_url_env: "HF_ENDPOINT",
        key_prefix: "hf_",
    },
];

/// The names, for help text and completion.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().map(|p| p.name)
}

/// The preset called `name` (case-insensitive) as an upstream.
pub fn upstream(name: &str) -> Result<Upstream> {
    let provider = PROVIDERS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            Error::Usage(format!(
                "unknown provider {}; known: {}",
                crate::util::output::escape(name),
                names().collect::<Vec<_>>().join(", ")
            ))
        })?;
    Upstream::new(provider.url, provider.header, Some(provider.base_url_env))
}

/// The key prefix a placeholder for a value should start with: the longest known
/// provider prefix the value itself starts with (known prefixes only, so nothing of a
/// value's random part is copied).
pub fn key_prefix(value: &[u8]) -> &'static str {
    PROVIDERS
        .iter()
        .map(|p| p.key_prefix)
        .chain(["sk-proj-", "sk-ant-api03-", "github_pat_", "gho_", "ghs_"])
        .filter(|prefix| !prefix.is_empty() && value.starts_with(prefix.as_bytes()))
        .max_by_key(|prefix| prefix.len())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_a_valid_upstream() {
        for p in PROVIDERS {
            let u = upstream(p.name).unwrap();
            assert!(u.url.starts_with("https://"), "{}", p.name);
        }
        assert!(upstream("OpenAI").is_ok());
        assert!(upstream("nope").is_err());
    }

    #[test]
    fn prefixes_come_only_from_the_known_list() {
        assert_eq!(key_prefix(b"sk-proj-abcdef"), "sk-proj-");
        assert_eq!(key_prefix(b"sk-ant-api03-xyz"), "sk-ant-api03-");
        assert_eq!(key_prefix(b"ghp_abc"), "ghp_");
        assert_eq!(key_prefix(b"abc_def-ghi"), "");
    }
}
