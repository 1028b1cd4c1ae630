//! `agentcred.toml`: the store's metadata, written by agentcred in one canonical layout and
//! sealed against edits by anyone who does not hold the store key.
//!
//! Reading the whole manifest of a 10,000-credential store costs tens of milliseconds of TOML
//! parsing, but `get` needs one entry. Because the seal covers the exact bytes, a verified
//! file is known to be in the layout agentcred writes, so `get` can cut out its entry's
//! section and parse only that. Everything that needs more parses the whole file.

pub mod conflict;
pub mod excerpt;
mod fastpath;
mod light;
mod render;
mod sorted;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::crypto::integrity::{StoreKey, tags_equal};
use crate::error::{Error, Result};
use crate::model::credential::{AgentName, BackendKind, CredentialName, EnvVarName, Kind};
use crate::model::rotation::{self, Period, Policy};
use crate::model::settings::ClientConfig;
use crate::model::settings::VaultSettings;
use crate::model::value_info::ValueInfo;
use crate::model::word::Word;
use crate::util::output::escape;

use fastpath::starts_section;
pub use fastpath::{find_agent, find_defaults, find_entry, find_vault, header, table_names};
pub use render::{entry_hand_edit, hand_edits, normalize_line_ends, seal_ok};
pub use sorted::SortedMap;

pub const FILE_NAME: &str = "agentcred.toml";
pub const FORMAT: u32 = 1;
pub(super) const SEAL_PREFIX: &str = "seal = \"";
/// The seal's length: an HMAC-SHA256 in base64.
const SEAL_LEN: usize = 44;

pub(super) const PREAMBLE: &str = "\
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
    /// `exec` and `export` refuse to run without an agent (`agentcred config require-agent
    /// true`): no program gets every credential by accident. Sealed with the rest.
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_agent: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            rotate_every: Period::days(90),
            due_soon_window: Period::days(14),
            require_agent: false,
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
    /// Where `exec --broker` may send it (CONTRACT section 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Box<crate::model::upstream::Upstream>>,
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
    /// `created`, `rotated`, ...: a few texts over every entry, each held once.
    pub action: Word,
    /// `user@host`, held once for all the events by it.
    pub by: Word,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
impl Entry {
    /// A plain `age` secret in `env`, created and rotated `at`, nothing else set: tests
    /// set what they are about with `Entry { .., ..Entry::plain(env, at) }`.
    pub fn plain(env: &str, at: Timestamp) -> Entry {
        Entry {
            env: EnvVarName::parse(env).unwrap_or_else(|e| panic!("test env {env}: {e}")),
            kind: Kind::Secret,
            backend: BackendKind::Age,
            description: None,
            created_at: at,
            rotated_at: at,
            rotate_every: None,
            due: None,
            sha256: None,
            vault_version: None,
            value_info: None,
            oauth2: None,
            upstream: None,
            history: Vec::new(),
            mac: String::new(),
        }
    }
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
    /// The name the program must be run as (a multi-call binary dispatches on it); older
    /// pins have none and use the pinned path's file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub clean_env: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mask: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deny_overdue: bool,
    /// exec runs its program in the sandbox (CONTRACT section 11).
    #[serde(default, skip_serializing_if = "is_false")]
    pub sandbox: bool,
    /// exec brokers its credentials (CONTRACT section 10).
    #[serde(default, skip_serializing_if = "is_false")]
    pub broker: bool,
    pub created_at: Timestamp,
    pub created_by: String,
    /// Commands `agentcred mcp` may run for it (`agent command add`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub commands: BTreeMap<String, AgentCommand>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
}

/// A command an agent's MCP client may run by name: a pinned program and its fixed
/// arguments. Covered by the agent's MAC, so only a recipient can declare one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCommand {
    /// An absolute, canonical path.
    pub program: String,
    /// The SHA-256 (hex) the program must have when it is run.
    pub program_sha256: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The caller may append arguments after `args`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub extra_args: bool,
    /// Declared free of side effects (MCP `readOnlyHint`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A declared command's name: lowercase `[a-z0-9][a-z0-9._-]*`, at most 64 characters.
pub fn valid_command_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
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
pub(super) struct HeaderOut<'a> {
    format: u32,
    store_id: &'a str,
    generation: u64,
    recipients_sha256: &'a str,
}

#[derive(Serialize)]
pub(super) struct DefaultsOut<'a> {
    defaults: &'a Defaults,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VaultTable {
    vault: VaultSettings,
}

/// One credential's section. Nothing else may be in it: a table the whole-file parse
/// refuses must not be dropped silently by a reader of one section.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntryTable<'a> {
    #[serde(borrow)]
    credentials: BTreeMap<Cow<'a, str>, Entry>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct AgentTable<'a> {
    #[serde(borrow)]
    agents: BTreeMap<Cow<'a, str>, Agent>,
}

