//! Run a program with credentials in its environment (CONTRACT section 6).
//!
//! On Unix agentcred replaces itself with the program (`execve`), so signals, job control
//! and the exit status are the program's own and no agentcred process lingers holding
//! secrets. The environment is built here, in full, and handed over with `env_clear`: the
//! identity and passphrase variables never reach the child.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretSlice};

use crate::credential::{CredentialName, EnvVarName};
use crate::error::{Error, Result};
use crate::hardening::Saved;
use crate::identity::{ENV_IDENTITY, ENV_IDENTITY_FILE, ENV_PASSPHRASE};
use crate::manifest::{Defaults, Entry};
use crate::output::{self, escape};
use crate::rotation::{self, Status};

/// Linux refuses a single environment string over 128 KiB (MAX_ARG_STRLEN).
pub const MAX_ENV_VALUE: usize = 128 * 1024;

/// Variables kept by `--clean-env`.
pub const CLEAN_ENV_KEEP: &[&str] = &["PATH", "HOME", "USER", "LANG", "TERM", "TMPDIR"];

/// Never passed to the child: they unlock the store.
const WITHHELD: &[&str] = &[ENV_IDENTITY, ENV_IDENTITY_FILE, ENV_PASSPHRASE];

/// One credential to inject.
pub struct Injection {
    pub name: CredentialName,
    pub env: EnvVarName,
    pub value: SecretSlice<u8>,
}

/// Refuse a value that cannot travel as an environment variable, naming the credential.
pub fn check_value(name: &CredentialName, value: &[u8]) -> Result<()> {
    let reason = if value.contains(&0) {
        "it contains a NUL byte"
    } else if value.len() + 1 > MAX_ENV_VALUE {
        "it is larger than 128 KiB"
    } else {
        return Ok(());
    };
    Err(Error::NotEnvSafe {
        name: name.to_string(),
        reason: reason.into(),
    })
}

/// Overdue credentials among those about to be injected (CONTRACT section 6): one warning
/// line each (name and how long overdue, never a value), or, when `deny` (`--deny-overdue`
/// or an agent's policy), an error (exit 3) so the program is never started.
pub fn overdue_check<'a>(
    selected: impl IntoIterator<Item = (&'a CredentialName, &'a Entry)>,
    defaults: &Defaults,
    now: Timestamp,
    deny: bool,
) -> Result<Vec<String>> {
    let overdue: Vec<(&str, Timestamp)> = selected
        .into_iter()
        .filter_map(|(name, entry)| {
            let due = entry.due_at(defaults)?;
            (rotation::status(Some(due), now, defaults.due_soon_window) == Status::Overdue)
                .then_some((name.as_str(), due))
        })
        .collect();
    if deny && !overdue.is_empty() {
        return Err(Error::overdue(&overdue, now));
    }
    Ok(overdue
        .iter()
        .map(|(name, due)| {
            format!(
                "warning: {name} is overdue for rotation (due {}, {})",
                output::date(*due),
                output::relative(*due, now)
            )
        })
        .collect())
}

/// The child's complete environment.
pub fn child_env(
    inherited: impl Iterator<Item = (OsString, OsString)>,
    clean_env: bool,
    injections: &[Injection],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .filter(|(key, _)| !WITHHELD.iter().any(|w| key == OsStr::new(w)))
        .filter(|(key, _)| !clean_env || CLEAN_ENV_KEEP.iter().any(|k| key == OsStr::new(k)))
        .filter(|(key, _)| !injections.iter().any(|i| key == OsStr::new(i.env.as_str())))
        .collect();
    for injection in injections {
        env.push((
            OsString::from(injection.env.as_str()),
            OsString::from_vec(injection.value.expose_secret().to_vec()),
        ));
    }
    env
}

/// Replace this process with `program`. Returns only on failure, with 126/127 errors
/// like env(1).
pub fn replace_process(
    program: &OsStr,
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    core_limit: &Saved,
) -> Error {
    core_limit.restore();
    let error = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .exec();
    let program = escape(&program.to_string_lossy());
    match error.kind() {
        io::ErrorKind::NotFound => Error::CommandNotFound { program },
        io::ErrorKind::PermissionDenied => Error::NotExecutable { program },
        _ => Error::NotExecutable {
            program: format!("{program}: {error}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injection(name: &str, env: &str, value: &[u8]) -> Injection {
        Injection {
            name: CredentialName::parse(name).unwrap(),
            env: EnvVarName::parse(env).unwrap(),
            value: SecretSlice::from(value.to_vec()),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn env_overrides_withholds_and_cleans() {
        let inherited = pairs(&[
            ("PATH", "/bin"),
            ("API_KEY", "old"),
            ("AGENTCRED_IDENTITY", "AGE-SECRET-KEY-1..."),
            ("AGENTCRED_PASSPHRASE", "p"),
            ("OTHER", "x"),
        ]);
        let injections = [injection("api-key", "API_KEY", b"new")];
        let env = child_env(inherited.clone().into_iter(), false, &injections);
        assert_eq!(
            env,
            pairs(&[("PATH", "/bin"), ("OTHER", "x"), ("API_KEY", "new")])
        );
        let env = child_env(inherited.into_iter(), true, &injections);
        assert_eq!(env, pairs(&[("PATH", "/bin"), ("API_KEY", "new")]));
    }

    #[test]
    fn overdue_credentials_warn_or_deny() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let entry = |due: &str| Entry {
            env: EnvVarName::parse("A").unwrap(),
            kind: crate::credential::Kind::Secret,
            backend: crate::credential::BackendKind::Age,
            description: None,
            created_at: at,
            rotated_at: at,
            rotate_every: None,
            due: Some(due.parse().unwrap()),
            sha256: None,
            vault_version: None,
            value_info: None,
            oauth2: None,
            history: Vec::new(),
            mac: String::new(),
        };
        let (late, fine) = (
            CredentialName::parse("late").unwrap(),
            CredentialName::parse("fine").unwrap(),
        );
        let entries = [
            (late.clone(), entry("2026-01-08T00:00:00Z")),
            (fine.clone(), entry("2026-01-11T00:00:00Z")),
        ];
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let selected = || entries.iter().map(|(n, e)| (n, e));
        let warnings = overdue_check(selected(), &Defaults::default(), now, false).unwrap();
        assert_eq!(
            warnings,
            ["warning: late is overdue for rotation (due 2026-01-08, 2d ago)"]
        );
        let err = overdue_check(selected(), &Defaults::default(), now, true).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Overdue);
        assert_eq!(
            err.to_string(),
            "1 credential is overdue for rotation: late (due 2d ago)"
        );
        let none = overdue_check(selected().skip(1), &Defaults::default(), now, true).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn values_that_cannot_be_env_vars() {
        let name = CredentialName::parse("k").unwrap();
        assert!(check_value(&name, b"fine\nwith newline").is_ok());
        assert!(check_value(&name, b"nul\0byte").is_err());
        assert!(check_value(&name, &vec![b'a'; 200 * 1024]).is_err());
        let err = check_value(&name, b"\0").unwrap_err().to_string();
        assert!(err.contains("k"), "{err}");
    }
}
