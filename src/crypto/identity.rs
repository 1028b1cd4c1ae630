//! Where the user's age identity comes from (README, "Unlocking"), in order:
//! `AGENTCRED_IDENTITY` (the text), `AGENTCRED_IDENTITY_FILE` (a path), the OS keychain
//! item made by `init` (service `agentcred`, account `identity`), then the default
//! identity file in the config dir. A keychain that cannot be reached is passed over
//! (a file identity must work on a headless machine); when nothing else is found, the
//! error says why the keychain could not be asked.
//!
//! A passphrase-protected file (age scrypt) is first looked for in the unlock cache (see
//! [`crate::crypto::unlock_cache`]), then takes `AGENTCRED_PASSPHRASE`, else a hidden prompt, and
//! only prompts when a person can answer: never with `--no-input`, `CI` set, or stdin that
//! is not a terminal. Then it fails at once (exit 5) naming the variable to set.

use std::fmt;
use std::io::Read;
use std::iter;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use zeroize::Zeroizing;

use crate::crypto::age_key::X25519Key;
use crate::crypto::os_keychain::{self, Keychain, Subject};
use crate::crypto::recipient::Recipient;
use crate::crypto::unlock_cache;
use crate::error::{Error, Result};
use crate::util;

pub const ENV_IDENTITY: &str = "AGENTCRED_IDENTITY";
pub const ENV_IDENTITY_FILE: &str = "AGENTCRED_IDENTITY_FILE";
pub const ENV_PASSPHRASE: &str = "AGENTCRED_PASSPHRASE";
/// The keychain account of the identity (service [`os_keychain::SERVICE`]).
pub const KEYCHAIN_ACCOUNT: &str = "identity";
const KEYCHAIN_LABEL: &str = "agentcred: age identity";

/// Where an identity was (or would be) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The text of `AGENTCRED_IDENTITY`.
    Env,
    /// The file named by `AGENTCRED_IDENTITY_FILE`.
    EnvFile(PathBuf),
    /// The OS keychain item made by `init`.
    Keychain,
    /// The default identity file in the config dir.
    DefaultFile(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env => write!(f, "${ENV_IDENTITY}"),
            Source::Keychain => write!(
                f,
                "the OS keychain (service {}, account {KEYCHAIN_ACCOUNT})",
                os_keychain::SERVICE
            ),
            Source::EnvFile(path) | Source::DefaultFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How an identity may be unlocked.
#[derive(Clone, Copy, Debug)]
pub struct Unlock {
    /// A person may be asked for a passphrase.
    pub may_prompt: bool,
}

impl Unlock {
    /// Prompting is allowed only with a terminal (stdin, or the controlling terminal when
    /// stdin is a pipe), without `--no-input`, and outside CI.
    pub fn from_env(no_input: bool) -> Self {
        Unlock {
            may_prompt: crate::util::prompt::may_prompt(no_input),
        }
    }
}

/// One private key: an age X25519 identity, or an unencrypted SSH key.
#[derive(Clone)]
enum Key {
    X25519(X25519Key),
    Ssh(Box<age::ssh::Identity>),
}

/// A loaded identity: one or more keys. Deliberately not `Debug`. `Clone` for the
/// broker's token refresh, which runs on its own threads for the program's lifetime.
#[derive(Clone)]
pub struct Identity {
    keys: Vec<Key>,
    source: Source,
    /// Read from a passphrase-protected file (only such an identity can be unlocked in
    /// the session keyring).
    protected: bool,
}

impl Identity {
    /// Whether this identity was unlocked from the session keyring (`agentcred unlock`).
    /// Every process of the login session can read it there, including programs `exec`
    /// starts: exec says so, since an agent could take the whole identity.
    pub fn unlocked_in_session(&self) -> bool {
        match &self.source {
            Source::EnvFile(_) | Source::DefaultFile(_) if !self.protected => false,
            Source::EnvFile(path) | Source::DefaultFile(path) => std::fs::read(path)
                .ok()
                .filter(|bytes| is_age_encrypted(bytes))
                .is_some_and(|bytes| unlock_cache::get(&bytes).is_some()),
            Source::Env | Source::Keychain => false,
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    pub fn recipients(&self) -> Vec<Recipient> {
        self.keys
            .iter()
            .filter_map(|key| match key {
                Key::X25519(k) => Some(Recipient::X25519(k.to_public())),
                Key::Ssh(k) => age::ssh::Recipient::try_from(k.as_ref().clone())
                    .ok()
                    .map(Recipient::Ssh),
            })
            .collect()
    }

    #[cfg(test)]
    pub fn from_text_for_tests(key: &x25519::Identity) -> Identity {
        Identity {
            keys: vec![Key::X25519(X25519Key::from_age(key.clone()))],
            source: Source::Env,
            protected: false,
        }
    }

    /// The keys as `age` identities, for a decryptor.
    pub fn as_age(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| match k {
            Key::X25519(k) => k as &dyn age::Identity,
            Key::Ssh(k) => k.as_ref() as &dyn age::Identity,
        })
    }
}

/// The default identity file: `<config dir>/identity.txt`.
pub fn default_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "agentcred").map(|d| d.config_dir().join("identity.txt"))
}

