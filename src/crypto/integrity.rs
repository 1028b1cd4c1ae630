//! What makes the store tamper-evident, and the envelopes inside the age files.
//!
//! age proves secrecy, not authorship: anyone with the public recipient can write a valid
//! `.age` file. So a random 32-byte store key, encrypted to the recipients, keys HMAC-SHA256
//! tags over the manifest (the seal, over the exact file bytes) and over each entry (so an
//! error can name the entry that changed). The manifest records each secret file's SHA-256,
//! and each decrypted payload starts with a line naming its store and credential, so a file
//! copied over another is refused even before the hash is checked. README documents the
//! formats byte for byte, so another implementation can verify a store.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretSlice};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::identity::Identity;
use crate::crypto::recipient::Recipient;
use crate::error::{Error, Result};
use crate::util::hash::hex;
pub use crate::util::hash::sha256_hex;

const SECRET_MAGIC: &str = "agentcred-secret/v1";
const STORE_KEY_MAGIC: &str = "agentcred-store-key/v1";
const SEAL_DOMAIN: &[u8] = b"agentcred/manifest/v1";
const ENTRY_DOMAIN: &[u8] = b"agentcred/entry/v1";
const AGENT_DOMAIN: &[u8] = b"agentcred/agent/v1";
const FINGERPRINT_DOMAIN: &[u8] = b"agentcred/fingerprint/v1";
const KEYCHAIN_VALUE_DOMAIN: &[u8] = b"agentcred/keychain-value/v1";
const VAULT_VALUE_DOMAIN: &[u8] = b"agentcred/vault-value/v1";
/// The line of `storekey.age` that carries an earlier store key.
const PREVIOUS_PREFIX: &str = "previous ";

/// The store's MAC key. Not `Debug`, zeroized on drop.
pub struct StoreKey(SecretBox<[u8; 32]>);

impl StoreKey {
    pub fn generate() -> Result<Self> {
        let mut key = SecretBox::new(Box::new([0u8; 32]));
        getrandom::getrandom(secrecy::ExposeSecretMut::expose_secret_mut(&mut key))
            .map_err(|e| Error::io("cannot get random bytes", std::io::Error::other(e)))?;
        Ok(StoreKey(key))
    }

    fn mac(&self, domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.hmac();
        mac.update(domain);
        for part in parts {
            mac.update(&[0]);
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The seal over a manifest's bytes without its seal line, given as the pieces before
    /// and after that line (so a large manifest is not copied to be sealed).
    pub fn seal(&self, pieces: &[&[u8]]) -> String {
        let mut sealer = self.sealer();
        for piece in pieces {
            sealer.update(piece);
        }
        sealer.finish()
    }

    /// [`StoreKey::seal`] of bytes given piece by piece (a manifest read in pieces).
    pub fn sealer(&self) -> Sealer {
        let mut mac = self.hmac();
        mac.update(SEAL_DOMAIN);
        mac.update(&[0]);
        Sealer(mac)
    }

    fn hmac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    /// The tag of one credential entry.
    pub fn entry_mac(&self, store_id: &str, name: &str, entry_json: &[u8]) -> String {
        BASE64.encode(self.mac(
            ENTRY_DOMAIN,
            &[store_id.as_bytes(), name.as_bytes(), entry_json],
        ))
    }

    /// The tag of one agent entry (its own domain, so it can never pass for a credential's).
    pub fn agent_mac(&self, store_id: &str, name: &str, agent_json: &[u8]) -> String {
        BASE64.encode(self.mac(
            AGENT_DOMAIN,
            &[store_id.as_bytes(), name.as_bytes(), agent_json],
        ))
    }

    /// The tag the manifest records for a value kept outside the store (in the OS
    /// keychain, or in Vault), so a value changed there is noticed. Keyed, unlike a plain hash: the
    /// manifest goes to git, and a hash would let anyone test guesses of a short value.
    pub fn value_tag(&self, store_id: &str, name: &str, value: &[u8]) -> String {
        hex(&self.mac(
            KEYCHAIN_VALUE_DOMAIN,
            &[store_id.as_bytes(), name.as_bytes(), value],
        ))
    }

    /// The tag stored with a value in Vault: it binds the value to its store, its name and
    /// the KV version it was written as, so a value put there by anyone without the store
    /// key, moved from another credential, or an old version put back, is refused (see
    /// the vault backend).
    pub fn vault_tag(&self, store_id: &str, name: &str, version: u64, value: &[u8]) -> String {
        hex(&self.mac(
            VAULT_VALUE_DOMAIN,
            &[
                store_id.as_bytes(),
                name.as_bytes(),
                version.to_string().as_bytes(),
                value,
            ],
        ))
    }

    /// A 32-byte key for another purpose, derived from the store key with HKDF-SHA256
    /// (`domain` as the salt, `context` as the info): whoever can open `storekey.age` can
    /// derive it, and nobody else.
    pub fn derive(&self, domain: &[u8], context: &[u8]) -> SecretBox<[u8; 32]> {
        let mut okm = SecretBox::new(Box::new([0u8; 32]));
        hkdf::Hkdf::<Sha256>::new(Some(domain), self.0.expose_secret())
            .expand(
                context,
                secrecy::ExposeSecretMut::expose_secret_mut(&mut okm),
            )
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        okm
    }

    /// A copy of the key (for the chain of earlier keys in a new `storekey.age`).
    pub fn duplicate(&self) -> StoreKey {
        StoreKey(SecretBox::new(Box::new(*self.0.expose_secret())))
    }

    /// A public fingerprint of the key, to notice when a store's key is replaced.
    pub fn fingerprint(&self) -> String {
        hex(&self.mac(FINGERPRINT_DOMAIN, &[])[..16])
    }
}

/// A seal being computed: see [`StoreKey::sealer`].
pub struct Sealer(Hmac<Sha256>);

impl Sealer {
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    pub fn finish(self) -> String {
        BASE64.encode(self.0.finalize().into_bytes())
    }
}

/// Compare two tags in constant time.
pub fn tags_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Encrypt `plaintext` to every recipient, ASCII-armored.
pub fn encrypt_to(recipients: &[Recipient], plaintext: &[u8]) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| Error::io("cannot encrypt", e);
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(Recipient::as_age))
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 512);
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(err)?;
    let mut writer = encryptor.wrap_output(armored).map_err(err)?;
    writer.write_all(plaintext).map_err(err)?;
    writer.finish().and_then(|a| a.finish()).map_err(err)?;
    Ok(out)
}

