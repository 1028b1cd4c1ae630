//! The domain operations of a transaction: every change to credentials, agents and
//! settings goes through these, so an entry and its history event are built in one place
//! and no caller edits the manifest directly.

use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::manifest::{Agent, Entry, Event, Manifest, RotateEvery};
use crate::model::credential::{AgentName, BackendKind, CredentialName, EnvVarName, Kind};
use crate::model::settings::{ClientConfig, VaultSettings};
use crate::util::host::user_at_host;

use super::Txn;

/// A new value's entry: what the caller decides. The store fills in the rest (the value's
/// hash or tag, what the value looks like, the history, the MAC).
pub struct NewEntry {
    pub env: EnvVarName,
    pub kind: Kind,
    pub backend: BackendKind,
    pub description: Option<String>,
    pub rotated_at: Timestamp,
    pub rotate_every: Option<RotateEvery>,
    pub due: Option<Timestamp>,
    pub oauth2: Option<Box<ClientConfig>>,
    /// Where `exec --broker` sends it (README "Give an LLM agent a key it cannot leak").
    pub upstream: Option<Box<crate::model::upstream::Upstream>>,
}

/// What `edit` may change in an entry's metadata; `None` keeps a field.
#[derive(Default)]
pub struct EntryEdit {
    pub env: Option<EnvVarName>,
    pub description: Option<Option<String>>,
    pub rotate_every: Option<Option<RotateEvery>>,
    pub due: Option<Option<Timestamp>>,
    /// Where `exec --broker` sends it: set, replaced or removed (`--no-upstream`).
    pub upstream: Option<crate::model::upstream::UpstreamChange>,
}

/// A history event, the one place they are made.
fn event(at: Timestamp, action: &str, reason: Option<String>) -> Event {
    Event {
        at,
        action: action.into(),
        by: user_at_host().into(),
        reason,
    }
}

/// Add `event` to a history, growing it by that one event: `recipients rm` records one in
/// each of 10,000 entries, and the usual doubling (a one-event history grows to room for
/// four) made that 2.9 MB of histories where 1.4 MB holds them.
fn record(history: &mut Vec<Event>, event: Event) {
    history.reserve_exact(1);
    history.push(event);
}

/// Record `action` in an entry's history, and make it due at `at` (or keep an earlier due
/// date) with `due`.
pub(super) fn mark_entry(
    entry: &mut Entry,
    at: Timestamp,
    due: bool,
    action: &str,
    reason: Option<String>,
) {
    if due {
        entry.due = Some(entry.due.map_or(at, |d| d.min(at)));
    }
    record(&mut entry.history, event(at, action, reason));
}

