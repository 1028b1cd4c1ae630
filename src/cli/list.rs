//! `agentcred list`: credentials' metadata, never values.

use std::io::Write;

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::context::Ctx;
use crate::error::Error;
use crate::manifest::{Defaults, Entry, Manifest, RotateEvery};
use crate::model::credential::{AgentName, BackendKind, EnvVarName, Kind};
use crate::model::rotation::{self, Policy};
use crate::model::value_info::ValueInfo;
use crate::util::output;

/// List credentials: name, env, backend, kind, rotation status
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred list
  agentcred list --agent mybot                  # what agent mybot may receive
  agentcred list --json | jq -r '.credentials[] | select(.status == \"overdue\") | .name'")]
pub struct ListArgs {
    /// Only the credentials this agent may receive
    #[arg(long, value_name = "AGENT")]
    agent: Option<String>,

    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

/// One credential as `list --json` and `show --json` print it.
#[derive(Serialize)]
pub struct CredentialJson<'a> {
    pub name: &'a str,
    pub env: &'a str,
    pub backend: &'static str,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    pub created_at: String,
    pub rotated_at: String,
    pub rotate_every: Option<String>,
    pub due_at: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_info: Option<ValueInfoJson<'a>>,
    /// The token endpoint of an `oauth2` credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<&'a crate::oauth::ClientConfig>,
    /// Where `exec --broker` sends it: `{"url", "header", "base_url_env"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<&'a crate::model::upstream::Upstream>,
}

/// What was read from the value: `{"format": "jwt", "expires_at": ...}`.
#[derive(Serialize)]
pub struct ValueInfoJson<'a> {
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key_id: Option<&'a str>,
}

impl<'a> CredentialJson<'a> {
    pub fn new(name: &'a str, entry: &'a Entry, defaults: &Defaults, now: Timestamp) -> Self {
        let due = entry.due_at(defaults);
        let rotate_every = match entry.policy() {
            rotation::Policy::Default => Some(defaults.rotate_every.to_string()),
            rotation::Policy::Every(period) => Some(period.to_string()),
            rotation::Policy::Due(_) | rotation::Policy::Expiry(_) | rotation::Policy::Never => {
                None
            }
        };
        let value_info = entry.value_info.as_ref().map(|info| ValueInfoJson {
            format: info.format.as_str(),
            expires_at: info.expires_at.map(output::rfc3339),
            client_email: info.client_email.as_deref(),
            private_key_id: info.private_key_id.as_deref(),
        });
        CredentialJson {
            name,
            env: entry.env.as_str(),
            backend: entry.backend.as_str(),
            kind: entry.kind.as_str(),
            description: entry.description.as_deref(),
            created_at: output::rfc3339(entry.created_at),
            rotated_at: output::rfc3339(entry.rotated_at),
            rotate_every,
            due_at: due.map(output::rfc3339),
            status: rotation::status(due, now, defaults.due_soon_window).as_str(),
            value_info,
            oauth2: entry.oauth2.as_deref(),
            upstream: entry.upstream.as_deref(),
        }
    }
}

/// Load the manifest verified when the identity is at hand without a prompt; otherwise
/// unverified, saying so on stderr. Returns the manifest and whether it was verified.
pub fn load_manifest(ctx: &Ctx) -> anyhow::Result<(Manifest, bool)> {
    load_manifest_with(ctx, true)
}

/// [`load_manifest`] without the credentials (`agent list`, `agent show`), which are
/// not read.
pub fn load_agents(ctx: &Ctx) -> anyhow::Result<(Manifest, bool)> {
    let store = ctx.open_store()?;
    let identity = ctx.identity_if_unlocked()?;
    match store.manifest_without_credentials(identity)? {
        Some(manifest) => {
            if identity.is_none() {
                eprintln!("{}", ctx.unverified_note());
            }
            Ok((manifest, identity.is_some()))
        }
        None => load_manifest_with(ctx, false),
    }
}

