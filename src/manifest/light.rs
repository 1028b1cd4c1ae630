//! Reading every credential entry of a large sealed manifest quickly, for the commands that
//! need all of them but not their history (`exec` of every credential, `list`).
//!
//! The TOML parser costs about 6 µs per entry (60 ms for 10,000), most of it on the
//! history tables. A sealed manifest is in the layout agentcred writes, so each
//! `[credentials.NAME]` section is read here line by line: plain `key = "text"` and
//! `key = 123` lines, its `[[credentials.NAME.history]]` tables skipped. A section with
//! anything else (an escape in a string, a nested table such as `upstream`, a key this
//! reader does not know, a value it would have to interpret differently) is handed to the
//! TOML parser instead, so the result is always the one [`Manifest::parse_sealed`] gives,
//! minus the history (a unit test compares the two).
//!
//! [`Manifest::parse_sealed`]: super::Manifest::parse_sealed

use std::collections::BTreeMap;
use std::str::FromStr;

use jiff::Timestamp;

use super::*;

/// A string value as agentcred writes it: `"text"` without escapes, or `'text'`.
fn plain_string(value: &str) -> Option<&str> {
    let quote = value.as_bytes().first().copied()?;
    if !matches!(quote, b'"' | b'\'') || value.len() < 2 || !value.ends_with(quote as char) {
        return None;
    }
    let inner = &value[1..value.len() - 1];
    // Multi-line strings, escapes and quotes inside: the TOML parser's job.
    if inner.contains(['"', '\'', '\\']) || inner.chars().any(char::is_control) {
        return None;
    }
    Some(inner)
}

