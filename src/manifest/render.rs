//! Reading and writing the whole manifest: parse, verify, the canonical layout, and the
//! seal line over its bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::IgnoredAny;

use super::*;
use crate::crypto::integrity::{StoreKey, tags_equal};
use crate::error::{Error, Result};
use crate::util::output::escape;

/// Where [`Manifest::render_streamed`] takes each credential's entry.
pub type PutEntry<'p> = dyn FnMut(&str, Entry) -> std::io::Result<()> + 'p;

impl Manifest {
    pub fn new(store_id: String, recipients_sha256: String) -> Self {
        Manifest {
            format: FORMAT,
            store_id,
            generation: 0,
            recipients_sha256,
            seal: String::new(),
            defaults: Defaults::default(),
            vault: None,
            credentials: BTreeMap::new(),
            agents: BTreeMap::new(),
        }
    }

    /// Render the canonical text with fresh entry MACs and seal (tests, merges; a commit
    /// writes it to the file as it goes, see [`Manifest::render_into`]).
    pub fn render(&mut self, key: &StoreKey) -> String {
        let mut out = std::io::Cursor::new(Vec::new());
        self.render_into(key, &mut out)
            .unwrap_or_else(|e| unreachable!("writing to memory does not fail: {e}"));
        String::from_utf8(out.into_inner()).unwrap_or_else(|e| unreachable!("TOML is UTF-8: {e}"))
    }

    /// Write the canonical text with fresh entry MACs and seal to `out`, a section at a
    /// time: a manifest of 10,000 credentials is 3.7 MB, and building it in memory first
    /// took 5 MB at every write. The seal line comes after the header but covers what
    /// follows it, so a placeholder of its length is written there first and replaced
    /// once the rest is written. Each credential's MAC is made for its section's copy of
    /// the entry, not kept in `self` (a write reads the entries without their MACs: 0.8 MB
    /// for 10,000).
    pub fn render_into<W: std::io::Write + std::io::Seek>(
        &mut self,
        key: &StoreKey,
        out: &mut W,
    ) -> std::io::Result<()> {
        let credentials = std::mem::take(&mut self.credentials);
        let rendered = self.render_streamed(key, out, &mut |put| {
            credentials
                .iter()
                .try_for_each(|(name, entry)| put(name, entry.clone()))
        });
        self.credentials = credentials;
        rendered
    }

    /// [`Manifest::render_into`] with the credentials' entries (whatever `self` holds of
    /// them aside) from `credentials`, which hands each to the function it is given, in
    /// name order: a commit that reads them from the committed file as it writes the new
    /// one holds one entry at a time (see `Store::begin_streamed`).
    pub fn render_streamed<W: std::io::Write + std::io::Seek>(
        &mut self,
        key: &StoreKey,
        out: &mut W,
        credentials: &mut dyn FnMut(&mut PutEntry) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let store_id = self.store_id.clone();
        for (name, agent) in &mut self.agents {
            agent.sign(key, &store_id, name);
        }
        let mut sealer = key.sealer();
        let mut put = |out: &mut W, text: &str| {
            sealer.update(text.as_bytes());
            out.write_all(text.as_bytes())
        };
        put(out, PREAMBLE)?;
        put(
            out,
            &toml_string(&HeaderOut {
                format: self.format,
                store_id: &self.store_id,
                generation: self.generation,
                recipients_sha256: &self.recipients_sha256,
            }),
        )?;
        let seal_at = out.stream_position()?;
        let line = |seal: &str| format!("{SEAL_PREFIX}{seal}\"\n");
        let placeholder = line(&"=".repeat(SEAL_LEN));
        out.write_all(placeholder.as_bytes())?;
        let mut section = |out: &mut W, text: String| {
            put(out, "\n")?;
            put(out, &text)
        };
        section(
            out,
            toml_string(&DefaultsOut {
                defaults: &self.defaults,
            }),
        )?;
        if let Some(vault) = &self.vault {
            section(
                out,
                toml_string(&VaultTable {
                    vault: vault.clone(),
                }),
            )?;
        }
        credentials(&mut |name: &str, mut entry: Entry| {
            entry.sign(key, &store_id, name);
            let table = EntryTable {
                credentials: BTreeMap::from([(Cow::Borrowed(name), entry)]),
            };
            section(out, toml_string(&table))
        })?;
        for (name, agent) in &self.agents {
            let table = AgentTable {
                agents: BTreeMap::from([(Cow::Borrowed(name.as_str()), agent.clone())]),
            };
            section(out, toml_string(&table))?;
        }
        self.seal = sealer.finish();
        let sealed = line(&self.seal);
        if sealed.len() != placeholder.len() {
            return Err(std::io::Error::other(
                "the seal is not the length its place was kept for (a bug in agentcred)",
            ));
        }
        let end = out.stream_position()?;
        out.seek(std::io::SeekFrom::Start(seal_at))?;
        out.write_all(sealed.as_bytes())?;
        out.seek(std::io::SeekFrom::Start(end))?;
        Ok(())
    }