/// What the lookup found: a source to load, or the identity text already read from the
/// keychain (one read per command).
enum Found {
    Source(Source),
    Keychain(Zeroizing<Vec<u8>>),
}

/// Follow the lookup order. `Err` only when nothing was found: then it says why the
/// keychain could not be asked, if it could not.
fn find() -> Result<Found> {
    if std::env::var_os(ENV_IDENTITY).is_some_and(|v| !v.is_empty()) {
        return Ok(Found::Source(Source::Env));
    }
    if let Some(path) = std::env::var_os(ENV_IDENTITY_FILE).filter(|v| !v.is_empty()) {
        return Ok(Found::Source(Source::EnvFile(PathBuf::from(path))));
    }
    let file = default_file().filter(|p| p.exists());
    let keychain = Keychain::for_process();
    let read = || {
        // With a default file there, the keychain is most likely empty: ask whether the
        // item exists (cheap) before reading it (an encrypted session, several ms).
        if file.is_some() && keychain.exists(KEYCHAIN_ACCOUNT, Subject::Identity)? == Some(false) {
            return Ok(None);
        }
        keychain.get(KEYCHAIN_ACCOUNT, Subject::Identity)
    };
    let keychain_down = match read() {
        Ok(Some(text)) => return Ok(Found::Keychain(text)),
        Ok(None) => None,
        Err(Error::Keychain { reason, .. }) => Some(reason),
        Err(e) => return Err(e),
    };
    if let Some(path) = file {
        return Ok(Found::Source(Source::DefaultFile(path)));
    }
    Err(match keychain_down {
        Some(reason) => Error::NoIdentityKeychainDown { reason },
        None => Error::NoIdentity,
    })
}

/// Find and unlock the identity.
pub fn load(unlock: Unlock) -> Result<Identity> {
    match find()? {
        Found::Source(source) => load_from(source, unlock),
        Found::Keychain(bytes) => keychain_identity(&bytes),
    }
}

fn keychain_identity(bytes: &[u8]) -> Result<Identity> {
    let source = Source::Keychain;
    let text = std::str::from_utf8(bytes).map_err(|_| Error::BadIdentity {
        source_name: source.to_string(),
        detail: "it is not text".into(),
    })?;
    let keys = parse_keys(text, &source)?;
    Ok(Identity {
        keys,
        source,
        protected: false,
    })
}

/// The passphrase-protected identity file the lookup would use, with its bytes; `None`
/// when the identity in use has no passphrase (text, a plain file, the keychain).
pub fn passphrase_file() -> Result<Option<(PathBuf, Zeroizing<Vec<u8>>)>> {
    let path = match find()? {
        Found::Source(Source::EnvFile(path) | Source::DefaultFile(path)) => path,
        _ => return Ok(None),
    };
    let bytes = read_identity_file(&path)?;
    Ok(is_age_encrypted(&bytes).then_some((path, bytes)))
}

/// `agentcred unlock`: decrypt a passphrase-protected identity file (cache, variable or
/// prompt) and cache its text in the kernel keyring for `seconds`.
pub fn cache_unlocked(path: &Path, bytes: &[u8], unlock: Unlock, seconds: usize) -> Result<()> {
    let plain = decrypt_with_passphrase(bytes, path, unlock)?;
    let text = std::str::from_utf8(&plain).map_err(|_| Error::BadIdentity {
        source_name: path.display().to_string(),
        detail: "the decrypted identity is not text".into(),
    })?;
    parse_keys(text, &Source::EnvFile(path.to_path_buf()))?;
    unlock_cache::put(bytes, &plain, seconds)
}