/// Read one `[credentials.NAME]` section; `None` for anything this reader does not handle
/// exactly as the TOML parser would. `lean`: without the description and the MAC (see
/// [`super::excerpt::Keep::ForValues`]), which are checked but not kept.
pub(super) fn read_section(section: &str, lean: bool) -> Option<(String, Entry)> {
    let mut lines = section.split('\n');
    let key = lines
        .next()?
        .strip_prefix("[credentials.")?
        .strip_suffix(']')?;
    let name = match key.strip_prefix('"') {
        Some(quoted) => plain_string(&format!("\"{quoted}"))?.to_string(),
        None if key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            key.to_string()
        }
        None => return None,
    };
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    let mut in_history = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            // `[[credentials.KEY.history]]`: lines in it (a multi-line string's too) are
            // skipped; any other line starting with `[` is a table this reader leaves to
            // the TOML parser, and a value starting `"""` fails `plain_string`.
            let is_history = line
                .strip_prefix("[[credentials.")
                .and_then(|l| l.strip_suffix(".history]]"))
                .is_some_and(|k| k == key);
            if is_history {
                in_history = true;
                continue;
            }
            return None;
        }
        if in_history {
            continue;
        }
        let (field, value) = line.split_once(" = ")?;
        if fields.insert(field, value).is_some() {
            return None;
        }
    }
    let text = |field: &str| fields.get(field).and_then(|v| plain_string(v));
    let timestamp = |field: &str| text(field).and_then(|v| Timestamp::from_str(v).ok());
    let optional = |field: &str| -> Option<Option<&str>> {
        match fields.get(field) {
            None => Some(None),
            Some(v) => plain_string(v).map(Some),
        }
    };
    let known = [
        "env",
        "kind",
        "backend",
        "description",
        "created_at",
        "rotated_at",
        "rotate_every",
        "due",
        "sha256",
        "vault_version",
        "mac",
    ];
    if fields.keys().any(|f| !known.contains(f)) {
        return None;
    }
    let kind = match text("kind")? {
        "secret" => Kind::Secret,
        "oauth2" => Kind::Oauth2,
        "file" => Kind::File,
        _ => return None,
    };
    let backend = match text("backend")? {
        "age" => BackendKind::Age,
        "keychain" => BackendKind::Keychain,
        "vault" => BackendKind::Vault,
        _ => return None,
    };
    let due = match fields.get("due") {
        None => None,
        Some(_) => Some(timestamp("due")?),
    };
    let rotate_every = match optional("rotate_every")? {
        None => None,
        Some(v) => Some(RotateEvery::from_str(v).ok()?),
    };
    let vault_version = match fields.get("vault_version") {
        None => None,
        Some(v)
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with('0') =>
        {
            Some(v.parse().ok()?)
        }
        Some(_) => return None,
    };
    let description = optional("description")?;
    let mac = optional("mac")?;
    let entry = Entry {
        env: EnvVarName::parse(text("env")?).ok()?,
        kind,
        backend,
        description: description.filter(|_| !lean).map(String::from),
        created_at: timestamp("created_at")?,
        rotated_at: timestamp("rotated_at")?,
        rotate_every,
        due,
        sha256: optional("sha256")?.map(String::from),
        vault_version,
        value_info: None,
        oauth2: None,
        upstream: None,
        history: Vec::new(),
        mac: mac.filter(|_| !lean).map(String::from).unwrap_or_default(),
    };
    Some((name, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `parse_sealed` gives, with the histories emptied.
    fn reference(text: &str) -> serde_json::Value {
        let mut manifest = Manifest::parse_sealed(text).unwrap();
        for entry in manifest.credentials.values_mut() {
            entry.history.clear();
        }
        serde_json::to_value(&manifest.credentials).unwrap()
    }

    fn entry(env: &str) -> Entry {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        Entry {
            sha256: Some("ab".repeat(32)),
            history: vec![Event {
                at,
                action: "created".into(),
                by: "me@host".into(),
                reason: Some("found [credentials.x] in a.txt:3".into()),
            }],
            ..Entry::plain(env, at)
        }
    }

    #[test]
    fn the_same_entries_as_the_toml_parser() {
        let key = StoreKey::generate().unwrap();
        let mut m = Manifest::new("0123456789abcdef".into(), "ff".repeat(32));
        let descriptions = [
            "plain text",
            "with \"quotes\"",
            "it's",
            "back\\slash",
            "tab\there",
            "new\nline",
            "[credentials.z]",
            "ünïcode ✓",
            "",
        ];
        for (i, description) in descriptions.iter().enumerate() {
            let mut e = entry(&format!("VAR_{i}"));
            e.description = Some(description.to_string());
            e.rotate_every = match i % 3 {
                0 => None,
                1 => Some(RotateEvery::Never),
                _ => Some(RotateEvery::Every("30d".parse().unwrap())),
            };
            e.due = (i % 2 == 0).then(|| "2027-03-04T05:06:07Z".parse().unwrap());
            e.kind = [Kind::Secret, Kind::File, Kind::Oauth2][i % 3];
            e.backend = [BackendKind::Age, BackendKind::Keychain, BackendKind::Vault][i % 3];
            e.vault_version = (e.backend == BackendKind::Vault).then_some(i as u64 * 7);
            m.credentials.insert(format!("cred-{i}"), e);
        }
        m.credentials
            .insert("a.dotted.name".into(), entry("DOTTED"));
        let mut with_upstream = entry("UP");
        with_upstream.upstream = Some(Box::new(
            toml::from_str(
                "url = \"https://api.example.com/v1\"\nheader = \"Authorization: Bearer {}\"\n",
            )
            .unwrap(),
        ));
        m.credentials.insert("up".into(), with_upstream);
        let mut with_info = entry("INFO");
        with_info.value_info = Some(Box::new(crate::model::value_info::ValueInfo {
            format: crate::model::value_info::ValueFormat::Jwt,
            expires_at: Some("2027-01-01T00:00:00Z".parse().unwrap()),
            client_email: None,
            private_key_id: None,
        }));
        m.credentials.insert("info".into(), with_info);
        let mut bare = entry("BARE");
        bare.sha256 = None;
        bare.history.clear();
        m.credentials.insert("bare".into(), bare);
        m.agents.insert(
            "bot".into(),
            toml::from_str(
                "allow = [\"cred-1\"]\ncreated_at = \"2026-01-01T00:00:00Z\"\ncreated_by = \"me\"\n",
            )
            .unwrap(),
        );
        let text = m.render(&key);
        let light = Manifest::parse_sealed_without_history(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&light.credentials).unwrap(),
            reference(&text)
        );
        assert_eq!(light.agents.len(), 1);
        // The plain sections were read here, the others by the TOML parser.
        let plain = text
            .split("\n\n")
            .filter(|s| s.starts_with("[credentials."))
            .filter(|s| read_section(&format!("{s}\n"), false).is_some())
            .count();
        assert!(plain >= 6, "{plain}");
        for section in ["[credentials.up]", "[credentials.info]"] {
            let start = text.find(section).unwrap();
            let end = text[start..]
                .match_indices("\n[")
                .map(|(i, _)| start + i + 1)
                .find(|&i| starts_section(&text[i..]))
                .unwrap_or(text.len());
            assert!(
                read_section(&text[start..end], false).is_none(),
                "{section}"
            );
        }
    }

    #[test]
    fn an_unknown_key_or_value_goes_to_the_toml_parser() {
        let base = "[credentials.a]\nenv = \"A\"\nkind = \"secret\"\nbackend = \"age\"\ncreated_at = \"2026-01-01T00:00:00Z\"\nrotated_at = \"2026-01-01T00:00:00Z\"\n";
        assert!(read_section(base, false).is_some());
        for extra in [
            "surprise = \"x\"\n",
            "kind = \"secret\"\n",
            "vault_version = 007\n",
            "vault_version = -1\n",
            "due = 2026-01-01T00:00:00Z\n",
            "rotate_every = \"19999y\"\n",
            "description = \"a\\\"b\"\n",
            "sha256 = [1]\n",
        ] {
            let section = format!("{base}{extra}");
            assert!(read_section(&section, false).is_none(), "{extra}");
            // And the whole reader still says what the TOML parser says about it.
            let text = format!(
                "format = 1\nstore_id = \"0123456789abcdef\"\ngeneration = 1\nrecipients_sha256 = \"f\"\nseal = \"s\"\n\n{section}"
            );
            assert_eq!(
                Manifest::parse_sealed_without_history(&text).is_ok(),
                Manifest::parse_sealed(&text).is_ok(),
                "{extra}"
            );
        }
    }

    proptest::proptest! {
        /// Any description, name and dates: the same entries as the TOML parser.
        #[test]
        fn any_entry_reads_as_the_toml_parser_reads_it(
            description in "\\PC{0,24}",
            name in "[a-z0-9][a-z0-9._-]{0,20}",
            seconds in 0i64..4_000_000_000,
            every in proptest::option::of("[1-9][0-9]{0,3}(d|w|mo|y)|never"),
        ) {
            let Ok(name) = CredentialName::parse(&name) else { return Ok(()) };
            let key = StoreKey::generate().unwrap();
            let mut m = Manifest::new("0123456789abcdef".into(), "ff".repeat(32));
            let mut e = entry("VAR");
            e.description = Some(description);
            e.rotated_at = Timestamp::from_second(seconds).unwrap();
            e.rotate_every = every.and_then(|t| t.parse().ok());
            m.credentials.insert(name.to_string(), e);
            let text = m.render(&key);
            let light = Manifest::parse_sealed_without_history(&text).unwrap();
            proptest::prop_assert_eq!(
                serde_json::to_value(&light.credentials).unwrap(),
                reference(&text)
            );
        }
    }
}