/// Why a decryption failed, so callers can pick the exit code.
pub enum DecryptFailure {
    /// No key of ours opens it (exit 5).
    NotForUs,
    /// It is not a well-formed age file, or its payload is damaged (exit 6).
    Damaged,
}

/// Decrypt an age file (armored or binary) with the user's identity.
pub fn decrypt(
    identity: &Identity,
    ciphertext: &[u8],
) -> std::result::Result<Zeroizing<Vec<u8>>, DecryptFailure> {
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(ciphertext))
        .map_err(|_| DecryptFailure::Damaged)?;
    if decryptor.is_scrypt() {
        return Err(DecryptFailure::Damaged);
    }
    let mut reader = decryptor.decrypt(identity.as_age()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => DecryptFailure::NotForUs,
        _ => DecryptFailure::Damaged,
    })?;
    let mut plain = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    reader
        .read_to_end(&mut plain)
        .map_err(|_| DecryptFailure::Damaged)?;
    Ok(plain)
}

/// The plaintext of a secret file: a header line binding store and name, then the value.
pub fn seal_value(store_id: &str, name: &str, value: &[u8]) -> Zeroizing<Vec<u8>> {
    let header = format!("{SECRET_MAGIC} {store_id} {name}\n");
    let mut plain = Zeroizing::new(Vec::with_capacity(header.len() + value.len()));
    plain.extend_from_slice(header.as_bytes());
    plain.extend_from_slice(value);
    plain
}

/// Check a decrypted secret file's header and return the value.
pub fn open_value(plain: &[u8], store_id: &str, name: &str, file: &str) -> Result<SecretSlice<u8>> {
    let newline = plain
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| Error::integrity(file, "the decrypted payload has no agentcred header"))?;
    let header = std::str::from_utf8(&plain[..newline])
        .map_err(|_| Error::integrity(file, "the decrypted payload has no agentcred header"))?;
    let mut parts = header.split(' ');
    if parts.next() != Some(SECRET_MAGIC) {
        return Err(Error::integrity(
            file,
            "the decrypted payload has no agentcred header",
        ));
    }
    if parts.next() != Some(store_id) {
        return Err(Error::integrity(file, "it belongs to another store"));
    }
    match parts.next() {
        Some(bound) if bound == name && parts.next().is_none() => {}
        Some(bound) => {
            return Err(Error::integrity(
                file,
                format!(
                    "it holds the value of credential {}, not {name}",
                    crate::util::output::escape(bound)
                ),
            ));
        }
        None => {
            return Err(Error::integrity(
                file,
                "the decrypted payload has no credential name",
            ));
        }
    }
    Ok(SecretSlice::from(plain[newline + 1..].to_vec()))
}

/// What `storekey.age` holds: the store key, and every earlier key of the store, newest
/// first (after `recipients rm` rotated it). A machine that remembers an earlier key's
/// fingerprint accepts the new key when the file proves knowledge of that earlier key.
pub struct StoreKeyFile {
    pub key: StoreKey,
    pub previous: Vec<StoreKey>,
}

impl StoreKeyFile {
    pub fn previous_fingerprints(&self) -> Vec<String> {
        self.previous.iter().map(StoreKey::fingerprint).collect()
    }
}

/// The armored `storekey.age` for a key and its predecessors.
pub fn encrypt_store_key(
    key: &StoreKey,
    previous: &[StoreKey],
    store_id: &str,
    recipients: &[Recipient],
) -> Result<Vec<u8>> {
    let mut text = Zeroizing::new(format!(
        "{STORE_KEY_MAGIC} {store_id}\n{}\n",
        BASE64.encode(key.0.expose_secret())
    ));
    for earlier in previous {
        text.push_str(PREVIOUS_PREFIX);
        text.push_str(&BASE64.encode(earlier.0.expose_secret()));
        text.push('\n');
    }
    encrypt_to(recipients, text.as_bytes())
}

