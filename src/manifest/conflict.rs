//! What `agentcred.toml` holds while a git merge of the store is stopped on conflicts.
//!
//! The merge driver (see `gitmerge`) writes this instead of a manifest when both sides
//! changed the same entry differently. It is deliberately not a manifest: every command
//! that reads the store refuses it (exit 6) with a hint naming `agentcred resolve`, so no
//! one works on a half-merged store or reseals it blindly. It holds no entry data, only
//! the names in conflict and the choices made so far; the three sides themselves stay in
//! git's index (stages 1, 2 and 3), where `resolve` reads and verifies them again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::output::escape;

/// The first line of a conflict file.
pub const MARKER: &str = "# agentcred: unresolved git merge of this store";

/// A side chosen by `agentcred resolve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Ours,
    Theirs,
}

/// The state of a stopped merge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unresolved {
    /// Each conflict as `KIND NAME` (`credential beta`, `agent ci`, `setting defaults`).
    pub conflicts: Vec<String>,
    /// Why each is a conflict, in the same order.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Choices made so far, by `KIND NAME`.
    #[serde(default)]
    pub resolved: BTreeMap<String, Side>,
}

#[derive(Serialize, Deserialize)]
struct File {
    unresolved_merge: Unresolved,
}

impl Unresolved {
    /// The conflicts not yet given a side.
    pub fn open(&self) -> Vec<&str> {
        self.conflicts
            .iter()
            .filter(|c| !self.resolved.contains_key(*c))
            .map(String::as_str)
            .collect()
    }

    pub fn render(&self) -> String {
        let body = toml::to_string(&File {
            unresolved_merge: self.clone(),
        })
        .unwrap_or_else(|e| unreachable!("the conflict file always serializes: {e}"));
        format!(
            "{MARKER}\n# Every agentcred command refuses the store until each conflict below has a side:\n# `agentcred resolve NAME --ours` or `--theirs`, then `git commit`.\n{body}"
        )
    }

    /// Parse a conflict file; `None` when `text` is not one.
    pub fn parse(text: &str) -> Result<Option<Unresolved>> {
        if !text.starts_with(MARKER) {
            return Ok(None);
        }
        let file: File = toml::from_str(text).map_err(|e| {
            Error::integrity(
                super::FILE_NAME,
                format!(
                    "its unresolved-merge record is damaged: {}",
                    escape(e.to_string().lines().next().unwrap_or(""))
                ),
            )
        })?;
        Ok(Some(file.unresolved_merge))
    }
}

/// Refuse a manifest that is a stopped merge (ours, or git's own conflict markers).
pub fn refuse_unmerged(text: &str) -> Result<()> {
    if let Some(unresolved) = Unresolved::parse(text)? {
        let open = unresolved.open();
        let conflicts = if open.is_empty() {
            "none left (run `agentcred resolve` once more to finish)".to_string()
        } else {
            open.iter()
                .map(|c| escape(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::MergeUnresolved { conflicts });
    }
    if text.starts_with("<<<<<<< ") || text.contains("\n<<<<<<< ") {
        return Err(Error::GitConflictMarkers);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses() {
        let mut u = Unresolved {
            conflicts: vec!["credential beta".into(), "agent ci".into()],
            reasons: vec!["a".into(), "b".into()],
            resolved: BTreeMap::new(),
        };
        u.resolved.insert("agent ci".into(), Side::Theirs);
        let text = u.render();
        assert_eq!(Unresolved::parse(&text).unwrap(), Some(u.clone()));
        assert_eq!(u.open(), ["credential beta"]);
        let err = refuse_unmerged(&text).unwrap_err().to_string();
        assert!(
            err.contains("credential beta") && !err.contains("agent ci"),
            "{err}"
        );
        assert!(matches!(
            refuse_unmerged("a\n<<<<<<< HEAD\n"),
            Err(Error::GitConflictMarkers)
        ));
        assert!(refuse_unmerged("format = 1\n").is_ok());
        assert!(Unresolved::parse("format = 1\n").unwrap().is_none());
    }
}
