//! An age X25519 identity that derives its public key once.
//!
//! `age`'s own `x25519::Identity` derives its public key (a scalar multiplication of the
//! base point) for every stanza it tries, because the key derivation is salted with it:
//! `exec` with 10 credentials paid 11 of them, about a fifth of its cryptography. This
//! type computes the public key when the identity is loaded and otherwise unwraps an
//! `X25519` stanza exactly as `age` 0.12 does (the C2SP age specification, "X25519
//! recipient stanza"), with `age-core`'s own HKDF and ChaCha20-Poly1305. Everything
//! else (the header MAC, the payload) stays `age`'s. The tests check it against `age`'s
//! identity stanza by stanza, including the malformed and all-zero cases.
//!
//! Deriving the public key is itself a scalar multiplication, about 40 µs of every
//! command. An identity file written by `age-keygen` or agentcred names it on a
//! `# public key: age1...` line before the key; [`X25519Key::with_named_public`] takes it
//! from there, and the derivation is done only if an unwrap with the named key fails. A
//! wrong line never loses a file that age would open: every failed unwrap is retried
//! with the key derived from the secret. (With a wrong line, a stanza made with that
//! line's key as the salt would open here and not in age; making one takes the secret
//! key, whose holder can encrypt to it anyway.)

use std::str::FromStr;
use std::sync::OnceLock;

use age::secrecy::ExposeSecret;
use age::x25519;
use age_core::format::{FILE_KEY_BYTES, FileKey, Stanza};
use age_core::primitives::{aead_decrypt, bech32_decode, hkdf};
use base64::Engine;
use base64::prelude::BASE64_STANDARD_NO_PAD;
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

const TAG: &str = "X25519";
const KEY_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
const SHARE_BYTES: usize = 32;
const WRAPPED_KEY_BYTES: usize = FILE_KEY_BYTES + 16;

/// An X25519 identity with its public key. Deliberately not `Debug`.
#[derive(Clone)]
pub struct X25519Key {
    /// `age`'s form of the same key, for what `age` does with it (its recipient).
    age: x25519::Identity,
    secret: StaticSecret,
    /// The public key derived from `secret`, on first need.
    derived: OnceLock<PublicKey>,
    /// The public key the identity file names, tried before deriving one.
    named: Option<PublicKey>,
}

impl X25519Key {
    /// Parse an `AGE-SECRET-KEY-1...` line, with `age`'s own checks.
    pub fn parse(line: &str) -> Result<X25519Key, &'static str> {
        x25519::Identity::from_str(line).map(X25519Key::from_age)
    }

    /// The same key as `age`'s identity, with its public key derived.
    pub fn from_age(age: x25519::Identity) -> X25519Key {
        let encoded = age.to_string();
        // `age` made this encoding (of a key it parsed or generated), so it decodes to
        // 32 bytes; this is not something a user or the disk can cause.
        let secret = bech32_decode(
            encoded.expose_secret(),
            |_| (),
            |_| Ok(()),
            |_, bytes| {
                let mut buf: Vec<u8> = bytes.collect();
                let key = <[u8; 32]>::try_from(buf.as_slice()).map(StaticSecret::from);
                buf.zeroize();
                key.map_err(drop)
            },
        )
        .expect("age's own encoding of an X25519 identity decodes");
        X25519Key {
            age,
            secret,
            derived: OnceLock::new(),
            named: None,
        }
    }

    /// The same key, with the public key that an identity file's `# public key: age1...`
    /// line names (`recipient` is the `age1...` text); a text that is not an X25519
    /// recipient is ignored.
    pub fn with_named_public(mut self, recipient: &str) -> X25519Key {
        self.named = bech32_decode(
            recipient,
            |_| (),
            |hrp| {
                hrp.as_str()
                    .eq_ignore_ascii_case("age")
                    .then_some(())
                    .ok_or(())
            },
            |_, bytes| <[u8; 32]>::try_from(bytes.collect::<Vec<u8>>()).map_err(drop),
        )
        .ok()
        .map(PublicKey::from);
        self
    }

    fn derived(&self) -> &PublicKey {
        self.derived.get_or_init(|| PublicKey::from(&self.secret))
    }

    pub fn to_public(&self) -> x25519::Recipient {
        self.age.to_public()
    }
}