impl Txn<'_> {
    /// The manifest as changed so far (read-only: changes go through the methods below).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn entry(&self, name: &CredentialName) -> Option<&Entry> {
        self.manifest.entry(name)
    }

    pub fn agent(&self, name: &AgentName) -> Option<&Agent> {
        self.manifest.agent(name)
    }

    /// Store `value` under `name` with a new entry (`add`, `import`), staged in the entry's
    /// backend. A replaced entry keeps its creation date and history; the history records
    /// `action` for a new credential, `replaced` otherwise, with `reason` when given.
    pub fn put_value(
        &mut self,
        name: &CredentialName,
        value: &[u8],
        new: NewEntry,
        at: Timestamp,
        action: &str,
        reason: Option<String>,
    ) -> Result<&Entry> {
        let previous = self.manifest.entry(name).cloned();
        let sha256 = self.stage_value_for(new.backend, name, value)?;
        let created_at = previous.as_ref().map_or(at, |p| p.created_at);
        let mut history = previous.map(|p| p.history).unwrap_or_default();
        let action = if history.is_empty() {
            action
        } else {
            "replaced"
        };
        record(&mut history, event(at, action, reason));
        let entry = Entry {
            env: new.env,
            kind: new.kind,
            backend: new.backend,
            description: new.description,
            created_at,
            rotated_at: new.rotated_at,
            rotate_every: new.rotate_every,
            due: new.due,
            sha256: Some(sha256),
            vault_version: None,
            value_info: crate::model::value_info::inspect(value).map(Box::new),
            oauth2: new.oauth2,
            upstream: new.upstream,
            history,
            mac: String::new(),
        };
        Ok(self.insert_entry(name, entry))
    }

    /// A new value from an OAuth server for an existing credential (a login, a refresh token
    /// the server rotated): staged where it lives, `rotated_at` moved to `at`, an event
    /// recorded only when `action` is given (a rotation on every refresh would flood it).
    pub fn replace_value(
        &mut self,
        name: &CredentialName,
        value: &[u8],
        at: Timestamp,
        action: Option<(&str, Option<String>)>,
    ) -> Result<&Entry> {
        let mut entry =
            self.manifest
                .entry(name)
                .cloned()
                .ok_or_else(|| Error::CredentialNotFound {
                    name: name.to_string(),
                })?;
        entry.sha256 = Some(self.stage_value_for(entry.backend, name, value)?);
        entry.rotated_at = at.max(entry.rotated_at);
        entry.value_info = None;
        if let Some((action, reason)) = action {
            record(&mut entry.history, event(at, action, reason));
        }
        Ok(self.insert_entry(name, entry))
    }

    /// A new value for an existing credential (`rotate`), staged where it lives now; a
    /// one-off due date was for the old value and is cleared (and returned).
    pub fn rotate_value(
        &mut self,
        name: &CredentialName,
        value: &[u8],
        at: Timestamp,
    ) -> Result<(&Entry, Option<Timestamp>)> {
        let mut entry =
            self.manifest
                .entry(name)
                .cloned()
                .ok_or_else(|| Error::CredentialNotFound {
                    name: name.to_string(),
                })?;
        let sha256 = self.stage_value(name, value)?;
        let cleared = entry.due.take();
        entry.rotated_at = at;
        entry.sha256 = Some(sha256);
        entry.value_info = crate::model::value_info::inspect(value).map(Box::new);
        record(&mut entry.history, event(at, "rotated", None));
        Ok((self.insert_entry(name, entry), cleared))
    }

    /// Make a credential due at `at` at the latest, recording why (`compromised` by a scan,
    /// `recipient-removed`); `due` false records the event only.
    pub fn mark(
        &mut self,
        name: &CredentialName,
        at: Timestamp,
        due: bool,
        action: &str,
        reason: Option<String>,
    ) -> Result<()> {
        mark_entry(self.entry_mut(name)?, at, due, action, reason);
        Ok(())
    }

    /// Make a credential due now (`scan` found it exposed), recording why.
    pub fn mark_due_now(
        &mut self,
        name: &CredentialName,
        at: Timestamp,
        action: &str,
        reason: Option<String>,
    ) -> Result<()> {
        let entry = self.entry_mut(name)?;
        entry.due = Some(at);
        record(&mut entry.history, event(at, action, reason));
        Ok(())
    }

    /// Change an entry's metadata (`edit`), recorded as `edited` with what changed;
    /// returns the entry and what changed (`env`, `description`, `rotation policy`).
    pub fn edit(
        &mut self,
        name: &CredentialName,
        edit: EntryEdit,
        at: Timestamp,
    ) -> Result<(&Entry, Vec<&'static str>)> {
        let entry = self.entry_mut(name)?;
        let mut changed = Vec::new();
        if let Some(env) = edit.env {
            entry.env = env;
            changed.push("env");
        }
        if let Some(description) = edit.description {
            entry.description = description;
            changed.push("description");
        }
        if edit.rotate_every.is_some() || edit.due.is_some() {
            changed.push("rotation policy");
        }
        if let Some(rotate_every) = edit.rotate_every {
            entry.rotate_every = rotate_every;
        }
        if let Some(due) = edit.due {
            entry.due = due;
        }
        if let Some(change) = edit.upstream {
            change.apply(entry.kind, &mut entry.upstream)?;
            changed.push("upstream");
        }
        entry
            .history
            .push(event(at, "edited", Some(changed.join(", "))));
        Ok((entry, changed))
    }

    /// Give a credential another name (`rename`): its value moves to the new name in the
    /// same backend (an `age` file binds its name, so it is encrypted again; a keychain
    /// item or vault path is named after the credential), its entry and history follow
    /// (with `env` as its variable when given), the old value goes at commit as for
    /// [`Txn::remove`], and every agent that allowed the old name allows the new one.
    /// Returns those agents.
    pub fn rename(
        &mut self,
        from: &CredentialName,
        to: &CredentialName,
        env: Option<EnvVarName>,
        at: Timestamp,
    ) -> Result<Vec<String>> {
        let entry =
            self.manifest
                .entry(from)
                .cloned()
                .ok_or_else(|| Error::CredentialNotFound {
                    name: from.to_string(),
                })?;
        if self.manifest.entry(to).is_some() {
            return Err(Error::Exists {
                name: to.to_string(),
            });
        }
        let value = self.read_value(from, &entry)?;
        let sha256 = {
            use secrecy::ExposeSecret;
            self.stage_value_for(entry.backend, to, value.expose_secret())?
        };
        let mut entry = self.remove(from).unwrap_or(entry);
        entry.sha256 = Some(sha256);
        entry.vault_version = None;
        if let Some(env) = env {
            entry.env = env;
        }
        entry
            .history
            .push(event(at, "renamed", Some(format!("from {from}"))));
        self.insert_entry(to, entry);
        let mut agents = Vec::new();
        for (agent_name, agent) in &mut self.manifest.agents {
            if agent.allow.remove(from.as_str()) {
                agent.allow.insert(to.to_string());
                agents.push(agent_name.clone());
            }
        }
        Ok(agents)
    }

    /// Remove a credential and take it out of every agent's allowance; returns the agents
    /// that allowed it.
    pub fn remove_credential(&mut self, name: &CredentialName) -> Result<Vec<String>> {
        self.remove(name).ok_or_else(|| Error::CredentialNotFound {
            name: name.to_string(),
        })?;
        // An agent never allows a credential that does not exist.
        let mut agents = Vec::new();
        for (agent_name, agent) in &mut self.manifest.agents {
            if agent.allow.remove(name.as_str()) {
                agents.push(agent_name.clone());
            }
        }
        Ok(agents)
    }

    /// Add or replace an agent.
    pub fn put_agent(&mut self, name: &AgentName, agent: Agent) {
        self.manifest.agents.insert(name.to_string(), agent);
    }

    /// An agent to change in place (its MAC is renewed at commit), e.g. its declared
    /// commands (`agent command add|rm`).
    pub fn agent_mut(&mut self, name: &AgentName) -> Result<&mut Agent> {
        self.manifest
            .agents
            .get_mut(name.as_str())
            .ok_or_else(|| Error::AgentNotFound {
                name: name.to_string(),
            })
    }

    /// Remove an agent; `None` when there is none of that name.
    pub fn remove_agent(&mut self, name: &AgentName) -> Option<Agent> {
        self.manifest.agents.remove(name.as_str())
    }

    /// Allow (`grant`) or disallow an agent each credential; returns the names that were
    /// already so, and the agent as it is now.
    pub fn change_allowance(
        &mut self,
        name: &AgentName,
        credentials: &[CredentialName],
        grant: bool,
    ) -> Result<(Vec<String>, &Agent)> {
        let agent =
            self.manifest
                .agents
                .get_mut(name.as_str())
                .ok_or_else(|| Error::AgentNotFound {
                    name: name.to_string(),
                })?;
        let mut unchanged = Vec::new();
        for credential in credentials {
            let changed = if grant {
                agent.allow.insert(credential.to_string())
            } else {
                agent.allow.remove(credential.as_str())
            };
            if !changed {
                unchanged.push(credential.to_string());
            }
        }
        Ok((unchanged, agent))
    }

    /// Set the store's `[vault]` settings.
    pub fn set_vault_settings(&mut self, settings: VaultSettings) {
        self.manifest.vault = Some(settings);
    }

    /// Set `require_agent` (exec and export refuse to run when no agent applies); returns
    /// whether it changed.
    pub fn set_require_agent(&mut self, value: bool) -> bool {
        let changed = self.manifest.defaults.require_agent != value;
        self.manifest.defaults.require_agent = value;
        changed
    }

    fn entry_mut(&mut self, name: &CredentialName) -> Result<&mut Entry> {
        self.manifest
            .credentials
            .get_mut(name.as_str())
            .ok_or_else(|| Error::CredentialNotFound {
                name: name.to_string(),
            })
    }

    fn insert_entry(&mut self, name: &CredentialName, entry: Entry) -> &Entry {
        self.manifest.credentials.insert(name.to_string(), entry);
        &self.manifest.credentials[name.as_str()]
    }
}