/// [`load_manifest`], without the credentials' history when `history` is false (faster
/// to read: `due` never shows it; `list` keeps less still, see [`Rows`]).
pub fn load_manifest_with(ctx: &Ctx, history: bool) -> anyhow::Result<(Manifest, bool)> {
    let store = ctx.open_store()?;
    match ctx.identity_if_unlocked()? {
        Some(identity) => {
            let manifest = match history {
                true => store.reader(identity)?.manifest()?,
                false => store
                    .reader_of_every(identity)?
                    .manifest_without_history()?,
            };
            Ok((manifest, true))
        }
        None => {
            eprintln!("{}", ctx.unverified_note());
            Ok((store.manifest_unverified()?, false))
        }
    }
}

/// The credentials `list` prints, a few bytes each: a store is read in pieces
/// ([`Store::each_entry`]) into these rather than into a map of whole entries, which for
/// 10,000 credentials took most of the command's memory. Names, env names and descriptions
/// share one text; what only some entries have is kept aside.
///
/// [`Store::each_entry`]: crate::store::Store::each_entry
#[derive(Default)]
pub(super) struct Rows {
    text: String,
    rows: Vec<Row>,
    more: Vec<More>,
    /// Whether a name came before the one it follows (not the layout agentcred writes).
    unsorted: bool,
}

/// What every entry has (48 bytes).
pub(super) struct Row {
    created_at: Timestamp,
    rotated_at: Timestamp,
    /// Where in `Rows::text` the name starts; the env name and the description follow.
    start: u32,
    /// [`NONE`] for no description.
    description_len: u32,
    name_len: u8,
    env_len: u8,
    kind: Kind,
    backend: BackendKind,
    /// Its index in `Rows::more`, or [`NONE`].
    more: u32,
}

const NONE: u32 = u32::MAX;

/// What some entries have: a policy of their own ([`Entry::policy`], all that `list` uses
/// of `due` and `rotate_every`), and what fewer have.
struct More {
    policy: Policy,
    rest: Option<Box<Rest>>,
}

/// A value's details, an OAuth2 endpoint, an upstream.
struct Rest {
    value_info: Option<Box<ValueInfo>>,
    oauth2: Option<Box<crate::oauth::ClientConfig>>,
    upstream: Option<Box<crate::model::upstream::Upstream>>,
}

impl Rows {
    /// Keep what `list` prints of an entry; `false` when it does not fit (a name or env
    /// name longer than agentcred allows, or 4 GiB of text).
    fn push(&mut self, name: String, entry: Entry) -> bool {
        let Some(row) = self.row(&name, entry) else {
            return false;
        };
        if let Some(last) = self.rows.last() {
            self.unsorted |= self.name(last) >= name.as_str();
        }
        self.rows.push(row);
        true
    }

    fn row(&mut self, name: &str, entry: Entry) -> Option<Row> {
        let len = |text: &str| u32::try_from(text.len()).ok().filter(|&n| n != NONE);
        let start = len(&self.text)?;
        let name_len = u8::try_from(name.len()).ok()?;
        let env_len = u8::try_from(entry.env.as_str().len()).ok()?;
        let description_len = match &entry.description {
            Some(text) => len(text)?,
            None => NONE,
        };
        [
            u32::from(name_len),
            u32::from(env_len),
            description_len % NONE,
        ]
        .into_iter()
        .try_fold(start, u32::checked_add)
        .filter(|&end| end != NONE)?;
        let policy = entry.policy();
        let Entry {
            kind,
            backend,
            created_at,
            rotated_at,
            value_info,
            oauth2,
            upstream,
            ..
        } = entry;
        let rest = (value_info.is_some() || oauth2.is_some() || upstream.is_some()).then(|| {
            Box::new(Rest {
                value_info,
                oauth2,
                upstream,
            })
        });
        let more = match (policy, rest) {
            (Policy::Default, None) => NONE,
            (policy, rest) => {
                let index = len_of(&self.more)?;
                self.more.push(More { policy, rest });
                index
            }
        };
        self.text.push_str(name);
        self.text.push_str(entry.env.as_str());
        self.text
            .push_str(entry.description.as_deref().unwrap_or_default());
        Some(Row {
            created_at,
            rotated_at,
            start,
            description_len,
            name_len,
            env_len,
            kind,
            backend,
            more,
        })
    }

