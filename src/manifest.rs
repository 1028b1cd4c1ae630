//! `agentcred.toml`: the store's metadata, written by agentcred in one canonical layout and
//! sealed against edits by anyone who does not hold the store key.
//!
//! Reading the whole manifest of a 10,000-credential store costs tens of milliseconds of TOML
//! parsing, but `get` needs one entry. Because the seal covers the exact bytes, a verified
//! file is known to be in the layout agentcred writes, so `get` can cut out its entry's
//! section and parse only that. Everything that needs more parses the whole file.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::backend::vault::Settings as VaultSettings;
use crate::credential::{AgentName, BackendKind, CredentialName, EnvVarName, Kind};
use crate::error::{Error, Result};
use crate::integrity::{StoreKey, tags_equal};
use crate::oauth::ClientConfig;
use crate::output::escape;
use crate::rotation::{self, Period, Policy};
use crate::value_info::ValueInfo;

pub const FILE_NAME: &str = "agentcred.toml";
pub const FORMAT: u32 = 1;
const SEAL_PREFIX: &str = "seal = \"";

const PREAMBLE: &str = "\
# agentcred store manifest: metadata only, never a secret value.
# Change it with agentcred; a hand edit is refused until `agentcred doctor --reseal`.
";

/// The whole manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub store_id: String,
    pub generation: u64,
    /// SHA-256 of `recipients.txt`, so a recipient slipped in by hand is noticed before
    /// anything is encrypted to it.
    pub recipients_sha256: String,
    #[serde(default, skip_serializing)]
    pub seal: String,
    #[serde(default)]
    pub defaults: Defaults,
    /// Where `vault` credentials live (address, mount, prefix); nothing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultSettings>,
    #[serde(default)]
    pub credentials: BTreeMap<String, Entry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, Agent>,
}

/// Store-wide defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub rotate_every: Period,
    pub due_soon_window: Period,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            rotate_every: Period::days(90),
            due_soon_window: Period::days(14),
        }
    }
}

/// One credential's metadata. Every field is covered by its MAC.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub env: EnvVarName,
    pub kind: Kind,
    pub backend: BackendKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub rotated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_every: Option<RotateEvery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Timestamp>,
    /// SHA-256 of `secrets/NAME.age` (age backend); the value's tag (keychain, vault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The KV version the value was last written as (vault backend): an older one found
    /// there was put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_version: Option<u64>,
    /// What was read from the value (a token's expiry, a key's id), never the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_info: Option<Box<ValueInfo>>,
    /// The token endpoint of an `oauth2` credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<Box<ClientConfig>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Event>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

/// An entry's own rotation period, or `never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RotateEvery {
    Never,
    Every(Period),
}

impl FromStr for RotateEvery {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "never" {
            Ok(RotateEvery::Never)
        } else {
            s.parse().map(RotateEvery::Every)
        }
    }
}

impl TryFrom<String> for RotateEvery {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl fmt::Display for RotateEvery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotateEvery::Never => f.write_str("never"),
            RotateEvery::Every(period) => period.fmt(f),
        }
    }
}

impl From<RotateEvery> for String {
    fn from(value: RotateEvery) -> Self {
        value.to_string()
    }
}

