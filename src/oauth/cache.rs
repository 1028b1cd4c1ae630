//! The token cache: `<store>/cache/oauth2/NAME.age`, encrypted to the user's own identity,
//! its record bound by an HMAC keyed with the client secret, and the lock that makes
//! concurrent refreshes one request.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::identity::Identity;
use crate::crypto::integrity::{self, tags_equal};
use crate::error::{Error, Result};
use crate::model::credential::CredentialName;
use crate::store::Store;
use crate::util;
use crate::util::output::{self};

use super::*;

pub(super) fn token_file(name: &CredentialName) -> String {
    format!("{name}.age")
}

pub(super) fn lock_file(name: &CredentialName) -> String {
    format!("{name}.lock")
}

/// The token cache of one store, encrypted to the user's identity.
pub struct TokenCache<'a> {
    /// The store, for grants whose value the server rotates (see `refresh`).
    pub(super) store: &'a Store,
    dir: PathBuf,
    pub(super) identity: &'a Identity,
    store_id: &'a str,
    /// Where notes and warnings go: the store's caller.
    pub(super) say: crate::util::output::Say,
}

/// A cached token as stored (inside the age file, after the header line).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    obtained_at: Timestamp,
    expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_type: Option<String>,
    access_token: String,
    mac: String,
}

impl Drop for Record {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.access_token);
    }
}

impl<'a> TokenCache<'a> {
    pub fn new(store: &'a Store, identity: &'a Identity, store_id: &'a str) -> Self {
        TokenCache {
            store,
            dir: store.root().join(CACHE_DIR).join(TOKENS_DIR),
            identity,
            store_id,
            say: store.sayer(),
        }
    }

    /// The MAC binding a token to this store, credential, configuration and secret.
    fn mac(&self, client: &Client, record: &Record) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(client.secret.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let config = serde_json::to_vec(client.config)
            .unwrap_or_else(|_| unreachable!("configs always serialize"));
        let (obtained, expires) = (
            output::rfc3339(record.obtained_at),
            output::rfc3339(record.expires_at),
        );
        mac.update(TOKEN_MAC_DOMAIN);
        for part in [
            self.store_id.as_bytes(),
            client.name.as_str().as_bytes(),
            &config,
            obtained.as_bytes(),
            expires.as_bytes(),
            record.token_type.as_deref().unwrap_or("").as_bytes(),
            record.access_token.as_bytes(),
        ] {
            mac.update(&[0]);
            mac.update(part);
        }
        BASE64.encode(mac.finalize().into_bytes())
    }

    fn header(&self, name: &CredentialName) -> String {
        format!("{TOKEN_MAGIC} {} {name}\n", self.store_id)
    }

    /// The cached token, if there is one for exactly this client and it is fresh. Anything
    /// else (no file, another identity's, damaged, planted, stale) is a miss.
    pub(super) fn fresh(&self, client: &Client) -> Option<Token> {
        let bytes = util::fs::read_optional(&self.dir.join(token_file(client.name))).ok()??;
        let plain = integrity::decrypt(self.identity, &bytes).ok()?;
        let body = plain.strip_prefix(self.header(client.name).as_bytes())?;
        let record: Record = serde_json::from_slice(body).ok()?;
        if !tags_equal(&record.mac, &self.mac(client, &record)) {
            return None;
        }
        if !is_fresh(
            record.obtained_at,
            record.expires_at,
            crate::model::rotation::now(),
        ) {
            return None;
        }
        Some(Token {
            access_token: Zeroizing::new(record.access_token.clone()),
            refresh_token: None,
            token_type: record.token_type.clone(),
            obtained_at: record.obtained_at,
            expires_at: Some(record.expires_at),
        })
    }

    pub(super) fn save(&self, client: &Client, token: &Token, expires_at: Timestamp) -> Result<()> {
        let mut record = Record {
            obtained_at: token.obtained_at,
            expires_at,
            token_type: token.token_type.clone(),
            access_token: token.access_token.to_string(),
            mac: String::new(),
        };
        record.mac = self.mac(client, &record);
        let mut plain = Zeroizing::new(self.header(client.name).into_bytes());
        serde_json::to_writer(&mut *plain, &record)
            .map_err(|e| Error::io("cannot cache the token", e.into()))?;
        let ciphertext = integrity::encrypt_to(&self.identity.recipients(), &plain)?;
        self.make_dir()?;
        util::fs::write_atomic(&self.dir, &token_file(client.name), &ciphertext)
            .map_err(|e| Error::io(format!("cannot write {}", self.dir.display()), e))
    }

    /// Create `cache/` and `cache/oauth2/` 0700, refusing a symlink in their place.
    fn make_dir(&self) -> Result<()> {
        let Some(cache) = self.dir.parent() else {
            return Ok(());
        };
        for dir in [cache, self.dir.as_path()] {
            match std::fs::symlink_metadata(dir) {
                Ok(meta) if !meta.is_dir() => {
                    return Err(Error::integrity(
                        dir.display().to_string(),
                        "it is not a directory (a symlink?)",
                    ));
                }
                Ok(meta) if meta.mode() & 0o077 == 0 => continue,
                _ => util::fs::create_private_dir(dir)
                    .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?,
            }
        }
        Ok(())
    }

    /// Take the credential's refresh lock, waiting at most [`LOCK_WAIT`]. `None` on a store
    /// this user cannot write (then nothing can be cached either, and each process asks).
    pub(super) fn lock(&self, name: &CredentialName) -> Result<Option<File>> {
        let path = self.dir.join(lock_file(name));
        let err = |e| Error::io(format!("cannot lock {}", path.display()), e);
        match self.make_dir() {
            Ok(()) => {}
            Err(Error::Io { cause, .. }) if read_only(&cause) => return Ok(None),
            Err(e) => return Err(e),
        }
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if read_only(&e) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::OAuth {
                        name: name.to_string(),
                        detail: format!(
                            "another agentcred has been refreshing its token for over {} s",
                            LOCK_WAIT.as_secs()
                        ),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(err(e)),
            }
        }
    }
}

fn read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}