    /// Every credential of a manifest read whole (the paths that do not stream), and the
    /// rest of it.
    fn from_manifest(mut manifest: Manifest) -> anyhow::Result<(Rows, Manifest)> {
        let mut rows = Rows::default();
        for (name, entry) in std::mem::take(&mut manifest.credentials) {
            if !rows.push(name, entry) {
                anyhow::bail!("the manifest is too large to list");
            }
        }
        Ok((rows, manifest))
    }

    /// Put the rows in name order, as a map of the entries would give them (they are,
    /// unless the file was not written by agentcred); `false` when a name comes twice.
    fn finish(&mut self) -> bool {
        if !self.unsorted {
            return true;
        }
        let mut rows = std::mem::take(&mut self.rows);
        rows.sort_by(|a, b| self.name(a).cmp(self.name(b)));
        let twice = rows
            .windows(2)
            .any(|w| self.name(&w[0]) == self.name(&w[1]));
        self.rows = rows;
        self.unsorted = false;
        !twice
    }

    /// Only the rows whose name `keep` says.
    fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let mut rows = std::mem::take(&mut self.rows);
        rows.retain(|row| keep(self.name(row)));
        self.rows = rows;
    }

    /// The rows, in name order once [`Rows::finish`]ed.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, Row> {
        self.rows.iter()
    }

    fn piece(&self, offset: u32, len: u32) -> &str {
        let start = offset as usize;
        self.text
            .get(start..start + len as usize)
            .unwrap_or_default()
    }

    pub(super) fn name(&self, row: &Row) -> &str {
        self.piece(row.start, row.name_len.into())
    }

    pub(super) fn env(&self, row: &Row) -> &str {
        self.piece(row.start + u32::from(row.name_len), row.env_len.into())
    }

    fn description(&self, row: &Row) -> Option<&str> {
        let start = row.start + u32::from(row.name_len) + u32::from(row.env_len);
        (row.description_len != NONE).then(|| self.piece(start, row.description_len))
    }

    fn more(&self, row: &Row) -> Option<&More> {
        self.more.get(row.more as usize)
    }

    fn policy(&self, row: &Row) -> Policy {
        self.more(row).map_or(Policy::Default, |more| more.policy)
    }

    /// When the row's credential is due, as [`Entry::due_at`] says.
    pub(super) fn due_at(&self, row: &Row, defaults: &Defaults) -> Option<Timestamp> {
        rotation::due_at(self.policy(row), defaults.rotate_every, row.rotated_at)
    }

    /// When the row's credential was last rotated.
    pub(super) fn rotated_at(row: &Row) -> Timestamp {
        row.rotated_at
    }

    /// The entry again, as far as `list --json` uses it (no history, hash or MAC; its
    /// policy's `due` or `rotate_every`), so that it is printed by the code `show --json`
    /// uses.
    pub(super) fn entry(&self, row: &Row) -> crate::error::Result<Entry> {
        let rest = self.more(row).and_then(|more| more.rest.as_deref());
        let (due, rotate_every) = match self.policy(row) {
            Policy::Due(at) => (Some(at), None),
            Policy::Every(period) => (None, Some(RotateEvery::Every(period))),
            Policy::Never => (None, Some(RotateEvery::Never)),
            Policy::Default | Policy::Expiry(_) => (None, None),
        };
        Ok(Entry {
            env: EnvVarName::parse(self.env(row))?,
            kind: row.kind,
            backend: row.backend,
            description: self.description(row).map(String::from),
            created_at: row.created_at,
            rotated_at: row.rotated_at,
            rotate_every,
            due,
            sha256: None,
            vault_version: None,
            value_info: rest.and_then(|r| r.value_info.clone()),
            oauth2: rest.and_then(|r| r.oauth2.clone()),
            upstream: rest.and_then(|r| r.upstream.clone()),
            history: Vec::new(),
            mac: String::new(),
        })
    }
}

fn len_of<T>(items: &[T]) -> Option<u32> {
    u32::try_from(items.len()).ok().filter(|&n| n != NONE)
}

