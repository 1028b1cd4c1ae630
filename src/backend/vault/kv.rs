//! The KV v2 side of the vault backend: a value's fields and tag, reads that verify them,
//! check-and-set writes that remember what they replaced, and the mirrored metadata.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::SecretSlice;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::integrity::{StoreKey, tags_equal};
use crate::error::{Error, Result};
use crate::manifest::{Defaults, Entry};
use crate::model::credential::CredentialName;
use crate::model::rotation::Policy;
use crate::util::output::{self};

use super::*;

/// The KV fields of a value, as written.
#[derive(Serialize, Deserialize)]
struct Fields {
    value_b64: String,
    version: u64,
    tag: String,
}

impl Drop for Fields {
    fn drop(&mut self) {
        self.value_b64.zeroize();
    }
}

/// The current version of a path: its fields (JSON; `None` when it has no live version)
/// and its number (also known for a deleted latest version).
type Current = (Option<Zeroizing<Vec<u8>>>, Option<u64>);

/// A write, and what it replaced (to put it back if the transaction does not commit).
pub struct Written {
    /// The value's tag, for the entry's `sha256`.
    pub tag: String,
    /// The KV version written, for the entry's `vault_version`.
    pub version: u64,
    /// The previous version's fields (JSON), or `None` when there was no value.
    previous: Option<Zeroizing<Vec<u8>>>,
}

/// What a read found beyond the value.
pub struct Read {
    pub value: SecretSlice<u8>,
    /// The value is not the one this manifest last wrote, but a newer one (rotated on
    /// another machine, or a write whose commit never happened).
    pub newer: bool,
}

impl Vault {
    /// The current version's fields (raw JSON) and number; `None` fields when the path
    /// has no live version (never written, or its latest version deleted).
    pub(super) fn current(&self, op: &str, name: &CredentialName) -> Result<Current> {
        let answer = self.call(op, "GET", &self.data_path(name), None)?;
        let json = answer.json();
        let version = json
            .as_ref()
            .and_then(|j| j.get("data")?.get("metadata")?.get("version")?.as_u64());
        match answer.status {
            200 => {
                let fields = json
                    .as_ref()
                    .and_then(|j| j.get("data")?.get("data"))
                    .filter(|d| d.is_object())
                    .and_then(|d| serde_json::to_vec(d).ok())
                    .map(Zeroizing::new);
                Ok((fields, version))
            }
            404 => Ok((None, version)),
            _ => Err(self.unexpected(op, &answer)),
        }
    }

