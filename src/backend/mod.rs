//! Where credential values live. The manifest records each credential's backend; each kind
//! is a [`Backend`]: reads go through [`read`], writes are staged by `store::Txn` in the
//! backend, which keeps its own staged work until the commit finishes or undoes it.
//! Adding a backend is a new module implementing [`Backend`], its `BackendKind` arm, and
//! its arm in [`open`].
//! The age backend is a file in the store, the keychain backend an OS keychain item, the
//! vault backend a path in a Vault or OpenBao KV v2 engine.

pub mod age;
pub mod keychain;
pub mod vault;

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::rc::Rc;

use secrecy::SecretSlice;

use crate::crypto::identity::Identity;
use crate::crypto::integrity::StoreKey;
use crate::crypto::recipient::Recipient;
use crate::error::{Error, Result};
use crate::manifest::{Entry, Manifest};
use crate::model::credential::{BackendKind, CredentialName};

/// A Vault client made on first use: most commands never need one, and those that read
/// several `vault` values share one (one connection, one AppRole login).
pub struct LazyVault {
    settings: Option<vault::Settings>,
    store_id: String,
    client: OnceCell<vault::Vault>,
}

impl LazyVault {
    pub fn new(settings: Option<vault::Settings>, store_id: &str) -> Self {
        LazyVault {
            settings,
            store_id: store_id.to_string(),
            client: OnceCell::new(),
        }
    }

    pub fn settings(&self) -> Option<&vault::Settings> {
        self.settings.as_ref()
    }

    pub fn get(&self) -> Result<&vault::Vault> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = vault::Vault::new(self.settings.as_ref(), &self.store_id)?;
        Ok(self.client.get_or_init(|| client))
    }
}

/// What a backend needs from the store to read or write a value.
pub struct Ctx<'a> {
    /// The store's folder (for messages) and its `secrets/`.
    pub root: PathBuf,
    pub secrets_dir: PathBuf,
    pub identity: &'a Identity,
    /// The store key values are tagged with (for an undo: the key that stays).
    pub key: &'a StoreKey,
    pub store_id: String,
    /// Who `age` values are encrypted to.
    pub recipients: &'a [Recipient],
}

impl Ctx<'_> {
    /// An I/O error, worded as the store words them.
    pub fn io_err(&self, what: &str, e: std::io::Error) -> Error {
        Error::io(format!("cannot {what} in {}", self.root.display()), e)
    }
}

/// Where the values of one [`BackendKind`] live: a small synchronous interface, as in
/// secretspec. A transaction stages writes in the backend before the manifest commits,
/// finishes them after the commit, or undoes them when nothing commits. Each backend keeps
/// its own staged work.
pub trait Backend {
    fn kind(&self) -> BackendKind;

    /// The value `entry` records for `name`, checked against its tag; `Ok(None)` when the
    /// backend holds no value for it.
    fn read(
        &self,
        ctx: &Ctx,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<Option<SecretSlice<u8>>>;

    /// The error for a value the manifest records but the backend does not hold.
    fn missing(&self, ctx: &Ctx, name: &CredentialName) -> Error;

    /// At the start of a transaction: finish or drop what a killed writer left staged.
    fn recover(&self, _ctx: &Ctx, _manifest: &Manifest) -> Result<()> {
        Ok(())
    }

    /// Stage a new value; returns what the entry records in `sha256` (its tag or hash).
    fn stage(&mut self, ctx: &Ctx, name: &CredentialName, value: &[u8]) -> Result<String>;

    /// The names this backend has staged values for.
    fn staged(&self) -> Vec<&CredentialName>;

    /// Whether a change of recipients must write this backend's values again: `age` values
    /// are encrypted to the recipients; the others only carry a tag of the store key.
    fn rewrite_on_recipients(&self, new_key: bool) -> bool {
        new_key
    }

    /// Can the backend be used at all (before a value is asked for)?
    fn check_reachable(&self) -> Result<()> {
        Ok(())
    }

    /// Just before the manifest commit: what cannot wait until after it (checks, writes
    /// that have no rename), recorded in the manifest where an entry must say so.
    fn before_commit(&mut self, _ctx: &Ctx, _manifest: &mut Manifest) -> Result<()> {
        Ok(())
    }

    /// After the manifest committed: put staged values in place and delete what it no
    /// longer names. `touched` holds every name staged in any backend or removed. What
    /// cannot be cleaned up is a warning: the commit has happened.
    fn finish(
        &mut self,
        ctx: &Ctx,
        manifest: &Manifest,
        touched: &BTreeSet<CredentialName>,
        warnings: &mut Vec<String>,
    ) -> Result<()>;

    /// After a streamed commit (see `Store::begin_streamed`), which kept every entry in its
    /// backend and removed none: put every staged value in place. Only `age` takes part in
    /// one; another backend with staged work is a bug, refused before anything moves.
    fn finish_in_place(&mut self, _ctx: &Ctx) -> Result<()> {
        if self.staged().is_empty() {
            return Ok(());
        }
        Err(Error::io(
            format!(
                "cannot finish the {} backend's writes",
                self.kind().as_str()
            ),
            std::io::Error::other("a streamed commit staged them (a bug in agentcred)"),
        ))
    }

    /// Nothing committed: take back every staged value.
    fn undo(&mut self, ctx: &Ctx, warnings: &mut Vec<String>);
}

/// The backend of a kind. `manifest` is the committed manifest of a transaction (what the
/// backend must know of the values it already holds), `None` for a read; `vault` gives the
/// Vault client, asked for only by the vault backend.
pub fn open(
    kind: BackendKind,
    manifest: Option<&Manifest>,
    vault: &dyn Fn() -> Result<Rc<LazyVault>>,
) -> Result<Box<dyn Backend>> {
    Ok(match kind {
        BackendKind::Age => Box::new(age::AgeBackend::default()),
        BackendKind::Keychain => Box::new(keychain::KeychainBackend::new(manifest)),
        BackendKind::Vault => Box::new(vault::VaultBackend::new(manifest, vault()?)),
    })
}

/// Every backend, for a transaction on `manifest`.
pub fn open_all(manifest: &Manifest) -> Result<Vec<Box<dyn Backend>>> {
    let client = Rc::new(LazyVault::new(manifest.vault.clone(), &manifest.store_id));
    BackendKind::ALL
        .iter()
        .map(|&kind| open(kind, Some(manifest), &|| Ok(Rc::clone(&client))))
        .collect()
}

/// Read a credential's value from wherever its entry says it lives; a value the backend
/// does not hold is an error.
pub fn read(
    ctx: &Ctx,
    name: &CredentialName,
    entry: &Entry,
    vault: &dyn Fn() -> Result<Rc<LazyVault>>,
) -> Result<SecretSlice<u8>> {
    let backend = open(entry.backend, None, vault)?;
    backend
        .read(ctx, name, entry)?
        .ok_or_else(|| backend.missing(ctx, name))
}