/// Decrypt `storekey.age` (or its pending replacement, named by `file`).
pub fn decrypt_store_key(
    identity: &Identity,
    store_id: &str,
    ciphertext: &[u8],
    file: &str,
) -> Result<StoreKeyFile> {
    let plain = decrypt(identity, ciphertext).map_err(|f| match f {
        DecryptFailure::NotForUs => Error::NotARecipient {
            what: "this store".into(),
            identity: identity.source().to_string(),
        },
        DecryptFailure::Damaged => {
            Error::integrity(file, "it is not a valid age file for this identity")
        }
    })?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| Error::integrity(file, "the payload is not text"))?;
    let mut lines = text.lines();
    if lines.next() != Some(&format!("{STORE_KEY_MAGIC} {store_id}")) {
        return Err(Error::integrity(file, "it is not this store's key"));
    }
    let key = parse_key(lines.next().unwrap_or_default(), file)?;
    let mut previous = Vec::new();
    for line in lines {
        if let Some(encoded) = line.strip_prefix(PREVIOUS_PREFIX) {
            previous.push(parse_key(encoded, file)?);
        }
    }
    Ok(StoreKeyFile { key, previous })
}

fn parse_key(encoded: &str, file: &str) -> Result<StoreKey> {
    let decoded = Zeroizing::new(
        BASE64
            .decode(encoded)
            .map_err(|_| Error::integrity(file, "the key is not base64"))?,
    );
    let bytes: [u8; 32] = decoded
        .as_slice()
        .try_into()
        .map_err(|_| Error::integrity(file, "the key is not 32 bytes"))?;
    Ok(StoreKey(SecretBox::new(Box::new(bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_binds_store_and_name() {
        let plain = seal_value("s1", "a", b"v\nalue");
        assert_eq!(
            open_value(&plain, "s1", "a", "f").unwrap().expose_secret(),
            b"v\nalue"
        );
        assert!(matches!(
            open_value(&plain, "s1", "b", "f"),
            Err(Error::Integrity { .. })
        ));
        assert!(matches!(
            open_value(&plain, "s2", "a", "f"),
            Err(Error::Integrity { .. })
        ));
        assert!(open_value(b"raw value", "s1", "a", "f").is_err());
    }

    #[test]
    fn macs_are_keyed_and_domain_separated() {
        let k1 = StoreKey::generate().unwrap();
        let k2 = StoreKey::generate().unwrap();
        assert_ne!(k1.seal(&[b"x"]), k2.seal(&[b"x"]));
        assert_ne!(k1.seal(&[b"x"]), k1.seal(&[b"y"]));
        assert_eq!(k1.seal(&[b"ab", b"c"]), k1.seal(&[b"a", b"bc"]));
        assert_ne!(k1.entry_mac("s", "a", b"{}"), k1.entry_mac("s", "b", b"{}"));
        assert_ne!(k1.entry_mac("s", "a", b"{}"), k1.agent_mac("s", "a", b"{}"));
        assert!(tags_equal(&k1.seal(&[b"x"]), &k1.seal(&[b"x"])));
        let tag = k1.value_tag("s", "a", b"v");
        assert_eq!(tag.len(), 64);
        assert_ne!(tag, k2.value_tag("s", "a", b"v"));
        assert_ne!(tag, k1.value_tag("s", "b", b"v"));
        assert_ne!(tag, k1.value_tag("s", "a", b"w"));
        assert_ne!(tag, sha256_hex(b"v"));
        assert!(!tags_equal("abc", "abd"));
        let vault = k1.vault_tag("s", "a", 1, b"v");
        assert_ne!(vault, tag, "a value tag never passes for a vault tag");
        assert_ne!(vault, k1.vault_tag("s", "a", 2, b"v"));
        assert_eq!(k1.duplicate().fingerprint(), k1.fingerprint());
    }

    #[test]
    fn store_key_files_carry_earlier_keys() {
        let age_key = age::x25519::Identity::generate();
        let identity = crate::crypto::identity::Identity::from_text_for_tests(&age_key);
        let recipients = identity.recipients();
        let (k1, k2, k3) = (
            StoreKey::generate().unwrap(),
            StoreKey::generate().unwrap(),
            StoreKey::generate().unwrap(),
        );
        let file =
            encrypt_store_key(&k3, &[k2.duplicate(), k1.duplicate()], "s1", &recipients).unwrap();
        let opened = decrypt_store_key(&identity, "s1", &file, "storekey.age").unwrap();
        assert_eq!(opened.key.fingerprint(), k3.fingerprint());
        assert_eq!(
            opened.previous_fingerprints(),
            [k2.fingerprint(), k1.fingerprint()]
        );
        let first = encrypt_store_key(&k1, &[], "s1", &recipients).unwrap();
        let opened = decrypt_store_key(&identity, "s1", &first, "storekey.age").unwrap();
        assert!(opened.previous.is_empty());
        assert!(decrypt_store_key(&identity, "s2", &first, "storekey.age").is_err());
    }
}