    /// Read and check a credential's value.
    pub fn read(
        &self,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<Read> {
        self.find(key, store_id, name, entry)?
            .ok_or_else(|| self.missing(name))
    }

    /// The error for a path with no live version.
    pub fn missing(&self, name: &CredentialName) -> Error {
        Error::VaultValueMissing {
            name: name.to_string(),
            path: self.kv_path(name),
        }
    }

    /// Like [`Vault::read`]; `Ok(None)` when the path has no live version.
    pub fn find(
        &self,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<Option<Read>> {
        let op = format!("read credential {name} from Vault");
        let (fields, version) = self.current(&op, name)?;
        let Some(fields) = fields else {
            return Ok(None);
        };
        let changed = |detail: &str| Error::VaultValueChanged {
            name: name.to_string(),
            path: self.kv_path(name),
            detail: detail.into(),
        };
        let fields: Fields = serde_json::from_slice(&fields).map_err(|_| {
            changed("it does not hold an agentcred value (value_b64, version, tag)")
        })?;
        let value = Zeroizing::new(
            BASE64
                .decode(&fields.value_b64)
                .map_err(|_| changed("its value_b64 is not base64"))?,
        );
        let expected = key.vault_tag(store_id, name.as_str(), fields.version, &value);
        if !tags_equal(&fields.tag, &expected) {
            return Err(changed(
                "its tag does not verify: it was written without the store key (changed outside agentcred), or the store key was replaced on another machine (pull the store)",
            ));
        }
        if version != Some(fields.version) {
            return Err(changed(&format!(
                "version {} holds the value agentcred wrote as version {}: an old version was put back (bao kv rollback?)",
                version.map_or_else(|| "?".into(), |v| v.to_string()),
                fields.version
            )));
        }
        if let Some(recorded) = entry.vault_version
            && fields.version < recorded
        {
            return Err(changed(&format!(
                "it holds version {}, but the manifest records a later write (version {recorded}): an old value was put back, or the credential was removed and added again elsewhere (pull the store)",
                fields.version
            )));
        }
        let tag = key.value_tag(store_id, name.as_str(), &value);
        let newer = !entry.sha256.as_deref().is_some_and(|t| tags_equal(t, &tag));
        Ok(Some(Read {
            value: SecretSlice::from(value.to_vec()),
            newer,
        }))
    }

    /// Write a new version holding `value` (check-and-set against the version read just
    /// before); returns what the entry records and what the write replaced, for
    /// [`Vault::restore`].
    pub fn write(
        &self,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        value: &[u8],
    ) -> Result<Written> {
        let op = format!("write credential {name} to Vault");
        let (previous, current) = self.current(&op, name)?;
        let version = self.put_value(&op, key, store_id, name, value, current.unwrap_or(0))?;
        Ok(Written {
            tag: key.value_tag(store_id, name.as_str(), value),
            version,
            previous,
        })
    }

    /// Write `value` as the version after `cas`; returns that version.
    pub(super) fn put_value(
        &self,
        op: &str,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        value: &[u8],
        cas: u64,
    ) -> Result<u64> {
        let version = cas + 1;
        let fields = Fields {
            value_b64: BASE64.encode(value),
            version,
            tag: key.vault_tag(store_id, name.as_str(), version, value),
        };
        match self.put(op, name, &fields, cas)? {
            Some(written) if written != version => Err(Error::VaultFailed {
                detail: format!(
                    "cannot {op}: Vault wrote version {written}, not {version}; write it again"
                ),
            }),
            _ => Ok(version),
        }
    }

    pub(super) fn put(
        &self,
        op: &str,
        name: &CredentialName,
        fields: &impl Serialize,
        cas: u64,
    ) -> Result<Option<u64>> {
        let mut body = serde_json::json!({ "data": fields, "options": { "cas": cas } });
        let bytes = Zeroizing::new(
            serde_json::to_vec(&body).map_err(|e| Error::io("cannot encode a value", e.into()))?,
        );
        if let Some(data) = body.get_mut("data") {
            zero_json(data);
        }
        let answer = self.call(op, "POST", &self.data_path(name), Some(&bytes))?;
        match answer.status {
            200 | 204 => Ok(answer
                .json()
                .and_then(|j| j.get("data")?.get("version")?.as_u64())),
            400 if answer.error_text().contains("check-and-set") => Err(Error::VaultFailed {
                detail: format!(
                    "cannot {op}: it was changed in Vault meanwhile (by another machine?); nothing was written, try again"
                ),
            }),
            _ => Err(self.unexpected(op, &answer)),
        }
    }

    /// Undo a write whose transaction did not commit: write the previous value again
    /// (tagged for its new version, under `key`, the committed store key), or delete a
    /// value that did not exist before. Fields that were not agentcred's go back as they
    /// were.
    pub fn restore(
        &self,
        key: &StoreKey,
        store_id: &str,
        name: &CredentialName,
        written: &Written,
    ) -> Result<()> {
        let op = format!("restore the previous value of {name} in Vault");
        let Some(previous) = &written.previous else {
            return self.delete(name);
        };
        let ours = serde_json::from_slice::<Fields>(previous)
            .ok()
            .and_then(|fields| {
                let value = Zeroizing::new(BASE64.decode(&fields.value_b64).ok()?);
                let tag = key.vault_tag(store_id, name.as_str(), fields.version, &value);
                tags_equal(&fields.tag, &tag).then_some(value)
            });
        match ours {
            Some(value) => self
                .put_value(&op, key, store_id, name, &value, written.version)
                .map(|_| ()),
            None => {
                let mut fields: serde_json::Value = serde_json::from_slice(previous)
                    .map_err(|e| Error::io("cannot decode a value", e.into()))?;
                let result = self.put(&op, name, &fields, written.version);
                zero_json(&mut fields);
                result.map(|_| ())
            }
        }
    }

    /// Delete every version and the metadata of a credential's path. Idempotent.
    pub fn delete(&self, name: &CredentialName) -> Result<()> {
        let op = format!("delete credential {name} from Vault");
        let answer = self.call(&op, "DELETE", &self.metadata_path(name), None)?;
        match answer.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(self.unexpected(&op, &answer)),
        }
    }

    /// Mirror a credential's rotation dates into its KV custom metadata.
    pub fn set_metadata(
        &self,
        name: &CredentialName,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let op = format!("update the metadata of {name} in Vault");
        let body = serde_json::to_vec(&serde_json::json!({ "custom_metadata": metadata }))
            .map_err(|e| Error::io("cannot encode metadata", e.into()))?;
        let answer = self.call(&op, "POST", &self.metadata_path(name), Some(&body))?;
        match answer.status {
            200 | 204 => Ok(()),
            _ => Err(self.unexpected(&op, &answer)),
        }
    }
}

/// Overwrite the strings of a JSON value that held a secret before it is dropped.
fn zero_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Object(map) => map.values_mut().for_each(zero_json),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zero_json),
        _ => {}
    }
}

/// The custom metadata mirrored for an entry: `rotated_at`, `due_at` (RFC 3339, or
/// `never`), `rotate_every` (a period, `never`, or `-` when a date or an expiry decides),
/// and who manages the path.
pub fn metadata(entry: &Entry, defaults: &Defaults) -> BTreeMap<String, String> {
    let due = entry
        .due_at(defaults)
        .map_or_else(|| "never".to_string(), output::rfc3339);
    let every = match entry.policy() {
        Policy::Every(period) => period.to_string(),
        Policy::Default => defaults.rotate_every.to_string(),
        Policy::Never => "never".into(),
        Policy::Due(_) | Policy::Expiry(_) => "-".into(),
    };
    BTreeMap::from([
        ("managed_by".to_string(), "agentcred".to_string()),
        ("rotated_at".to_string(), output::rfc3339(entry.rotated_at)),
        ("due_at".to_string(), due),
        ("rotate_every".to_string(), every),
    ])
}