    /// Parse a manifest, verifying its seal when a key is given (and naming what changed
    /// when it does not match). Without a key, nothing is verified.
    pub fn load(text: &str, key: Option<&StoreKey>) -> Result<Manifest> {
        match key {
            Some(key) if seal_ok(text, key)? => Self::parse_sealed(text),
            Some(key) => Err(diagnose(&Self::parse_unverified(text)?, key)),
            None => Self::parse_unverified(text),
        }
    }

    /// Parse a manifest whose seal was verified, so its layout is the one [`render`]
    /// writes: the header, then one table per section. Parsing section by section keeps
    /// peak memory near the size of the result (the TOML parser's document tree for a
    /// 10,000-credential file is several times larger than the file).
    ///
    /// [`render`]: Manifest::render
    pub fn parse_sealed(text: &str) -> Result<Manifest> {
        Self::parse_sealed_with(text, true)
    }

    /// [`Manifest::parse_sealed`] without the credentials' history, which `exec` and
    /// `list` never use: most entries are read without the TOML parser (see
    /// [`super::light`]), about ten times faster.
    pub fn parse_sealed_without_history(text: &str) -> Result<Manifest> {
        Self::parse_sealed_with(text, false)
    }

    /// The manifest of a reader that parsed the credentials as the file went by
    /// ([`super::excerpt::hands`]): the other sections from `text`, which the seal was
    /// checked with, and those credentials (with or without history, as they were read).
    pub fn assemble(text: &str, credentials: BTreeMap<String, Entry>) -> Result<Manifest> {
        let mut manifest = Self::parse_sealed_with(text, false)?;
        // A credential in a section the streamed read did not take for one (`[ credentials.b ]`,
        // a `[credentials]` table): the whole-file read must see it, not lose it here.
        if !manifest.credentials.is_empty() {
            return Err(Error::integrity(
                FILE_NAME,
                "a credential's table is not in agentcred's own layout",
            ));
        }
        manifest.credentials = credentials;
        manifest.validate()?;
        Ok(manifest)
    }

