//! The `age` backend: `secrets/NAME.age`, an armored age file encrypted to every recipient,
//! whose plaintext is the envelope of [`crate::crypto::integrity::seal_value`].
//!
//! A write first lands as `NAME.age.pending`; the manifest rename is the commit point, and
//! the pending file is renamed into place after it. A reader that finds `NAME.age` not
//! matching the manifest's hash (a writer died between the two renames) takes the pending
//! file when its hash is the one the sealed manifest names.

use std::path::Path;

use secrecy::SecretSlice;

use crate::crypto::identity::Identity;
use crate::crypto::integrity::{self, DecryptFailure, sha256_hex};
use crate::error::{Error, Result};
use crate::manifest::Entry;
use crate::model::credential::CredentialName;
use crate::util;

pub fn file_name(name: &CredentialName) -> String {
    format!("{name}.age")
}

pub fn pending_name(name: &CredentialName) -> String {
    format!("{name}.age.pending")
}

pub fn read(
    secrets_dir: &Path,
    identity: &Identity,
    store_id: &str,
    name: &CredentialName,
    entry: &Entry,
) -> Result<SecretSlice<u8>> {
    let file = format!("secrets/{}", file_name(name));
    let ciphertext = committed_ciphertext(secrets_dir, name, entry)?;
    let plain = integrity::decrypt(identity, &ciphertext).map_err(|failure| match failure {
        DecryptFailure::NotForUs => Error::NotARecipient {
            what: format!("credential {name}"),
            identity: identity.source().to_string(),
        },
        DecryptFailure::Damaged => Error::integrity(&file, "it does not decrypt"),
    })?;
    integrity::open_value(&plain, store_id, name.as_str(), &file)
}

/// The bytes of the file the manifest names for `name`: `NAME.age`, or the pending file a
/// writer killed after its commit left, when that is the one whose hash is recorded.
pub fn committed_ciphertext(
    secrets_dir: &Path,
    name: &CredentialName,
    entry: &Entry,
) -> Result<Vec<u8>> {
    let file = format!("secrets/{}", file_name(name));
    let expected = entry
        .sha256
        .as_deref()
        .ok_or_else(|| Error::integrity(&file, "the manifest records no hash for it"))?;
    let read = |file_name: String| {
        let path = secrets_dir.join(file_name);
        util::fs::read_optional(&path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
    };
    let current = read(file_name(name))?;
    match current {
        Some(bytes) if sha256_hex(&bytes) == expected => Ok(bytes),
        current => match read(pending_name(name))? {
            Some(bytes) if sha256_hex(&bytes) == expected => Ok(bytes),
            _ if current.is_none() => Err(Error::integrity(&file, "it is missing")),
            _ => Err(Error::integrity(
                &file,
                "it does not match the manifest (replaced, swapped or damaged)",
            )),
        },
    }
}