fn load_from(source: Source, unlock: Unlock) -> Result<Identity> {
    let mut protected = false;
    let keys = match &source {
        Source::Keychain => {
            let bytes = Keychain::for_process()
                .get(KEYCHAIN_ACCOUNT, Subject::Identity)?
                .ok_or(Error::NoIdentity)?;
            return keychain_identity(&bytes);
        }
        Source::Env => {
            let text =
                Zeroizing::new(std::env::var(ENV_IDENTITY).map_err(|_| Error::BadIdentity {
                    source_name: format!("${ENV_IDENTITY}"),
                    detail: "it is not valid UTF-8".into(),
                })?);
            parse_keys(&text, &source)?
        }
        Source::EnvFile(path) | Source::DefaultFile(path) => {
            let bytes = match (read_identity_file(path), &source) {
                // Say which variable named it: the user may not remember setting it.
                (Err(Error::Io { cause, .. }), Source::EnvFile(_)) => {
                    return Err(Error::BadIdentity {
                        source_name: format!("{ENV_IDENTITY_FILE}={}", path.display()),
                        detail: cause.to_string(),
                    });
                }
                (bytes, _) => bytes?,
            };
            if is_age_encrypted(&bytes) {
                protected = true;
                let plain = decrypt_with_passphrase(&bytes, path, unlock)?;
                let text = std::str::from_utf8(&plain).map_err(|_| Error::BadIdentity {
                    source_name: path.display().to_string(),
                    detail: "the decrypted identity is not text".into(),
                })?;
                parse_keys(text, &source)?
            } else {
                let text = std::str::from_utf8(&bytes).map_err(|_| Error::BadIdentity {
                    source_name: path.display().to_string(),
                    detail: "it is neither an age identity nor an age-encrypted file".into(),
                })?;
                parse_keys(text, &source)?
            }
        }
    };
    Ok(Identity {
        keys,
        source,
        protected,
    })
}

/// Read an identity file, refusing one that group or others can read (as ssh does).
fn read_identity_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let context = || format!("cannot read identity file {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(context(), e))?;
    let mode = file
        .metadata()
        .map_err(|e| Error::io(context(), e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::IdentityTooOpen {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(context(), e))?;
    Ok(bytes)
}

fn is_age_encrypted(bytes: &[u8]) -> bool {
    bytes.starts_with(b"age-encryption.org/")
        || bytes.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

/// Parse `AGE-SECRET-KEY-1...` lines, skipping blanks and `#` comments, or one unencrypted
/// SSH private key (ed25519 or RSA, as `ssh-keygen` writes it). The error never quotes a
/// line: it may be a key.
fn parse_keys(text: &str, source: &Source) -> Result<Vec<Key>> {
    if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
        || text.contains("-----BEGIN RSA PRIVATE KEY-----")
    {
        return parse_ssh_key(text, source).map(|key| vec![key]);
    }
    let mut keys = Vec::new();
    // `age-keygen` and agentcred write `# public key: age1...` before the key.
    let mut named = None;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(recipient) = line.strip_prefix("# public key: ") {
            named = Some(recipient.trim());
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = X25519Key::parse(line).map_err(|_| Error::BadIdentity {
            source_name: source.to_string(),
            detail: format!(
                "line {} is not an age X25519 identity (AGE-SECRET-KEY-1...)",
                index + 1
            ),
        })?;
        let key = match named.take() {
            Some(recipient) => key.with_named_public(recipient),
            None => key,
        };
        keys.push(Key::X25519(key));
    }
    if keys.is_empty() {
        return Err(Error::BadIdentity {
            source_name: source.to_string(),
            detail: "it holds no AGE-SECRET-KEY-1 line".into(),
        });
    }
    Ok(keys)
}

/// An SSH private key, as age reads them. Passphrase-protected keys are refused: agentcred
/// would have to ask for a second passphrase, and an age identity (which can have one) is
/// the better tool there.
fn parse_ssh_key(text: &str, source: &Source) -> Result<Key> {
    let bad = |detail: &str| Error::BadIdentity {
        source_name: source.to_string(),
        detail: detail.into(),
    };
    let identity = age::ssh::Identity::from_buffer(text.as_bytes(), None)
        .map_err(|_| bad("it is not a valid SSH private key"))?;
    match identity {
        age::ssh::Identity::Unencrypted(_) => Ok(Key::Ssh(Box::new(identity))),
        age::ssh::Identity::Encrypted(_) => Err(bad(
            "it is a passphrase-protected SSH key; agentcred reads unencrypted SSH keys only (use an age identity with a passphrase instead)",
        )),
        age::ssh::Identity::Unsupported(_) => Err(bad(
            "it is an SSH key of a type age does not support (use ssh-ed25519 or ssh-rsa)",
        )),
    }
}

/// The passphrase from `AGENTCRED_PASSPHRASE`, else a hidden prompt where allowed.
fn passphrase(path: &Path, unlock: Unlock, confirm: bool) -> Result<SecretString> {
    if let Ok(value) = std::env::var(ENV_PASSPHRASE) {
        return Ok(SecretString::from(value));
    }
    if !unlock.may_prompt {
        return Err(Error::PassphraseNeeded {
            path: path.to_path_buf(),
        });
    }
    let prompt = format!("Passphrase for {}", path.display());
    let confirm = confirm.then_some("Confirm passphrase");
    crate::util::prompt::hidden(&prompt, confirm, "the passphrase")
        .map(|typed| SecretString::from(typed.as_str().to_owned()))
        .map_err(|e| Error::io("cannot read the passphrase", e))
}

fn decrypt_with_passphrase(
    bytes: &[u8],
    path: &Path,
    unlock: Unlock,
) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |detail: &str| Error::BadIdentity {
        source_name: path.display().to_string(),
        detail: detail.into(),
    };
    if let Some(plain) = unlock_cache::get(bytes) {
        return Ok(plain);
    }
    let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(bytes))
        .map_err(|_| bad("it is not a valid age-encrypted file"))?;
    if !decryptor.is_scrypt() {
        return Err(bad("it is age-encrypted, but not with a passphrase"));
    }
    let passphrase = passphrase(path, unlock, false)?;
    let identity = age::scrypt::Identity::new(passphrase);
    let mut reader = decryptor
        .decrypt(iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::ExcessiveWork { .. } => {
                bad("its passphrase work factor is larger than this machine accepts")
            }
            _ => Error::WrongPassphrase {
                path: path.to_path_buf(),
            },
        })?;
    let mut plain = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plain)
        .map_err(|_| bad("it is damaged"))?;
    Ok(plain)
}