/// One line of a credential's history: what happened, when, by whom, and why when that
/// is worth keeping (where `scan` found a leaked value). Never a value.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub at: Timestamp,
    pub action: String,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Entry {
    /// The user's own policy first (a date, a period, never); then a value's known expiry;
    /// then the store default.
    pub fn policy(&self) -> Policy {
        let expiry = self.value_info.as_ref().and_then(|info| info.expires_at);
        match (self.due, self.rotate_every, expiry) {
            (Some(at), _, _) => Policy::Due(at),
            (None, Some(RotateEvery::Never), _) => Policy::Never,
            (None, Some(RotateEvery::Every(period)), _) => Policy::Every(period),
            (None, None, Some(at)) => Policy::Expiry(at),
            (None, None, None) => Policy::Default,
        }
    }

    /// When the value expires, if that is before the credential is due under the user's
    /// own policy (so the user can be told).
    pub fn expires_before_due(&self, defaults: &Defaults) -> Option<Timestamp> {
        let expiry = self.value_info.as_ref()?.expires_at?;
        match self.due_at(defaults) {
            Some(due) if due <= expiry => None,
            _ => Some(expiry),
        }
    }

    pub fn due_at(&self, defaults: &Defaults) -> Option<Timestamp> {
        rotation::due_at(self.policy(), defaults.rotate_every, self.rotated_at)
    }

    /// The bytes the entry MAC covers: the entry as compact JSON, without its MAC.
    fn mac_input(&self) -> Vec<u8> {
        let unsigned = Entry {
            mac: String::new(),
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).unwrap_or_else(|_| unreachable!("entries always serialize"))
    }

    pub fn sign(&mut self, key: &StoreKey, store_id: &str, name: &str) {
        self.mac = String::new();
        self.mac = key.entry_mac(store_id, name, &self.mac_input());
    }

    fn mac_ok(&self, key: &StoreKey, store_id: &str, name: &str) -> bool {
        tags_equal(&self.mac, &key.entry_mac(store_id, name, &self.mac_input()))
    }
}

/// An agent: a least-privilege profile for `exec` (which credentials, which program, which
/// policy). Every field is covered by its MAC, so a hand edit granting more is refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The credentials it may receive.
    pub allow: BTreeSet<String>,
    /// The only executable its credentials may go to: an absolute, canonical path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// The SHA-256 (hex) that executable must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub clean_env: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mask: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deny_overdue: bool,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Agent {
    /// The bytes the agent MAC covers: the agent as compact JSON, without its MAC.
    fn mac_input(&self) -> Vec<u8> {
        let unsigned = Agent {
            mac: String::new(),
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).unwrap_or_else(|_| unreachable!("agents always serialize"))
    }

    fn sign(&mut self, key: &StoreKey, store_id: &str, name: &str) {
        self.mac = String::new();
        self.mac = key.agent_mac(store_id, name, &self.mac_input());
    }

    fn mac_ok(&self, key: &StoreKey, store_id: &str, name: &str) -> bool {
        tags_equal(&self.mac, &key.agent_mac(store_id, name, &self.mac_input()))
    }
}

/// The header fields, for the fast path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub store_id: String,
    pub generation: u64,
    pub recipients_sha256: String,
    pub seal: String,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    format: u32,
    store_id: &'a str,
    generation: u64,
    recipients_sha256: &'a str,
}

#[derive(Serialize)]
struct DefaultsOut<'a> {
    defaults: &'a Defaults,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultTable {
    vault: VaultSettings,
}

#[derive(Serialize, Deserialize)]
struct EntryTable<'a> {
    #[serde(borrow)]
    credentials: BTreeMap<Cow<'a, str>, Entry>,
}

#[derive(Serialize, Deserialize)]
struct AgentTable<'a> {
    #[serde(borrow)]
    agents: BTreeMap<Cow<'a, str>, Agent>,
}