pub(super) fn toml_error(e: impl fmt::Display) -> Error {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("it is not valid TOML");
    Error::integrity(FILE_NAME, escape(first))
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
            description: Some("a [description]".into()),
            rotate_every: Some(RotateEvery::Every("30d".parse().unwrap())),
            sha256: Some("00".repeat(32)),
            value_info: Some(Box::new(ValueInfo {
                format: crate::model::value_info::ValueFormat::GoogleServiceAccount,
                expires_at: Some(at),
                client_email: Some("bot@p.iam.gserviceaccount.com".into()),
                private_key_id: Some("0a1b".into()),
            })),
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
            ..Entry::plain(env, at)
        }
    }

    fn agent(allow: &[&str], program: Option<&str>) -> Agent {
        Agent {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            program: program.map(String::from),
            program_sha256: program.map(|_| "ab".repeat(32)),
            program_name: None,
            clean_env: true,
            mask: program.is_some(),
            deny_overdue: false,
            sandbox: false,
            broker: false,
            created_at: "2026-01-02T00:00:00Z".parse().unwrap(),
            created_by: "me@host".into(),
            commands: BTreeMap::new(),
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
            auth_method: crate::model::settings::AuthMethod::Post,
            ..ClientConfig::default()
        }));
        m.agents
            .insert("bot".into(), agent(&["a", "a.b"], Some("/usr/bin/bot")));
        m.agents.insert("ci.v2".into(), agent(&[], None));
        m.agents.get_mut("bot").unwrap().commands.insert(
            "deploy.prod".into(),
            AgentCommand {
                program: "/usr/bin/deploy".into(),
                program_sha256: "cd".repeat(32),
                args: vec!["--prod".into(), "a \"quoted\" arg".into()],
                extra_args: false,
                read_only: false,
                description: Some("ship it".into()),
            },
        );
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
    fn an_unverified_read_gives_what_the_whole_parse_gives() {
        let key = StoreKey::generate().unwrap();
        let (_, text) = sample(&key);
        // A credential's history moved above every table, right after the header.
        let first = text.find("\n[defaults]").unwrap() + 1;
        let history = text.find("\n[[credentials.").unwrap() + 1;
        let history_end = text[history + 1..]
            .find("\n[")
            .map_or(text.len(), |i| history + 2 + i);
        let moved = format!(
            "{}{}{}{}",
            &text[..first],
            &text[history..history_end],
            &text[first..history],
            &text[history_end..]
        );
        let variants = [
            text.clone(),
            // Edited by hand, in ways the whole parse accepts or refuses.
            text.replacen("rotate_every = \"90d\"", "rotate_every = \"30d\"", 1),
            format!("{text}\n[defaults]\nrotate_every = \"30d\"\ndue_soon_window = \"7d\"\n"),
            format!("{text}\n[vault]\naddress = \"https://x\"\n"),
            format!("{text}\n[credentials.\"a.b\".upstream]\nurl = \"https://x\"\n"),
            moved,
            text.replace('\n', "\r\n"),
            text.replacen("seal = ", "# seal = ", 1),
            text.replacen("\n[defaults]", "\nextra = 1\n[defaults]", 1),
        ];
        let json = |parsed: Result<Manifest>| {
            parsed
                .map(|m| serde_json::to_value(m).unwrap())
                .map_err(|e| e.to_string())
        };
        for (i, variant) in variants.iter().enumerate() {
            assert_eq!(
                json(Manifest::parse_unverified(variant)),
                json(Manifest::parse_any(variant)),
                "variant {i}"
            );
        }
        // The whole parse keeps the moved history; so must the unverified read.
        assert!(
            Manifest::parse_any(&variants[5])
                .is_ok_and(|m| m.credentials.values().any(|e| !e.history.is_empty()))
        );
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
        assert_eq!(
            sealed["agents"]["bot"]["commands"]["deploy.prod"]["args"][1],
            "a \"quoted\" arg"
        );
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
    fn a_top_level_table_twice_is_refused_section_by_section_too() {
        // One TOML file may not define `[agents]` twice; each section alone would not say
        // so, and a reseal must not sign the two merged.
        let key = StoreKey::generate().unwrap();
        let (_, text) = sample(&key);
        for twice in [
            "[agents]",
            "[ \"agents\" ]  # again",
            "[credentials]",
            "[defaults]",
        ] {
            let edited = format!("{text}\n{twice}\n");
            let edited = edited.replacen("\n[agents.bot]\n", "\n[agents]\n[agents.bot]\n", 1);
            let edited = edited.replacen(
                "\n[credentials.a]\n",
                "\n[credentials]\n[credentials.a]\n",
                1,
            );
            assert!(Manifest::parse_any(&edited).is_err(), "{twice}: {edited}");
            let err = Manifest::parse_sealed(&edited).unwrap_err().to_string();
            assert!(err.contains("is defined twice"), "{twice}: {err}");
            assert!(Manifest::parse_unverified(&edited).is_err(), "{twice}");
        }
    }

    #[test]
    fn every_entry_rendered_is_signed_whatever_mac_it_held() {
        // A write reads entries without their MACs (excerpt::Keep::ForWrite); the commit
        // signs each section's copy. An empty MAC and a stale one come out signed alike.
        let key = StoreKey::generate().unwrap();
        let (mut m, _) = sample(&key);
        m.credentials.get_mut("a").unwrap().mac = String::new();
        m.credentials.get_mut("z").unwrap().mac = "00".repeat(32);
        let text = m.render(&key);
        let parsed = Manifest::parse_sealed(&text).unwrap();
        assert_eq!(parsed.credentials.len(), 4);
        assert!(hand_edits(&parsed, &key).is_empty());
        for (name, entry) in &parsed.credentials {
            assert!(!entry.mac.is_empty(), "{name}");
        }
        // What was signed is the entry as written: under another store id every MAC (the
        // four credentials' and the two agents') is wrong.
        let mut other = parsed.clone();
        other.store_id = "fedcba9876543210".into();
        assert_eq!(hand_edits(&other, &key).len(), 6);
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
        assert_eq!(bot.commands["deploy.prod"].program, "/usr/bin/deploy");
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
        // Where a section at a time parses, the whole parse gives the same manifest: an
        // unverified read and `doctor --reseal` take the first for the second.
        if let Ok(sections) = Manifest::parse_sealed(text) {
            let whole = Manifest::parse_any(text).map(|m| serde_json::to_value(m).unwrap());
            assert_eq!(
                whole.map_err(|e| e.to_string()),
                Ok(serde_json::to_value(sections).unwrap()),
                "{text:?}"
            );
        }
        let _ = Manifest::parse_sealed_without_history(text);
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