    fn parse_sealed_with(text: &str, history: bool) -> Result<Manifest> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Section {
            defaults: Option<Defaults>,
            vault: Option<VaultSettings>,
            #[serde(default)]
            credentials: BTreeMap<String, Entry>,
            #[serde(default)]
            agents: BTreeMap<String, Agent>,
        }
        let header = header(text)?;
        let mut manifest = Manifest {
            format: header.format,
            store_id: header.store_id,
            generation: header.generation,
            recipients_sha256: header.recipients_sha256,
            seal: header.seal,
            defaults: Defaults::default(),
            vault: None,
            credentials: BTreeMap::new(),
            agents: BTreeMap::new(),
        };
        let mut credentials = SortedMap::default();
        let mut starts: Vec<usize> = text
            .match_indices("\n[")
            .map(|(i, _)| i + 1)
            .filter(|&i| starts_section(&text[i..]))
            .collect();
        starts.push(text.len());
        // Nothing between the header and the first section (which `header` would not
        // have read either): a sealed file never has anything there.
        if text.find("\n[").map_or(text.len(), |i| i + 1) != starts[0] {
            return Err(Error::integrity(
                FILE_NAME,
                "a table before the first section",
            ));
        }
        let mut seen_defaults = false;
        let mut tables: Vec<String> = Vec::new();
        for pair in starts.windows(2) {
            let text = &text[pair[0]..pair[1]];
            // A table of the top level (`[agents]`) twice is an error in one TOML file, and
            // each section on its own would not say so. Its header is read as TOML (quotes,
            // spaces, a comment); a header with a dot is a table's table.
            let first = text.lines().next().unwrap_or_default();
            if !first.contains('.')
                && let Ok(header) = toml::from_str::<BTreeMap<String, IgnoredAny>>(first)
                && let Some(table) = header.into_keys().next()
            {
                if tables.contains(&table) {
                    return Err(Error::integrity(
                        FILE_NAME,
                        format!("[{}] is defined twice", escape(&table)),
                    ));
                }
                tables.push(table);
            }
            if !history && let Some((name, entry)) = super::light::read_section(text, false) {
                if !credentials.insert(name, entry) {
                    return Err(Error::integrity(FILE_NAME, "a credential is defined twice"));
                }
                continue;
            }
            let mut section: Section = toml::from_str(text).map_err(toml_error)?;
            if !history {
                for entry in section.credentials.values_mut() {
                    entry.history = Vec::new();
                }
            }
            // Twice is refused here as the TOML parser refuses it in one file.
            if let Some(defaults) = section.defaults {
                if std::mem::replace(&mut seen_defaults, true) {
                    return Err(Error::integrity(FILE_NAME, "[defaults] is defined twice"));
                }
                manifest.defaults = defaults;
            }
            if section.vault.is_some() {
                if manifest.vault.is_some() {
                    return Err(Error::integrity(FILE_NAME, "[vault] is defined twice"));
                }
                manifest.vault = section.vault;
            }
            for (name, entry) in section.credentials {
                if !credentials.insert(name, entry) {
                    return Err(Error::integrity(FILE_NAME, "a credential is defined twice"));
                }
            }
            for (name, agent) in section.agents {
                if manifest.agents.insert(name, agent).is_some() {
                    return Err(Error::integrity(FILE_NAME, "an agent is defined twice"));
                }
            }
        }
        manifest.credentials = credentials.finish();
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parse a manifest whose seal was not checked (no identity at hand): a section at a
    /// time when that works, as for a sealed file (the TOML parser's tree of a whole
    /// manifest of 10,000 credentials is 70 MB), else whole, which says what is wrong.
    /// Sections are whole tables, so a file both parse gives the same manifest both ways.
    pub fn parse_unverified(text: &str) -> Result<Manifest> {
        Self::parse_sealed(text).or_else(|_| Self::parse_any(text))
    }