fn toml_error(e: impl fmt::Display) -> Error {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("it is not valid TOML");
    Error::integrity(FILE_NAME, escape(first))
}

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

    /// Render the canonical text with fresh entry MACs and seal. Used after every change.
    pub fn render(&mut self, key: &StoreKey) -> String {
        let store_id = self.store_id.clone();
        for (name, entry) in &mut self.credentials {
            entry.sign(key, &store_id, name);
        }
        for (name, agent) in &mut self.agents {
            agent.sign(key, &store_id, name);
        }
        let mut body = String::from(PREAMBLE);
        body.push_str(&toml_string(&HeaderOut {
            format: self.format,
            store_id: &self.store_id,
            generation: self.generation,
            recipients_sha256: &self.recipients_sha256,
        }));
        let seal_at = body.len();
        body.push('\n');
        body.push_str(&toml_string(&DefaultsOut {
            defaults: &self.defaults,
        }));
        if let Some(vault) = &self.vault {
            body.push('\n');
            body.push_str(&toml_string(&VaultTable {
                vault: vault.clone(),
            }));
        }
        for (name, entry) in &self.credentials {
            body.push('\n');
            let table = EntryTable {
                credentials: BTreeMap::from([(Cow::Borrowed(name.as_str()), entry.clone())]),
            };
            body.push_str(&toml_string(&table));
        }
        for (name, agent) in &self.agents {
            body.push('\n');
            let table = AgentTable {
                agents: BTreeMap::from([(Cow::Borrowed(name.as_str()), agent.clone())]),
            };
            body.push_str(&toml_string(&table));
        }
        self.seal = key.seal(&[body.as_bytes()]);
        body.insert_str(seal_at, &format!("{SEAL_PREFIX}{}\"\n", self.seal));
        body
    }

    /// Parse a manifest, verifying its seal when a key is given (and naming what changed
    /// when it does not match). Without a key, nothing is verified.
    pub fn load(text: &str, key: Option<&StoreKey>) -> Result<Manifest> {
        match key {
            Some(key) if seal_ok(text, key)? => Self::parse_sealed(text),
            Some(key) => Err(diagnose(&Self::parse_any(text)?, key)),
            None => Self::parse_any(text),
        }
    }

    /// Parse a manifest whose seal was verified, so its layout is the one [`render`]
    /// writes: the header, then one table per section. Parsing section by section keeps
    /// peak memory near the size of the result (the TOML parser's document tree for a
    /// 10,000-credential file is several times larger than the file).
    ///
    /// [`render`]: Manifest::render
    pub fn parse_sealed(text: &str) -> Result<Manifest> {
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
        let mut starts: Vec<usize> = text
            .match_indices("\n[")
            .map(|(i, _)| i + 1)
            .filter(|&i| starts_section(&text[i..]))
            .collect();
        starts.push(text.len());
        for pair in starts.windows(2) {
            let section: Section = toml::from_str(&text[pair[0]..pair[1]]).map_err(toml_error)?;
            if let Some(defaults) = section.defaults {
                manifest.defaults = defaults;
            }
            if section.vault.is_some() {
                manifest.vault = section.vault;
            }
            for (name, entry) in section.credentials {
                if manifest.credentials.insert(name, entry).is_some() {
                    return Err(Error::integrity(FILE_NAME, "a credential is defined twice"));
                }
            }
            for (name, agent) in section.agents {
                if manifest.agents.insert(name, agent).is_some() {
                    return Err(Error::integrity(FILE_NAME, "an agent is defined twice"));
                }
            }
        }
        manifest.validate()?;
        Ok(manifest)
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
    let mut edits = Vec::new();
    let mut check = |what: &str, name: &str, mac_empty: bool, ok: bool| {
        if mac_empty {
            edits.push(format!(
                "{what} {} was added outside agentcred",
                escape(name)
            ));
        } else if !ok {
            edits.push(format!(
                "the entry of {what} {} was changed outside agentcred",
                escape(name)
            ));
        }
    };
    for (name, entry) in &manifest.credentials {
        check(
            "credential",
            name,
            entry.mac.is_empty(),
            entry.mac_ok(key, &manifest.store_id, name),
        );
    }
    for (name, agent) in &manifest.agents {
        check(
            "agent",
            name,
            agent.mac.is_empty(),
            agent.mac_ok(key, &manifest.store_id, name),
        );
    }
    edits
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

/// A store id is 16 lowercase hex digits. It names files in this machine's state dir and
/// keychain accounts, so nothing else is accepted.
pub fn check_store_id(store_id: &str) -> Result<()> {
    if store_id.len() == 16
        && store_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::integrity(
            FILE_NAME,
            format!(
                "the store id {} is not 16 lowercase hex digits",
                escape(store_id)
            ),
        ))
    }
}

/// Parse the header: the lines before the first table.
pub fn header(text: &str) -> Result<Header> {
    let end = text.find("\n[").map_or(text.len(), |i| i + 1);
    let header: Header = toml::from_str(&text[..end]).map_err(toml_error)?;
    check_store_id(&header.store_id)?;
    if header.format != FORMAT {
        return Err(Error::integrity(
            FILE_NAME,
            format!(
                "store format {} is not supported by this agentcred (format {FORMAT})",
                header.format
            ),
        ));
    }
    Ok(header)
}