impl age::Identity for X25519Key {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != TAG {
            return None;
        }
        let invalid = || Some(Err(age::DecryptError::InvalidHeader));
        // One argument, the canonical unpadded base64 of 32 bytes; a 32-byte body.
        let [share] = &stanza.args[..] else {
            return invalid();
        };
        let mut decoded = [0; SHARE_BYTES + 1];
        let mut ephemeral = [0; SHARE_BYTES];
        match BASE64_STANDARD_NO_PAD.decode_slice(share.as_bytes(), &mut decoded) {
            Ok(SHARE_BYTES) => ephemeral.copy_from_slice(&decoded[..SHARE_BYTES]),
            _ => return invalid(),
        }
        let Ok(wrapped) = <[u8; WRAPPED_KEY_BYTES]>::try_from(stanza.body.as_slice()) else {
            return invalid();
        };
        let ephemeral = PublicKey::from(ephemeral);
        let shared = self.secret.diffie_hellman(&ephemeral);
        // A low-order share gives the all-zero secret: refuse it, as age does.
        let all_zero = shared.as_bytes().iter().fold(0, |acc, b| acc | b).ct_eq(&0);
        if bool::from(all_zero) {
            return invalid();
        }
        let unwrap_for = |public: &PublicKey| {
            let mut salt = [0; 64];
            salt[..32].copy_from_slice(ephemeral.as_bytes());
            salt[32..].copy_from_slice(public.as_bytes());
            let mut wrapping_key = hkdf(&salt, KEY_LABEL, shared.as_bytes());
            let unwrapped = aead_decrypt(&wrapping_key, FILE_KEY_BYTES, &wrapped);
            wrapping_key.zeroize();
            unwrapped.ok()
        };
        // Not ours is not an error: another key of this identity may match. A named
        // public key that does not open it is checked against the derived one.
        let unwrapped = match &self.named {
            Some(named) => unwrap_for(named)
                .or_else(|| (self.derived() != named).then(|| unwrap_for(self.derived()))?),
            None => unwrap_for(self.derived()),
        };
        unwrapped.map(|mut plain| {
            Ok(FileKey::init_with_mut(|file_key| {
                file_key.copy_from_slice(&plain);
                plain.zeroize();
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use age::Identity as _;

    use super::*;

    fn pair() -> (X25519Key, x25519::Identity) {
        let theirs = x25519::Identity::generate();
        let ours = X25519Key::parse(theirs.to_string().expose_secret()).unwrap();
        (ours, theirs)
    }

    /// The stanzas of a real age header: the X25519 stanza for `recipient`.
    fn stanza_for(recipient: &x25519::Recipient) -> Stanza {
        use age::Recipient as _;
        let file_key = FileKey::new(Box::new([7; FILE_KEY_BYTES]));
        let (stanzas, _) = recipient.wrap_file_key(&file_key).unwrap();
        stanzas.into_iter().next().unwrap()
    }

    fn copy(stanza: &Stanza) -> Stanza {
        Stanza {
            tag: stanza.tag.clone(),
            args: stanza.args.clone(),
            body: stanza.body.clone(),
        }
    }

    fn same(
        a: Option<Result<FileKey, age::DecryptError>>,
        b: Option<Result<FileKey, age::DecryptError>>,
    ) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(Ok(x)), Some(Ok(y))) => x.expose_secret() == y.expose_secret(),
            (Some(Err(x)), Some(Err(y))) => x.to_string() == y.to_string(),
            _ => false,
        }
    }

    #[test]
    fn same_public_key_and_file_key_as_age() {
        let (ours, theirs) = pair();
        assert_eq!(ours.to_public().to_string(), theirs.to_public().to_string());
        let stanza = stanza_for(&theirs.to_public());
        let unwrapped = ours.unwrap_stanza(&stanza).unwrap().unwrap();
        assert_eq!(unwrapped.expose_secret(), &[7; FILE_KEY_BYTES]);
        assert!(same(
            ours.unwrap_stanza(&stanza),
            theirs.unwrap_stanza(&stanza)
        ));
    }

    #[test]
    fn agrees_with_age_on_every_kind_of_stanza() {
        let (ours, theirs) = pair();
        let other = x25519::Identity::generate();
        let good = stanza_for(&theirs.to_public());
        let mut cases = vec![
            // For someone else: not ours, not an error.
            stanza_for(&other.to_public()),
            // Another recipient type.
            Stanza {
                tag: "scrypt".into(),
                ..copy(&good)
            },
        ];
        let mut edit = |f: &dyn Fn(&mut Stanza)| {
            let mut s = copy(&good);
            f(&mut s);
            cases.push(s);
        };
        edit(&|s| s.args.clear());
        edit(&|s| s.args.push("extra".into()));
        edit(&|s| s.args[0].push('='));
        edit(&|s| s.args[0].pop().map(drop).unwrap_or_default());
        edit(&|s| s.args[0] = BASE64_STANDARD_NO_PAD.encode([9; 33]));
        edit(&|s| s.args[0] = BASE64_STANDARD_NO_PAD.encode([9; 31]));
        // Non-canonical: the last character carries bits that must be zero.
        edit(&|s| {
            let mut chars: Vec<char> = s.args[0].chars().collect();
            let last = chars.last_mut().unwrap();
            *last = if *last == 'A' { 'B' } else { 'A' };
            s.args[0] = chars.into_iter().collect();
        });
        // The all-zero (low-order) share.
        edit(&|s| s.args[0] = BASE64_STANDARD_NO_PAD.encode([0; 32]));
        edit(&|s| s.body.pop().map(drop).unwrap_or_default());
        edit(&|s| s.body.push(0));
        edit(&|s| s.body[3] ^= 1);
        for (i, stanza) in cases.iter().enumerate() {
            assert!(
                same(ours.unwrap_stanza(stanza), theirs.unwrap_stanza(stanza)),
                "case {i} differs from age"
            );
        }
    }

    #[test]
    fn a_named_public_key_right_wrong_or_garbled_unwraps_as_age_does() {
        let (ours, theirs) = pair();
        let other = x25519::Identity::generate();
        let mine = stanza_for(&theirs.to_public());
        let not_mine = stanza_for(&other.to_public());
        for named in [
            theirs.to_public().to_string(),
            other.to_public().to_string(),
            "age1qqqq".to_string(),
            theirs.to_public().to_string().replace("age1", "agf1"),
            String::new(),
        ] {
            let key = ours.clone().with_named_public(&named);
            assert!(key.derived.get().is_none(), "nothing derived yet: {named}");
            for stanza in [&mine, &not_mine] {
                assert!(
                    same(key.unwrap_stanza(stanza), theirs.unwrap_stanza(stanza)),
                    "{named}"
                );
            }
        }
        // The right name opens its stanza without deriving the public key.
        let key = ours.with_named_public(&theirs.to_public().to_string());
        assert!(key.unwrap_stanza(&mine).is_some_and(|r| r.is_ok()));
        assert!(key.derived.get().is_none());
    }

    #[test]
    fn decrypts_a_whole_age_file() {
        let (ours, theirs) = pair();
        let mut ciphertext = Vec::new();
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&theirs.to_public() as _)).unwrap();
        let mut writer = encryptor.wrap_output(&mut ciphertext).unwrap();
        writer.write_all(b"a value").unwrap();
        writer.finish().unwrap();
        let plain = age::decrypt(&ours, &ciphertext).unwrap();
        assert_eq!(plain, b"a value");
    }

    #[test]
    fn refuses_what_age_refuses() {
        assert!(X25519Key::parse("AGE-SECRET-KEY-1").is_err());
        assert!(X25519Key::parse("age1qqqq").is_err());
        assert!(X25519Key::parse("").is_err());
    }
}