    /// Parse any TOML layout (unverified reads, and diagnosing a broken seal).
    pub fn parse_any(text: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text).map_err(toml_error)?;
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<()> {
        check_store_id(&self.store_id)?;
        if self.format != FORMAT {
            return Err(Error::integrity(
                FILE_NAME,
                format!(
                    "store format {} is not supported by this agentcred (format {FORMAT})",
                    self.format
                ),
            ));
        }
        for name in self.credentials.keys() {
            if !matches!(CredentialName::parse(name), Ok(n) if n.as_str() == name) {
                return Err(Error::integrity(
                    FILE_NAME,
                    format!("invalid credential name {}", escape(name)),
                ));
            }
        }
        for (name, agent) in &self.agents {
            if AgentName::parse(name).is_err() {
                return Err(Error::integrity(
                    FILE_NAME,
                    format!("invalid agent name {}", escape(name)),
                ));
            }
            if let Some(bad) = agent
                .allow
                .iter()
                .find(|n| !matches!(CredentialName::parse(n), Ok(p) if p.as_str() == *n))
            {
                return Err(Error::integrity(
                    FILE_NAME,
                    format!(
                        "agent {} allows an invalid credential name {}",
                        escape(name),
                        escape(bad)
                    ),
                ));
            }
            if let Some(bad) = agent
                .commands
                .keys()
                .find(|n| !super::valid_command_name(n))
            {
                return Err(Error::integrity(
                    FILE_NAME,
                    format!(
                        "agent {} declares an invalid command name {}",
                        escape(name),
                        escape(bad)
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn entry(&self, name: &CredentialName) -> Option<&Entry> {
        self.credentials.get(name.as_str())
    }

    pub fn agent(&self, name: &AgentName) -> Option<&Agent> {
        self.agents.get(name.as_str())
    }
}

fn toml_string<T: Serialize>(value: &T) -> String {
    toml::to_string(value).unwrap_or_else(|e| unreachable!("manifest parts always serialize: {e}"))
}

/// Check the seal line of a manifest against its other bytes. CRLF line ends (a Windows
/// checkout) are read as LF.
pub fn seal_ok(text: &str, key: &StoreKey) -> Result<bool> {
    let missing = || Error::integrity(FILE_NAME, "the seal line is missing");
    let start = if text.starts_with(SEAL_PREFIX) {
        0
    } else {
        text.find(&format!("\n{SEAL_PREFIX}")).ok_or_else(missing)? + 1
    };
    let end = text[start..]
        .find('\n')
        .map_or(text.len(), |i| start + i + 1);
    let seal = text[start..end]
        .trim_end()
        .strip_prefix(SEAL_PREFIX)
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(missing)?;
    let (before, after) = (&text[..start], &text[end..]);
    let expected = if before.contains('\r') || after.contains('\r') {
        let before = before.replace("\r\n", "\n");
        let after = after.replace("\r\n", "\n");
        key.seal(&[before.as_bytes(), after.as_bytes()])
    } else {
        key.seal(&[before.as_bytes(), after.as_bytes()])
    };
    Ok(tags_equal(seal, &expected))
}

/// Name what changed when the seal does not match.
fn diagnose(manifest: &Manifest, key: &StoreKey) -> Error {
    let detail = hand_edits(manifest, key).into_iter().next().unwrap_or_else(|| {
        "it was changed outside agentcred (outside any credential or agent entry, or an entry was removed)"
            .to_string()
    });
    Error::integrity(FILE_NAME, detail)
}

/// Every credential and agent entry whose MAC does not match: what a hand edit changed
/// or added. (What it removed, or changed outside the entries, leaves no trace here.)
pub fn hand_edits(manifest: &Manifest, key: &StoreKey) -> Vec<String> {
    let store_id = &manifest.store_id;
    let credentials = (manifest.credentials.iter())
        .filter_map(|(name, entry)| entry_hand_edit(key, store_id, name, entry));
    let agents = manifest.agents.iter().filter_map(|(name, agent)| {
        let ok = agent.mac_ok(key, store_id, name);
        hand_edit("agent", name, agent.mac.is_empty(), ok)
    });
    credentials.chain(agents).collect()
}

/// What [`hand_edits`] says of one credential's entry (read with its MAC), if anything.
pub fn entry_hand_edit(
    key: &StoreKey,
    store_id: &str,
    name: &str,
    entry: &Entry,
) -> Option<String> {
    let ok = entry.mac_ok(key, store_id, name);
    hand_edit("credential", name, entry.mac.is_empty(), ok)
}

fn hand_edit(what: &str, name: &str, mac_empty: bool, ok: bool) -> Option<String> {
    if mac_empty {
        Some(format!(
            "{what} {} was added outside agentcred",
            escape(name)
        ))
    } else if !ok {
        Some(format!(
            "the entry of {what} {} was changed outside agentcred",
            escape(name)
        ))
    } else {
        None
    }
}

/// CRLF to LF (a Windows checkout of a git-shared store); a lone CR is refused, since no
/// manifest agentcred writes has one and it would make a header line look different to
/// the seal and to a parser.
pub fn normalize_line_ends(text: String) -> Result<String> {
    if !text.contains('\r') {
        return Ok(text);
    }
    let normalized = text.replace("\r\n", "\n");
    if normalized.contains('\r') {
        return Err(Error::integrity(
            FILE_NAME,
            "it contains a carriage return outside a CRLF line end",
        ));
    }
    Ok(normalized)
}