/// The names of a top-level table's sub-tables (`[credentials.NAME]`), read from the
/// headers alone, without parsing or verifying anything: for shell completion.
pub fn table_names(text: &str, table: &str) -> Vec<String> {
    let prefix = format!("[{table}.");
    text.lines()
        .filter(|line| starts_section(line))
        .filter_map(|line| line.strip_prefix(&prefix)?.strip_suffix(']'))
        .map(|key| key.trim_matches('"').to_string())
        .filter(|name| !name.is_empty() && !name.chars().any(char::is_control))
        .collect()
}

/// Whether a line opens a new section: a table header of at most two keys (`[defaults]`,
/// `[credentials.NAME]`, `[agents.NAME]`). Deeper tables (`[credentials.NAME.oauth]`) and arrays of tables
/// (`[[credentials.NAME.history]]`) belong to the section above them.
fn starts_section(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    if rest.starts_with('[') {
        return false;
    }
    let mut depth = 1;
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => depth += 1,
            ']' if !quoted => return depth <= 2,
            '\n' => return false,
            _ => {}
        }
    }
    false
}

/// How agentcred writes a credential's or agent's table key.
fn table_key(name: &str) -> Cow<'_, str> {
    if name.contains('.') {
        Cow::Owned(format!("\"{name}\""))
    } else {
        Cow::Borrowed(name)
    }
}

/// Cut one credential's entry out of a manifest known (by its seal) to be in canonical
/// layout, and parse only that. `Ok(None)` when the store has no such credential.
pub fn find_entry(text: &str, name: &CredentialName) -> Result<Option<Entry>> {
    let Some(section) = find_section(text, "credentials", name.as_str()) else {
        return Ok(None);
    };
    let mut table: EntryTable = toml::from_str(section).map_err(toml_error)?;
    Ok(table.credentials.remove(name.as_str()))
}

/// Like [`find_entry`], for an agent.
pub fn find_agent(text: &str, name: &AgentName) -> Result<Option<Agent>> {
    let Some(section) = find_section(text, "agents", name.as_str()) else {
        return Ok(None);
    };
    let mut table: AgentTable = toml::from_str(section).map_err(toml_error)?;
    Ok(table.agents.remove(name.as_str()))
}

/// The text of the section `[table.name]` with its nested tables, in canonical layout.
fn find_section<'t>(text: &'t str, table: &str, name: &str) -> Option<&'t str> {
    let key = table_key(name);
    let heading = format!("[{table}.{key}]\n");
    let start = if text.starts_with(&heading) {
        0
    } else {
        text.find(&format!("\n{heading}"))? + 1
    };
    let nested = [format!("[{table}.{key}."), format!("[[{table}.{key}.")];
    let mut end = text.len();
    let mut search = start + heading.len();
    while let Some(i) = text[search..].find("\n[") {
        let line_start = search + i + 1;
        if !nested
            .iter()
            .any(|n| text[line_start..].starts_with(n.as_str()))
        {
            end = line_start;
            break;
        }
        search = line_start;
    }
    Some(&text[start..end])
}

