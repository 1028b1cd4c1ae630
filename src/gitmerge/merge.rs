//! The three-way merge of two verified manifests, entry by entry. Pure: no files, no keys.
//!
//! Each credential, agent and store setting (defaults, vault) is one unit. A unit changed on
//! one side only takes that side; changed the same way on both sides, either; changed
//! differently (two rotations of one credential, one side deleting what the other edited)
//! is a conflict naming it, unless a side was chosen for it with `agentcred resolve`.
//! Units compare by their whole serialized form, so two rotations never look alike even
//! with the same metadata: the secret file's hash differs.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::manifest::conflict::Side;
use crate::model::credential::BackendKind;
use crate::util::output::escape;

/// A merged manifest (not yet sealed) and what could not be merged.
pub struct Outcome {
    pub merged: Manifest,
    /// `KIND NAME` and why, for each unit still in conflict.
    pub conflicts: Vec<(String, String)>,
}

/// Merge `ours` and `theirs` from `base` (`None`: both sides added the file). `resolved`
/// holds the sides chosen so far, by `KIND NAME`. Refuses merges it cannot make safe.
pub fn merge(
    base: Option<&Manifest>,
    ours: &Manifest,
    theirs: &Manifest,
    resolved: &BTreeMap<String, Side>,
) -> Result<Outcome> {
    if ours.store_id != theirs.store_id || base.is_some_and(|b| b.store_id != ours.store_id) {
        return Err(Error::integrity(
            "agentcred.toml",
            format!(
                "the two sides are different stores (ids {} and {}); agentcred merges two versions of one store only",
                escape(&ours.store_id),
                escape(&theirs.store_id)
            ),
        ));
    }
    let base_recipients = base.map(|b| b.recipients_sha256.as_str());
    let recipients_sha256 = match (
        Some(ours.recipients_sha256.as_str()) == base_recipients,
        Some(theirs.recipients_sha256.as_str()) == base_recipients,
    ) {
        _ if ours.recipients_sha256 == theirs.recipients_sha256 => ours.recipients_sha256.clone(),
        (true, false) => {
            refuse_stale_values(base, ours, "ours", "theirs")?;
            theirs.recipients_sha256.clone()
        }
        (false, true) => {
            refuse_stale_values(base, theirs, "theirs", "ours")?;
            ours.recipients_sha256.clone()
        }
        _ => {
            return Err(Error::Unsupported(
                "both sides changed the store's recipients; agentcred does not merge two recipients changes (each re-encrypted every value to its own list)".into(),
            ));
        }
    };
    let mut conflicts = Vec::new();
    let mut merged = ours.clone();
    merged.recipients_sha256 = recipients_sha256;
    merged.generation = ours.generation.max(theirs.generation) + 1;
    merged.credentials = merge_map(
        "credential",
        base.map(|b| &b.credentials),
        &ours.credentials,
        &theirs.credentials,
        resolved,
        &mut conflicts,
    );
    merged.agents = merge_map(
        "agent",
        base.map(|b| &b.agents),
        &ours.agents,
        &theirs.agents,
        resolved,
        &mut conflicts,
    );
    let defaults = merge_map(
        "setting",
        base.map(|b| named("defaults", Some(b.defaults.clone())))
            .as_ref(),
        &named("defaults", Some(ours.defaults.clone())),
        &named("defaults", Some(theirs.defaults.clone())),
        resolved,
        &mut conflicts,
    );
    if let Some(defaults) = defaults.into_values().next() {
        merged.defaults = defaults;
    }
    let vault = merge_map(
        "setting",
        base.map(|b| named("vault", b.vault.clone())).as_ref(),
        &named("vault", ours.vault.clone()),
        &named("vault", theirs.vault.clone()),
        resolved,
        &mut conflicts,
    );
    merged.vault = vault.into_values().next();
    // An agent may be granted a credential the other side removed: drop the grant
    // rather than keep a name that means nothing (or, later, a new credential by chance).
    for agent in merged.agents.values_mut() {
        agent
            .allow
            .retain(|name| merged.credentials.contains_key(name));
    }
    Ok(Outcome { merged, conflicts })
}

