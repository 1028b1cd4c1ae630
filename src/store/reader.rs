//! `Reader`: a verified, read-locked view of the store.

use std::cell::OnceCell;
use std::fs::File;
use std::rc::Rc;

use secrecy::SecretSlice;

use crate::backend::{self, LazyVault};
use crate::crypto::identity::Identity;
use crate::crypto::integrity::StoreKey;
use crate::error::{Error, Result};
use crate::manifest::{self, Agent, Defaults, Entry, Header, Manifest};
use crate::model::credential::{AgentName, BackendKind, CredentialName};

use super::*;

/// A verified, read-locked view of the store.
pub struct Reader<'a> {
    pub(super) store: &'a Store,
    pub(super) identity: &'a Identity,
    pub(super) key: StoreKey,
    pub(super) _lock: Option<File>,
    pub(super) text: String,
    pub(super) header: Header,
    pub(super) vault: OnceCell<Rc<LazyVault>>,
}

impl Reader<'_> {
    pub fn store_id(&self) -> &str {
        &self.header.store_id
    }

    /// The recipients the verified manifest committed to.
    pub fn recipients(&self) -> Result<RecipientsFile> {
        let file = self
            .store
            .committed_recipients(&self.header.recipients_sha256)?;
        if file.sha256 != self.header.recipients_sha256 {
            return Err(Error::integrity(
                RECIPIENTS,
                "it was changed outside agentcred; nothing will be encrypted to it until that is resolved",
            ));
        }
        Ok(file)
    }

    /// One entry, through the fast path (no full parse).
    pub fn entry(&self, name: &CredentialName) -> Result<Entry> {
        manifest::find_entry(&self.text, name)?.ok_or_else(|| Error::CredentialNotFound {
            name: name.to_string(),
        })
    }

    /// The store's rotation defaults, without parsing every entry.
    pub fn defaults(&self) -> Result<Defaults> {
        manifest::find_defaults(&self.text)
    }

    /// One agent, through the fast path; `Ok(None)` when there is no such agent.
    pub fn agent(&self, name: &AgentName) -> Result<Option<Agent>> {
        manifest::find_agent(&self.text, name)
    }

    /// Whether the store has any agent (from the section headers; the seal was verified).
    pub fn has_agents(&self) -> bool {
        !manifest::table_names(&self.text, "agents").is_empty()
    }

    /// The whole manifest (already verified by its seal).
    pub fn manifest(&self) -> Result<Manifest> {
        Manifest::parse_sealed(&self.text)
    }

    /// The store's Vault settings and client (made on first use).
    pub fn vault(&self) -> Result<&Rc<LazyVault>> {
        if let Some(vault) = self.vault.get() {
            return Ok(vault);
        }
        let settings = manifest::find_vault(&self.text)?;
        Ok(self
            .vault
            .get_or_init(|| Rc::new(LazyVault::new(settings, &self.header.store_id))))
    }

    /// Can values of `kind` be used at all (Vault answers)? Asked before a value is typed.
    pub fn check_backend(&self, kind: BackendKind) -> Result<()> {
        backend::open(kind, None, &|| self.vault().map(Rc::clone))?.check_reachable()
    }

    pub fn value(&self, name: &CredentialName, entry: &Entry) -> Result<SecretSlice<u8>> {
        let ctx = self
            .store
            .backend_ctx(self.identity, &self.key, &self.header.store_id, &[]);
        backend::read(&ctx, name, entry, &|| self.vault().map(Rc::clone))
    }
}