/// The `[defaults]` table of a manifest known (by its seal) to be in canonical layout, for
/// readers that take the fast path to their entries but need the rotation defaults.
pub fn find_defaults(text: &str) -> Result<Defaults> {
    const HEADING: &str = "[defaults]\n";
    let Some(start) = text.find(&format!("\n{HEADING}")).map(|i| i + 1) else {
        return Ok(Defaults::default());
    };
    let body = start + HEADING.len();
    let end = text[body..]
        .find("\n[")
        .map_or(text.len(), |i| body + i + 1);
    let table: DefaultsIn = toml::from_str(&text[start..end]).map_err(toml_error)?;
    Ok(table.defaults)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsIn {
    defaults: Defaults,
}

/// The `[vault]` table of a manifest known (by its seal) to be in canonical layout, for
/// readers on the fast path; `None` when the store has none.
pub fn find_vault(text: &str) -> Result<Option<VaultSettings>> {
    const HEADING: &str = "[vault]\n";
    let Some(start) = text.find(&format!("\n{HEADING}")).map(|i| i + 1) else {
        return Ok(None);
    };
    let body = start + HEADING.len();
    let end = text[body..]
        .find("\n[")
        .map_or(text.len(), |i| body + i + 1);
    let table: VaultTable = toml::from_str(&text[start..end]).map_err(toml_error)?;
    Ok(Some(table.vault))
}

/// A fresh random store id (hex).
pub fn new_store_id() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::io("cannot get random bytes", std::io::Error::other(e)))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(env: &str) -> Entry {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        Entry {
            env: EnvVarName::parse(env).unwrap(),
            kind: Kind::Secret,
            backend: BackendKind::Age,
            description: Some("a [description]".into()),
            created_at: at,
            rotated_at: at,
            rotate_every: Some(RotateEvery::Every("30d".parse().unwrap())),
            due: None,
            sha256: Some("00".repeat(32)),
            vault_version: None,
            value_info: Some(Box::new(ValueInfo {
                format: crate::value_info::ValueFormat::GoogleServiceAccount,
                expires_at: Some(at),
                client_email: Some("bot@p.iam.gserviceaccount.com".into()),
                private_key_id: Some("0a1b".into()),
            })),
            oauth2: None,
            history: vec![
                Event {
                    at,
                    action: "created".into(),
                    by: "me@host".into(),
                    reason: None,
                },
                Event {
                    at,
                    action: "compromised".into(),
                    by: "me@host".into(),
                    reason: Some("found by scan in a.txt:3".into()),
                },
            ],
            mac: String::new(),
        }
    }

    fn agent(allow: &[&str], program: Option<&str>) -> Agent {
        Agent {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            program: program.map(String::from),
            program_sha256: program.map(|_| "ab".repeat(32)),
            clean_env: true,
            mask: program.is_some(),
            deny_overdue: false,
            created_at: "2026-01-02T00:00:00Z".parse().unwrap(),
            created_by: "me@host".into(),
            mac: String::new(),
        }
    }

    fn sample(key: &StoreKey) -> (Manifest, String) {
        let mut m = Manifest::new("0123456789abcdef".into(), "ff".repeat(32));
        for (name, env) in [("a", "A"), ("a.b", "AB"), ("a-c", "AC"), ("z", "Z")] {
            m.credentials.insert(name.into(), entry(env));
        }
        let client = m.credentials.get_mut("a.b").unwrap();
        client.kind = Kind::Oauth2;
        client.oauth2 = Some(Box::new(ClientConfig {
            token_url: "https://auth.example.com/oauth/token".into(),
            client_id: "bot \"one\"".into(),
            scope: Some("read write".into()),
            audience: None,
            auth_method: crate::oauth::AuthMethod::Post,
        }));
        m.agents
            .insert("bot".into(), agent(&["a", "a.b"], Some("/usr/bin/bot")));
        m.agents.insert("ci.v2".into(), agent(&[], None));
        m.vault = Some(VaultSettings {
            addr: Some("https://vault.example.com:8200".into()),
            mount: "kv".into(),
            prefix: "team/agentcred".into(),
        });
        let z = m.credentials.get_mut("z").unwrap();
        z.backend = BackendKind::Vault;
        z.vault_version = Some(7);
        let text = m.render(key);
        (m, text)
    }

    #[test]
    fn render_round_trips_and_verifies() {
        let key = StoreKey::generate().unwrap();
        let (m, text) = sample(&key);
        let loaded = Manifest::load(&text, Some(&key)).unwrap();
        assert_eq!(loaded.credentials.len(), 4);
        assert_eq!(loaded.agents.len(), 2);
        assert_eq!(loaded.agents["bot"].allow.len(), 2);
        assert_eq!(loaded.seal, m.seal);
        let h = header(&text).unwrap();
        assert_eq!(h.store_id, "0123456789abcdef");
        assert_eq!(h.seal, m.seal);
    }

    #[test]
    fn sealed_parse_equals_a_full_parse() {
        // Every top-level table of `Manifest` must be known to `parse_sealed` too; this
        // fails when one is added to one and not the other.
        let key = StoreKey::generate().unwrap();
        let (_, text) = sample(&key);
        let sealed = serde_json::to_value(Manifest::parse_sealed(&text).unwrap()).unwrap();
        let full = serde_json::to_value(Manifest::parse_any(&text).unwrap()).unwrap();
        assert_eq!(sealed, full);
        assert_eq!(sealed["agents"]["bot"]["program"], "/usr/bin/bot");
        assert_eq!(
            sealed["credentials"]["a.b"]["oauth2"]["auth_method"],
            "post"
        );
        assert_eq!(sealed["vault"]["prefix"], "team/agentcred");
        assert_eq!(sealed["credentials"]["z"]["backend"], "vault");
        assert_eq!(sealed["credentials"]["z"]["vault_version"], 7);
        assert_eq!(
            find_vault(&text).unwrap().unwrap().addr.as_deref(),
            Some("https://vault.example.com:8200")
        );
        assert!(text.contains("\n[credentials.\"a.b\".oauth2]\n"), "{text}");
        assert!(starts_section("[credentials.\"a.b\"]\n"));
        assert!(starts_section("[defaults]\n"));
        assert!(!starts_section("[credentials.\"a.b\".oauth]\n"));
        assert!(!starts_section("[[credentials.a.history]]\n"));
    }

    #[test]
    fn fast_path_finds_each_entry_exactly() {
        let key = StoreKey::generate().unwrap();
        let (_, text) = sample(&key);
        for (name, env) in [("a", "A"), ("a.b", "AB"), ("a-c", "AC"), ("z", "Z")] {
            let found = find_entry(&text, &CredentialName::parse(name).unwrap())
                .unwrap()
                .unwrap();
            assert_eq!(found.env.as_str(), env);
            assert_eq!(
                found.history.len(),
                2,
                "{name}: nested tables belong to the entry"
            );
            assert!(found.mac_ok(&key, "0123456789abcdef", name));
            assert_eq!(found.oauth2.is_some(), name == "a.b", "{name}");
        }
        assert!(
            find_entry(&text, &CredentialName::parse("b").unwrap())
                .unwrap()
                .is_none()
        );
        let bot = find_agent(&text, &AgentName::parse("bot").unwrap())
            .unwrap()
            .unwrap();
        assert!(bot.mac_ok(&key, "0123456789abcdef", "bot"));
        assert_eq!(bot.program.as_deref(), Some("/usr/bin/bot"));
        let ci = find_agent(&text, &AgentName::parse("ci.v2").unwrap())
            .unwrap()
            .unwrap();
        assert!(ci.allow.is_empty() && ci.clean_env);
        assert!(
            find_agent(&text, &AgentName::parse("a").unwrap())
                .unwrap()
                .is_none()
        );
        // The last credential's section ends where the agents begin.
        let z = find_entry(&text, &CredentialName::parse("z").unwrap())
            .unwrap()
            .unwrap();
        assert!(z.mac_ok(&key, "0123456789abcdef", "z"));
    }

    #[test]
    fn fast_path_finds_the_defaults() {
        let key = StoreKey::generate().unwrap();
        let mut m = Manifest::new("0123456789abcdef".into(), "ff".repeat(32));
        m.defaults.rotate_every = "30d".parse().unwrap();
        m.defaults.due_soon_window = "3w".parse().unwrap();
        m.credentials.insert("a".into(), entry("A"));
        let text = m.render(&key);
        let found = find_defaults(&text).unwrap();
        assert_eq!(found.rotate_every.to_string(), "30d");
        assert_eq!(found.due_soon_window.to_string(), "3w");
        let (_, text) = sample(&key);
        assert_eq!(
            find_defaults(&text).unwrap().rotate_every.to_string(),
            "90d"
        );
        let mut m = Manifest::new("0123456789abcdef".into(), "ff".repeat(32));
        assert!(find_vault(&m.render(&key)).unwrap().is_none());
    }

    #[test]
    fn a_known_expiry_sets_the_due_date_unless_the_user_gave_a_policy() {
        let defaults = Defaults::default();
        let expiry: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
        let mut e = entry("A");
        e.rotate_every = None;
        e.value_info.as_mut().unwrap().expires_at = Some(expiry);
        assert_eq!(e.policy(), Policy::Expiry(expiry));
        assert_eq!(e.due_at(&defaults), Some(expiry));
        assert_eq!(e.expires_before_due(&defaults), None);
        e.rotate_every = Some(RotateEvery::Every("90d".parse().unwrap()));
        assert_eq!(e.expires_before_due(&defaults), Some(expiry));
        e.rotate_every = Some(RotateEvery::Never);
        assert_eq!(e.policy(), Policy::Never);
        assert_eq!(e.expires_before_due(&defaults), Some(expiry));
        e.due = Some("2026-01-15T00:00:00Z".parse().unwrap());
        assert_eq!(e.expires_before_due(&defaults), None);
        e.value_info = None;
        e.due = None;
        e.rotate_every = None;
        assert_eq!(e.policy(), Policy::Default);
    }

    #[test]
    fn any_byte_changed_breaks_the_seal_and_names_the_entry() {
        let key = StoreKey::generate().unwrap();
        let (_, text) = sample(&key);
        let edited = text.replace("env = \"AB\"", "env = \"XY\"");
        let err = Manifest::load(&edited, Some(&key)).unwrap_err().to_string();
        assert!(err.contains("credential a.b"), "{err}");
        let edited = text.replace(
            "allow = [\"a\", \"a.b\"]",
            "allow = [\"a\", \"a.b\", \"z\"]",
        );
        assert_ne!(edited, text);
        let err = Manifest::load(&edited, Some(&key)).unwrap_err().to_string();
        assert!(err.contains("agent bot"), "{err}");
        let edited = text.replace("generation = 0", "generation = 7");
        assert!(Manifest::load(&edited, Some(&key)).is_err());
        let other = StoreKey::generate().unwrap();
        assert!(Manifest::load(&text, Some(&other)).is_err());
        // A Windows checkout still verifies.
        let crlf = text.replace('\n', "\r\n");
        assert!(seal_ok(&crlf, &key).unwrap());
    }
}

