//! The two commands `rotate` can run: `--generate` makes the new value, `--verify` tries it.
//!
//! Both run under `sh -c` with the environment `exec` would give a program (the identity
//! and passphrase variables withheld), and both run while agentcred holds no lock on the
//! store: a verify command may well run `agentcred exec` itself, which takes the shared
//! lock, so holding the exclusive one here would deadlock. The new value is written only
//! after they succeed, so no reader ever sees a value that failed verification.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

use secrecy::{ExposeSecret, SecretSlice};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::exec::filecred::{self, FileSet};
use crate::exec::{self, Injection};
use crate::model::credential::{CredentialName, Kind};

/// Largest value `--generate` may print, as for any other way in.
pub const MAX_VALUE: usize = 16 * 1024 * 1024;

fn failed(flag: &'static str, name: &CredentialName, outcome: impl Into<String>) -> Error {
    Error::RotationCommand {
        flag,
        outcome: outcome.into(),
        name: name.to_string(),
    }
}

fn shell(command: &str, env: &[(OsString, OsString)]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit());
    cmd
}

/// Why a command failed, in words: `exited with status 3`, `was killed by signal 9`.
fn describe(status: ExitStatus) -> Option<String> {
    if status.success() {
        None
    } else if let Some(code) = status.code() {
        Some(format!("exited with status {code}"))
    } else {
        Some(format!(
            "was killed by signal {}",
            status.signal().unwrap_or_default()
        ))
    }
}

/// Run `--generate CMD` and take its stdout, one trailing newline stripped. A failure, an
/// empty output or one over [`MAX_VALUE`] is an error naming the credential.
pub fn generate(command: &str, name: &CredentialName) -> Result<SecretSlice<u8>> {
    const FLAG: &str = "--generate";
    let env = exec::child_env(std::env::vars_os(), false, &[], &FileSet::default());
    let mut child = shell(command, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| failed(FLAG, name, format!("could not be started ({e})")))?;
    let mut value = Zeroizing::new(Vec::with_capacity(4096));
    let read = match child.stdout.take() {
        Some(stdout) => stdout.take(MAX_VALUE as u64 + 1).read_to_end(&mut value),
        None => Err(io::Error::other("no pipe to its output")),
    };
    if read.is_err() || value.len() > MAX_VALUE {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed(
            FLAG,
            name,
            match read {
                Err(e) => format!("could not be read ({e})"),
                Ok(_) => "printed more than 16 MiB".into(),
            },
        ));
    }
    let status = child
        .wait()
        .map_err(|e| failed(FLAG, name, format!("could not be waited for ({e})")))?;
    if let Some(outcome) = describe(status) {
        return Err(failed(FLAG, name, outcome));
    }
    let strip = if value.ends_with(b"\r\n") {
        2
    } else {
        usize::from(value.ends_with(b"\n"))
    };
    let keep = value.len() - strip;
    value.truncate(keep);
    if value.is_empty() {
        return Err(failed(FLAG, name, "printed nothing"));
    }
    Ok(SecretSlice::from(value.to_vec()))
}

/// Run `--verify CMD` with the new value injected as the credential's variable (for a file
/// credential: written to a private file whose path is the variable, removed afterwards).
/// Its stdout goes to agentcred's stderr, so `rotate` prints nothing on stdout.
pub fn verify(command: &str, injection: &Injection) -> Result<()> {
    const FLAG: &str = "--verify";
    let name = &injection.name;
    let mut files = FileSet::write(
        &filecred::base_dir(),
        (injection.kind == Kind::File).then(|| (name, injection.value.expose_secret())),
    )?;
    let env = exec::child_env(
        std::env::vars_os(),
        false,
        std::slice::from_ref(injection),
        &files,
    );
    let stdout = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_or_else(|_| Stdio::inherit(), Stdio::from);
    let spawned = shell(command, &env)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn();
    // The child has its copy; wipe ours.
    for (_, value) in env {
        value.into_vec().zeroize();
    }
    let status = spawned
        .map_err(|e| failed(FLAG, name, format!("could not be started ({e})")))?
        .wait()
        .map_err(|e| failed(FLAG, name, format!("could not be waited for ({e})")))?;
    let _ = files.remove();
    match describe(status) {
        Some(outcome) => Err(failed(FLAG, name, outcome)),
        None => Ok(()),
    }
}