/// A newly generated identity file's text, in the format of `age-keygen`.
fn generate() -> (x25519::Identity, Zeroizing<String>) {
    let key = x25519::Identity::generate();
    let created = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
    let text = Zeroizing::new(format!(
        "# created by agentcred: {created}\n# public key: {}\n{}\n",
        key.to_public(),
        key.to_string().expose_secret()
    ));
    (key, text)
}

/// Generate an identity and write it at `path` (0600, in a 0700 directory), optionally
/// protected by a passphrase. Refuses to overwrite an existing file.
pub fn create_file(path: &Path, with_passphrase: bool, unlock: Unlock) -> Result<Identity> {
    let (key, text) = generate();
    write_identity_file(path, &text, with_passphrase, unlock)?;
    Ok(Identity {
        keys: vec![Key::X25519(X25519Key::from_age(key))],
        source: Source::DefaultFile(path.to_path_buf()),
        protected: with_passphrase,
    })
}

/// Generate an identity and keep it in the OS keychain (service `agentcred`, account
/// `identity`).
pub fn create_in_keychain() -> Result<Identity> {
    let (key, text) = generate();
    Keychain::for_process().set(
        KEYCHAIN_ACCOUNT,
        KEYCHAIN_LABEL,
        text.as_bytes(),
        Subject::Identity,
    )?;
    Ok(Identity {
        keys: vec![Key::X25519(X25519Key::from_age(key))],
        source: Source::Keychain,
        protected: false,
    })
}

fn write_identity_file(
    path: &Path,
    text: &str,
    with_passphrase: bool,
    unlock: Unlock,
) -> Result<()> {
    let context = || format!("cannot create identity file {}", path.display());
    if let Some(dir) = path.parent() {
        util::fs::create_private_dir(dir).map_err(|e| Error::io(context(), e))?;
    }
    let bytes = if with_passphrase {
        let passphrase = passphrase(path, unlock, true)?;
        let encryptor = age::Encryptor::with_user_passphrase(passphrase);
        let mut out = Vec::new();
        let io_err = |e: std::io::Error| Error::io(context(), e);
        let armored =
            age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
                .map_err(io_err)?;
        let mut writer = encryptor.wrap_output(armored).map_err(io_err)?;
        std::io::Write::write_all(&mut writer, text.as_bytes()).map_err(io_err)?;
        writer.finish().and_then(|a| a.finish()).map_err(io_err)?;
        Zeroizing::new(out)
    } else {
        Zeroizing::new(text.as_bytes().to_vec())
    };
    util::fs::create_new_private(path, &bytes).map_err(|e| Error::io(context(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_skips_comments_and_never_echoes_lines() {
        let (key, text) = generate();
        let keys = parse_keys(&text, &Source::Env).unwrap();
        assert_eq!(keys.len(), 1);
        let identity = Identity {
            keys,
            source: Source::Env,
            protected: false,
        };
        assert_eq!(
            identity.recipients()[0].to_string(),
            key.to_public().to_string()
        );

        let err = parse_keys("AGE-SECRET-KEY-1NOTAKEY\n", &Source::Env)
            .err()
            .unwrap();
        let message = err.to_string();
        assert!(message.contains("line 1"), "{message}");
        assert!(!message.contains("NOTAKEY"), "{message}");
        assert!(parse_keys("# only a comment\n", &Source::Env).is_err());
    }
}