/// No manifest text makes the parsers panic: a manifest is read from disk and may be
/// anything (issue 14: one holding `rotate_every = "19999y"` made every command panic).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    const VALID: &str = "format = 1\nstore_id = \"a0c2554afd5478a9\"\ngeneration = 1\nrecipients_sha256 = \"f6\"\nseal = \"x\"\n\n[defaults]\nrotate_every = \"90d\"\ndue_soon_window = \"14d\"\n\n[credentials.foo]\nenv = \"FOO\"\nkind = \"secret\"\nbackend = \"age\"\ncreated_at = \"2026-11-30T14:22:50Z\"\nrotated_at = \"2026-11-30T14:22:50Z\"\nrotate_every = \"30d\"\nmac = \"m\"\n\n[agents.bot]\nallow = [\"foo\"]\n";

    fn exercise(text: &str) {
        let _ = header(text);
        let _ = find_defaults(text);
        let _ = find_vault(text);
        let _ = table_names(text, "credentials");
        let _ = table_names(text, "agents");
        if let Ok(name) = CredentialName::parse("foo") {
            let _ = find_entry(text, &name);
        }
        if let Ok(name) = AgentName::parse("bot") {
            let _ = find_agent(text, &name);
        }
        let _ = Manifest::parse_sealed(text);
        if let Ok(manifest) = Manifest::parse_any(text) {
            for entry in manifest.credentials.values() {
                let _ = entry.due_at(&manifest.defaults);
                let _ = entry.expires_before_due(&manifest.defaults);
            }
        }
    }

    proptest! {
        #[test]
        fn any_text(text in "\\PC{0,400}") {
            exercise(&text);
        }

        #[test]
        fn a_valid_manifest_with_any_field_value(period in "\\PC{0,12}|[0-9]{1,12}(h|d|w|mo|y)", date in "\\PC{0,30}|-?[0-9]{1,6}-[0-9]{2}-[0-9]{2}(T00:00:00Z)?") {
            let text = VALID
                .replace("\"30d\"", &format!("{period:?}"))
                .replace("\"14d\"", &format!("{period:?}"))
                .replace("\"2026-11-30T14:22:50Z\"", &format!("{date:?}"));
            exercise(&text);
        }

        #[test]
        fn a_valid_manifest_cut_anywhere(cut in 0usize..600, insert in "\\PC{0,8}") {
            let mut text = VALID.to_string();
            let mut at = cut.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &insert);
            exercise(&text);
            exercise(&VALID[..cut.min(VALID.len())]);
        }
    }
}