/// The credentials `list` prints and the rest of the manifest (its credentials empty),
/// verified when the identity is at hand without a prompt; otherwise unverified, saying so
/// on stderr. The verified read streams; anything unusual reads the file whole (and says
/// what is wrong).
pub(super) fn load_rows(ctx: &Ctx) -> anyhow::Result<(Rows, Manifest, bool)> {
    let store = ctx.open_store()?;
    let identity = ctx.identity_if_unlocked()?;
    if identity.is_none() {
        eprintln!("{}", ctx.unverified_note());
    }
    let mut rows = Rows::default();
    let rest = store.each_entry(identity, &mut |name, entry| rows.push(name, entry))?;
    if let Some(rest) = rest
        && rows.finish()
    {
        return Ok((rows, rest, identity.is_some()));
    }
    drop(rows);
    let Some(identity) = identity else {
        let (rows, rest) = Rows::from_manifest(store.manifest_unverified()?)?;
        return Ok((rows, rest, false));
    };
    let manifest = store
        .reader_of_every(identity)?
        .manifest_without_history()?;
    let (rows, rest) = Rows::from_manifest(manifest)?;
    Ok((rows, rest, true))
}

/// `{"verified": .., "credentials": [..]}`, serialized row by row.
struct ListJson<'a> {
    verified: bool,
    rows: &'a Rows,
    defaults: &'a Defaults,
    now: Timestamp,
}

impl Serialize for ListJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Credentials<'a>(&'a ListJson<'a>);
        impl Serialize for Credentials<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.rows.rows.iter().map(|row| RowJson(self.0, row)))
            }
        }
        struct RowJson<'a>(&'a ListJson<'a>, &'a Row);
        impl Serialize for RowJson<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let RowJson(list, row) = *self;
                let entry = list.rows.entry(row).map_err(serde::ser::Error::custom)?;
                CredentialJson::new(list.rows.name(row), &entry, list.defaults, list.now)
                    .serialize(serializer)
            }
        }
        let mut s = serializer.serialize_struct("List", 2)?;
        s.serialize_field("verified", &self.verified)?;
        s.serialize_field("credentials", &Credentials(self))?;
        s.end()
    }
}

/// Print the listing: one JSON document, or the table (nothing at all for no rows).
fn write_listing(
    out: &mut impl Write,
    rows: &Rows,
    defaults: &Defaults,
    verified: bool,
    json: bool,
    now: Timestamp,
) -> anyhow::Result<()> {
    if json {
        let list = ListJson {
            verified,
            rows,
            defaults,
            now,
        };
        serde_json::to_writer_pretty(&mut *out, &list)?;
        writeln!(out)?;
    } else if !rows.rows.is_empty() {
        let cells = |row: &Row| {
            let due = rows.due_at(row, defaults);
            [
                rows.name(row).to_string(),
                rows.env(row).to_string(),
                row.backend.as_str().to_string(),
                row.kind.as_str().to_string(),
                output::relative(row.rotated_at, now),
                due.map_or_else(
                    || "-".into(),
                    |d| format!("{} ({})", output::date(d), output::relative(d, now)),
                ),
                rotation::status(due, now, defaults.due_soon_window)
                    .as_str()
                    .to_string(),
            ]
        };
        output::table(
            out,
            &["NAME", "ENV", "BACKEND", "KIND", "ROTATED", "DUE", "STATUS"],
            || rows.rows.iter().map(cells),
        )?;
    }
    Ok(())
}