/// A store setting as a one-unit map (none when it is not set).
fn named<T>(name: &str, value: Option<T>) -> BTreeMap<String, T> {
    value.map(|v| (name.to_string(), v)).into_iter().collect()
}

/// The side that kept the old recipients may not bring values encrypted to them: a listed
/// recipient could not read them.
fn refuse_stale_values(
    base: Option<&Manifest>,
    side: &Manifest,
    side_name: &str,
    other: &str,
) -> Result<()> {
    let stale: Vec<&str> = side
        .credentials
        .iter()
        .filter(|(_, entry)| entry.backend == BackendKind::Age)
        .filter(|(name, entry)| {
            base.and_then(|b| b.credentials.get(*name))
                .is_none_or(|before| before.sha256 != entry.sha256)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    Err(Error::Unsupported(format!(
        "{other} changed the store's recipients while {side_name} wrote {} to the old recipients: a listed recipient could not read {}",
        stale
            .iter()
            .map(|n| format!("credential {}", escape(n)))
            .collect::<Vec<_>>()
            .join(", "),
        if stale.len() == 1 { "it" } else { "them" }
    )))
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn merge_map<T: Clone + Serialize>(
    kind: &str,
    base: Option<&BTreeMap<String, T>>,
    ours: &BTreeMap<String, T>,
    theirs: &BTreeMap<String, T>,
    resolved: &BTreeMap<String, Side>,
    conflicts: &mut Vec<(String, String)>,
) -> BTreeMap<String, T> {
    let names: BTreeSet<&String> = ours
        .keys()
        .chain(theirs.keys())
        .chain(base.into_iter().flat_map(|b| b.keys()))
        .collect();
    let mut out = BTreeMap::new();
    for name in names {
        let b = base.and_then(|b| b.get(name)).map(json);
        let o = ours.get(name);
        let t = theirs.get(name);
        let (oj, tj) = (o.map(json), t.map(json));
        let pick = if oj == tj || tj == b {
            o
        } else if oj == b {
            t
        } else {
            let key = format!("{kind} {name}");
            match resolved.get(&key) {
                Some(Side::Ours) => o,
                Some(Side::Theirs) => t,
                None => {
                    let why = match (&b, o, t) {
                        (None, _, _) => "added differently on both sides",
                        (_, None, _) => "removed on ours and changed on theirs",
                        (_, _, None) => "changed on ours and removed on theirs",
                        _ => "changed differently on both sides",
                    };
                    conflicts.push((key, why.to_string()));
                    o
                }
            }
        };
        if let Some(value) = pick {
            out.insert(name.clone(), value.clone());
        }
    }
    out
}

/// A word on what changed, for a credential conflict whose value changed on both sides.
pub fn value_note(
    base: Option<&Manifest>,
    ours: &Manifest,
    theirs: &Manifest,
    key: &str,
) -> &'static str {
    let Some(name) = key.strip_prefix("credential ") else {
        return "";
    };
    let sha = |m: &Manifest| m.credentials.get(name).and_then(|e| e.sha256.clone());
    let before = base.and_then(sha);
    let (o, t) = (sha(ours), sha(theirs));
    if o.is_some() && t.is_some() && o != before && t != before && o != t {
        " (its value was changed on both sides)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Agent, Entry};

    fn entry(sha: &str) -> Entry {
        let at = "2026-01-01T00:00:00Z".parse().unwrap();
        Entry {
            sha256: Some(sha.into()),
            ..Entry::plain("A", at)
        }
    }

    fn agent(allow: &[&str]) -> Agent {
        Agent {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            program: None,
            program_sha256: None,
            clean_env: false,
            mask: false,
            deny_overdue: false,
            sandbox: false,
            broker: false,
            program_name: None,
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            created_by: "me".into(),
            commands: Default::default(),
            mac: String::new(),
        }
    }

    fn base() -> Manifest {
        let mut m = Manifest::new("0123456789abcdef".into(), "r0".into());
        m.generation = 3;
        m.credentials.insert("shared".into(), entry("s0"));
        m
    }

    #[test]
    fn different_entries_combine_above_both_generations() {
        let b = base();
        let mut o = b.clone();
        o.generation = 5;
        o.credentials.insert("alpha".into(), entry("a"));
        let mut t = b.clone();
        t.generation = 4;
        t.credentials.insert("beta".into(), entry("b"));
        t.agents.insert("ci".into(), agent(&["shared", "beta"]));
        let out = merge(Some(&b), &o, &t, &BTreeMap::new()).unwrap();
        assert!(out.conflicts.is_empty());
        assert_eq!(out.merged.generation, 6);
        let names: Vec<_> = out.merged.credentials.keys().cloned().collect();
        assert_eq!(names, ["alpha", "beta", "shared"]);
        assert_eq!(out.merged.agents["ci"].allow.len(), 2);
    }

    #[test]
    fn the_same_entry_changed_differently_conflicts_until_a_side_is_chosen() {
        let b = base();
        let mut o = b.clone();
        o.credentials.insert("shared".into(), entry("o"));
        let mut t = b.clone();
        t.credentials.insert("shared".into(), entry("t"));
        let out = merge(Some(&b), &o, &t, &BTreeMap::new()).unwrap();
        assert_eq!(out.conflicts.len(), 1);
        assert_eq!(out.conflicts[0].0, "credential shared");
        let chosen = BTreeMap::from([("credential shared".to_string(), Side::Theirs)]);
        let out = merge(Some(&b), &o, &t, &chosen).unwrap();
        assert!(out.conflicts.is_empty());
        assert_eq!(
            out.merged.credentials["shared"].sha256.as_deref(),
            Some("t")
        );
        // The same change on both sides is no conflict.
        let out = merge(Some(&b), &o, &o.clone(), &BTreeMap::new()).unwrap();
        assert!(out.conflicts.is_empty());
        // Removed on one side, changed on the other.
        let mut r = b.clone();
        r.credentials.remove("shared");
        let out = merge(Some(&b), &r, &t, &BTreeMap::new()).unwrap();
        assert_eq!(out.conflicts[0].1, "removed on ours and changed on theirs");
        // Removed on one side, untouched on the other: removed, and grants dropped.
        let mut t2 = b.clone();
        t2.agents.insert("ci".into(), agent(&["shared"]));
        let out = merge(Some(&b), &r, &t2, &BTreeMap::new()).unwrap();
        assert!(out.conflicts.is_empty());
        assert!(out.merged.credentials.is_empty());
        assert!(out.merged.agents["ci"].allow.is_empty());
    }

    #[test]
    fn recipients_changes_are_refused_where_a_value_would_be_unreadable() {
        let b = base();
        let mut o = b.clone();
        o.recipients_sha256 = "r1".into();
        let mut t = b.clone();
        t.recipients_sha256 = "r2".into();
        assert!(merge(Some(&b), &o, &t, &BTreeMap::new()).is_err());
        // One side re-encrypted, the other added a value to the old recipients.
        t.recipients_sha256 = "r0".into();
        t.credentials.insert("beta".into(), entry("b"));
        let err = merge(Some(&b), &o, &t, &BTreeMap::new())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("credential beta"), "{err}");
        // Only agents changed on the other side: fine.
        let mut t = b.clone();
        t.agents.insert("ci".into(), agent(&[]));
        let out = merge(Some(&b), &o, &t, &BTreeMap::new()).unwrap();
        assert_eq!(out.merged.recipients_sha256, "r1");
    }

    #[test]
    fn settings_conflict_by_name() {
        let b = base();
        let mut o = b.clone();
        o.defaults.rotate_every = "30d".parse().unwrap();
        let mut t = b.clone();
        t.defaults.rotate_every = "60d".parse().unwrap();
        let out = merge(Some(&b), &o, &t, &BTreeMap::new()).unwrap();
        assert_eq!(out.conflicts[0].0, "setting defaults");
        let chosen = BTreeMap::from([("setting defaults".to_string(), Side::Theirs)]);
        let out = merge(Some(&b), &o, &t, &chosen).unwrap();
        assert!(out.conflicts.is_empty());
        assert_eq!(out.merged.defaults.rotate_every.to_string(), "60d");
    }
}