impl ListArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let agent = self.agent.as_deref().map(AgentName::parse).transpose()?;
        let (mut rows, rest, verified) = load_rows(ctx)?;
        if let Some(name) = agent {
            let allow = &rest
                .agent(&name)
                .ok_or_else(|| Error::AgentNotFound {
                    name: name.to_string(),
                })?
                .allow;
            rows.retain(|credential| allow.contains(credential));
        }
        let now = crate::model::rotation::now();
        if !self.json && rows.rows.is_empty() {
            writeln!(
                std::io::stderr(),
                "no credentials yet: `agentcred add NAME` stores one"
            )?;
            return Ok(());
        }
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        write_listing(&mut out, &rows, &rest.defaults, verified, self.json, now)?;
        out.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::crypto::integrity::StoreKey;
    use crate::manifest::{Agent, excerpt};
    use crate::model::credential::CredentialName;
    use crate::model::value_info::ValueFormat;

    /// What `list` printed before it kept rows (the code as it was): from the manifest
    /// parsed whole, its credentials filtered by the agent's list.
    fn printed_before(manifest: Manifest, json: bool, now: Timestamp) -> String {
        struct Old<'a>(&'a Manifest, Timestamp);
        impl Serialize for Old<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                struct Credentials<'a>(&'a Old<'a>);
                impl Serialize for Credentials<'_> {
                    fn serialize<S: serde::Serializer>(
                        &self,
                        serializer: S,
                    ) -> Result<S::Ok, S::Error> {
                        let Old(m, now) = self.0;
                        serializer.collect_seq(m.credentials.iter().map(|(name, entry)| {
                            CredentialJson::new(name, entry, &m.defaults, *now)
                        }))
                    }
                }
                let mut s = serializer.serialize_struct("List", 2)?;
                s.serialize_field("verified", &true)?;
                s.serialize_field("credentials", &Credentials(self))?;
                s.end()
            }
        }
        let mut out = Vec::new();
        if json {
            serde_json::to_writer_pretty(&mut out, &Old(&manifest, now)).unwrap();
            writeln!(out).unwrap();
        } else if !manifest.credentials.is_empty() {
            let manifest = &manifest;
            let rows = || {
                manifest.credentials.iter().map(|(name, entry)| {
                    let row = CredentialJson::new(name, entry, &manifest.defaults, now);
                    let due = entry.due_at(&manifest.defaults);
                    [
                        name.clone(),
                        row.env.to_string(),
                        row.backend.to_string(),
                        row.kind.to_string(),
                        output::relative(entry.rotated_at, now),
                        due.map_or_else(
                            || "-".into(),
                            |d| format!("{} ({})", output::date(d), output::relative(d, now)),
                        ),
                        row.status.to_string(),
                    ]
                })
            };
            let header = ["NAME", "ENV", "BACKEND", "KIND", "ROTATED", "DUE", "STATUS"];
            output::table(&mut out, &header, rows).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    /// What `list` prints now, from the sealed text read in pieces of `chunk` bytes.
    fn printed_now(
        text: &str,
        key: &StoreKey,
        chunk: usize,
        agent: Option<&str>,
        json: bool,
        now: Timestamp,
    ) -> String {
        let mut rows = Rows::default();
        let mut input = std::io::BufReader::with_capacity(chunk, text.as_bytes());
        let head = excerpt::read_head(&mut input).unwrap().unwrap();
        let mut hand = excerpt::hands(|name, entry| rows.push(name, entry));
        let (rest, _) = excerpt::read_rest(&mut input, head, key, &mut hand)
            .unwrap()
            .unwrap();
        drop(hand);
        assert!(rows.finish());
        let rest = Manifest::assemble(&rest, BTreeMap::new()).unwrap();
        if let Some(agent) = agent {
            let allow = &rest.agents[agent].allow;
            rows.retain(|name| allow.contains(name));
        }
        let mut out = Vec::new();
        write_listing(&mut out, &rows, &rest.defaults, true, json, now).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp::new(seconds, nanos).unwrap()
    }

    prop_compose! {
        fn any_entry()(
            env in "[A-Z_][A-Z0-9_]{0,12}",
            which in 0usize..3,
            description in proptest::option::of("\\PC{0,24}"),
            created in 1_700_000_000i64..1_900_000_000,
            rotated in 1_700_000_000i64..1_900_000_000,
            nanos in prop_oneof![Just(0), 0i32..1_000_000_000],
            every in proptest::option::of("[1-9][0-9]{0,2}(h|d|w|mo|y)|never"),
            due in proptest::option::of(1_700_000_000i64..1_900_000_000),
            expires in proptest::option::of(proptest::option::of(1_700_000_000i64..1_900_000_000)),
            rich in 0u8..8,
        ) -> Option<Entry> {
            let env = EnvVarName::parse(&env).ok()?;
            Some(Entry {
                env,
                kind: [Kind::Secret, Kind::File, Kind::Oauth2][which],
                backend: [BackendKind::Age, BackendKind::Keychain, BackendKind::Vault][(which + rich as usize) % 3],
                description,
                created_at: at(created, 0),
                rotated_at: at(rotated, nanos),
                rotate_every: every.and_then(|t| t.parse().ok()),
                due: due.map(|s| at(s, 0)),
                sha256: Some("ab".repeat(32)),
                vault_version: (which == 2).then_some(3),
                value_info: expires.map(|expires| Box::new(ValueInfo {
                    format: ValueFormat::Jwt,
                    expires_at: expires.map(|s| at(s, 0)),
                    client_email: (rich & 1 == 1).then(|| "me@example.com".into()),
                    private_key_id: None,
                })),
                oauth2: (rich & 2 == 2).then(|| Box::new(toml::from_str(
                    "token_url = \"https://auth.example.com/token\"\nclient_id = \"id\"\n",
                ).unwrap())),
                upstream: (rich & 4 == 4).then(|| Box::new(toml::from_str(
                    "url = \"https://api.example.com/v1\"\nheader = \"Authorization: Bearer {}\"\n",
                ).unwrap())),
                history: Vec::new(),
                mac: String::new(),
            })
        }
    }

    fn sealed(credentials: Vec<(String, Option<Entry>)>, allow: &[usize]) -> (String, StoreKey) {
        let key = StoreKey::generate().unwrap();
        let mut m = Manifest::new("0123456789abcdef".into(), "ff".repeat(32));
        let credentials: Vec<(String, Entry)> = credentials
            .into_iter()
            .filter(|(name, _)| matches!(CredentialName::parse(name), Ok(n) if n.as_str() == name))
            .filter_map(|(name, entry)| Some((name, entry?)))
            .collect();
        let allow = allow
            .iter()
            .filter_map(|&i| credentials.get(i).map(|(name, _)| name.clone()))
            .collect();
        m.credentials.extend(credentials);
        let agent = "allow = []\ncreated_at = \"2026-01-01T00:00:00Z\"\ncreated_by = \"me\"\n";
        let mut agent: Agent = toml::from_str(agent).unwrap();
        agent.allow = allow;
        m.agents.insert("bot".into(), agent);
        m.defaults.rotate_every = "30d".parse().unwrap();
        (m.render(&key), key)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any entries, read in pieces of any size, print as the whole manifest did:
        /// the table and the JSON, every credential and an agent's.
        #[test]
        fn rows_print_what_the_whole_manifest_printed(
            credentials in proptest::collection::vec(
                ("[a-z0-9][a-z0-9._-]{0,16}", any_entry()), 0..8),
            allow in proptest::collection::vec(0usize..8, 0..4),
            chunk in prop_oneof![Just(64 * 1024), 1usize..200],
            now in 1_700_000_000i64..1_900_000_000,
        ) {
            let (text, key) = sealed(credentials, &allow);
            let now = at(now, 0);
            let whole = Manifest::parse_sealed(&text).unwrap();
            for json in [false, true] {
                prop_assert_eq!(
                    printed_now(&text, &key, chunk, None, json, now),
                    printed_before(whole.clone(), json, now)
                );
                let mut mine = whole.clone();
                let allow = &whole.agents["bot"].allow;
                mine.credentials.retain(|name, _| allow.contains(name));
                prop_assert_eq!(
                    printed_now(&text, &key, chunk, Some("bot"), json, now),
                    printed_before(mine, json, now)
                );
            }
        }
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_row_is_small() {
        assert_eq!(std::mem::size_of::<Row>(), 48);
        assert_eq!(std::mem::size_of::<More>(), 32);
    }

    #[test]
    fn rows_out_of_order_are_sorted_and_a_name_twice_is_refused() {
        let entry = |env: &str| Entry::plain(env, at(1_800_000_000, 0));
        let mut rows = Rows::default();
        for name in ["b", "c", "a"] {
            assert!(rows.push(name.into(), entry(&name.to_uppercase())));
        }
        assert!(rows.finish());
        let names: Vec<_> = rows.rows.iter().map(|r| rows.name(r)).collect();
        let envs: Vec<_> = rows.rows.iter().map(|r| rows.env(r)).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(envs, ["A", "B", "C"]);
        assert!(rows.push("b".into(), entry("B2")));
        assert!(!rows.finish(), "b twice");
    }
}
