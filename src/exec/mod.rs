//! Run a program with credentials in its environment (README, "exec").
//!
//! When nothing has to happen after the program ends, agentcred replaces itself with it
//! (`execve`), so signals, job control and the exit status are the program's own and no
//! agentcred process lingers holding secrets. When something does (file credentials to
//! remove, output to mask), it runs the program as a child instead: see [`crate::exec::spawn`].
//! An [`ExecPlan`] says which ([`ExecPlan::mode`]); whoever builds the plan (the `exec`
//! command, an agent's policy) only sets what it wants, never how it is done.
//!
//! The environment is built here, in full, and handed over with `env_clear`: the identity
//! and passphrase variables never reach the child.

mod child;
mod contain;
pub mod filecred;
mod launch;
pub mod plan;
pub mod program;
pub mod spawn;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretSlice};

use crate::backend::vault::ENV_UNLOCKING;
use crate::crypto::identity::{ENV_IDENTITY, ENV_IDENTITY_FILE, ENV_PASSPHRASE};
use crate::error::{Error, Result};
use crate::manifest::{Defaults, Entry};
use crate::mask::{self, Patterns};
pub use crate::model::credential::MAX_ENV_VALUE;
use crate::model::credential::{CredentialName, EnvVarName, Kind};
use crate::model::rotation::{self, Status};
use crate::util::hardening::Saved;
use crate::util::output;
use filecred::FileSet;
use program::launch_error;
use spawn::{Program, Signals};

/// Variables kept by `--clean-env`.
pub const CLEAN_ENV_KEEP: &[&str] = &["PATH", "HOME", "USER", "LANG", "TERM", "TMPDIR"];

/// Never passed to the child: they unlock the store, or a backend (a Vault token reads
/// every value under the store's prefix, not just the ones the program was given).
const WITHHELD: &[&str] = &[
    ENV_IDENTITY,
    ENV_IDENTITY_FILE,
    ENV_PASSPHRASE,
    ENV_UNLOCKING[0],
    ENV_UNLOCKING[1],
    ENV_UNLOCKING[2],
    ENV_UNLOCKING[3],
];

/// One credential to inject.
pub struct Injection {
    pub name: CredentialName,
    pub env: EnvVarName,
    /// `Secret`: the value is the variable; `File`: the variable is the path of a file
    /// holding the value.
    pub kind: Kind,
    pub value: SecretSlice<u8>,
}

/// Refuse a value that cannot travel as an environment variable, naming the credential.
/// File credentials travel as a path, so any value is fine.
pub fn check_injection(injection: &Injection) -> Result<()> {
    match injection.kind {
        // An oauth2 credential's injection holds the access token minted for it.
        Kind::Secret | Kind::Oauth2 => check_env_value(
            &injection.name,
            Some(&injection.env),
            injection.value.expose_secret(),
        ),
        Kind::File => Ok(()),
    }
}

/// Refuse a value that cannot travel as an environment variable, naming the credential.
#[cfg(test)]
pub fn check_value(name: &CredentialName, value: &[u8]) -> Result<()> {
    check_env_value(name, None, value)
}

/// Like [`check_value`], counting the whole `VAR=value\0` string against the kernel's limit
/// when the variable is known.
pub fn check_env_value(
    name: &CredentialName,
    env: Option<&EnvVarName>,
    value: &[u8],
) -> Result<()> {
    let overhead = env.map_or(1, |e| e.as_str().len() + 2);
    let reason = if value.contains(&0) {
        "it contains a NUL byte"
    } else if value.len() + overhead > MAX_ENV_VALUE {
        "it is larger than 128 KiB"
    } else {
        return Ok(());
    };
    Err(Error::NotEnvSafe {
        name: name.to_string(),
        reason: reason.into(),
    })
}

/// Overdue credentials among those about to be injected (README, "exec"): one warning
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
    // A line each for a handful; past that, the first few and a count, as every
    // credential of a store is after `recipients rm` (10,000 lines at every exec helped
    // nobody).
    let shown = output::shown_of(overdue.len());
    let mut warnings: Vec<String> = overdue
        .iter()
        .take(shown)
        .map(|(name, due)| {
            format!(
                "warning: {name} is overdue for rotation (due {}, {})",
                output::date(*due),
                output::relative(*due, now)
            )
        })
        .collect();
    if overdue.len() > shown {
        warnings.push(format!(
            "warning: and {} more credentials are overdue for rotation (`agentcred due` lists them)",
            overdue.len() - shown
        ));
    }
    Ok(warnings)
}

/// The child's complete environment. A file credential's variable holds the path of its
/// file in `files` (one not written there is left out).
pub fn child_env(
    inherited: impl Iterator<Item = (OsString, OsString)>,
    clean_env: bool,
    injections: &[Injection],
    files: &FileSet,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = inherited
        .filter(|(key, _)| !WITHHELD.iter().any(|w| key == OsStr::new(w)))
        .filter(|(key, _)| !clean_env || CLEAN_ENV_KEEP.iter().any(|k| key == OsStr::new(k)))
        .filter(|(key, _)| !injections.iter().any(|i| key == OsStr::new(i.env.as_str())))
        .collect();
    for injection in injections {
        let value = match injection.kind {
            Kind::Secret | Kind::Oauth2 => {
                OsString::from_vec(injection.value.expose_secret().to_vec())
            }
            Kind::File => match files.path(&injection.name) {
                Some(path) => path.as_os_str().to_owned(),
                None => continue,
            },
        };
        env.push((OsString::from(injection.env.as_str()), value));
    }
    env
}

/// What `exec` is to do. Built by the `exec` command; an agent's policy may turn `mask` or
/// `clean_env` on before it runs.
pub struct ExecPlan {
    /// The file to run: CMD as already resolved along `PATH` (so the kernel is not asked
    /// again, one failed `execve` per `PATH` entry), or an agent's pinned program.
    pub program: OsString,
    /// The program's `argv[0]`: CMD as the user typed it.
    pub argv0: OsString,
    pub args: Vec<OsString>,
    pub injections: Vec<Injection>,
    pub clean_env: bool,
    /// Mask every injected value in the program's stdout and stderr.
    pub mask: bool,
    /// The agent whose credentials these are, passed on as `AGENTCRED_AGENT`.
    pub agent: Option<crate::model::credential::AgentName>,
    /// `--broker`: the broker serving the program, alive until it ends.
    pub broker: Option<crate::broker::session::Session>,
    /// Run the program in this sandbox ([`crate::sandbox`]), already checked to be
    /// possible on this machine.
    pub sandbox: Option<crate::sandbox::Spec>,
    /// A hash-pinned program's open file, which `program` (`/dev/fd/N`) names: kept open
    /// until the program starts, so what runs is what was hashed.
    pub pinned: Option<program::OpenedProgram>,
}

/// How a plan is carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// `execve`: agentcred becomes the program.
    Replace,
    /// A child with forwarded signals, for work during or after it (files, masking,
    /// the broker, a sandbox's end, see [`contain`]).
    Spawn,
}

impl ExecPlan {
    pub fn mode(&self) -> RunMode {
        if self.mask
            || self.broker.is_some()
            || self.sandbox.is_some()
            || self.injections.iter().any(|i| i.kind == Kind::File)
        {
            RunMode::Spawn
        } else {
            RunMode::Replace
        }
    }
}

/// Carry out a plan. In [`RunMode::Replace`] this returns only on failure; in
/// [`RunMode::Spawn`] it returns the exit code agentcred should end with (the program's,
/// or 128+N when signal N killed it), after removing the files it wrote.
/// `say` hears the warnings and `-v` notes (the caller prints them).
pub fn run(plan: ExecPlan, core_limit: &Saved, verbose: bool, say: &dyn Fn(&str)) -> Result<i32> {
    // Until the program has started (or this returns), the pinned file stays open.
    let _pinned = &plan.pinned;
    let base = filecred::base_dir();
    // Directories a killed agentcred left are cleaned by the next run that writes file
    // credentials (not by every exec: that would list the temp dir each time).
    if plan.injections.iter().any(|i| i.kind == Kind::File) {
        let stale = filecred::remove_stale(&base);
        if verbose && stale > 0 {
            say(&format!(
                "agentcred: removed {stale} file-credential director{} left by an agentcred that was killed",
                if stale == 1 { "y" } else { "ies" }
            ));
        }
    }
    if plan.mode() == RunMode::Replace {
        let mut env = child_env(
            std::env::vars_os(),
            plan.clean_env,
            &plan.injections,
            &FileSet::default(),
        );
        crate::policy::set_agent_var(&mut env, plan.agent.as_ref());
        let launch = launch::Launch::new(&plan, &mut env);
        drop(plan.injections);
        return Err(replace_process(
            &launch.program,
            &launch.argv0,
            &launch.args,
            env,
            core_limit,
        ));
    }
    let patterns = if plan.mask {
        masking_patterns(&plan.injections, verbose, say)?
    } else {
        None
    };
    // From here on a SIGTERM is forwarded, not fatal: the files below get removed.
    let signals = Signals::catch(plan.sandbox.is_some())?;
    let mut files = FileSet::write(
        &base,
        plan.injections
            .iter()
            .filter(|i| i.kind == Kind::File)
            .map(|i| (&i.name, i.value.expose_secret())),
    )?;
    if verbose && let Some(dir) = files.dir() {
        say(&format!(
            "agentcred: file credentials are in {} until the program ends",
            dir.display()
        ));
    }
    let mut env = child_env(
        std::env::vars_os(),
        plan.clean_env,
        &plan.injections,
        &files,
    );
    crate::policy::set_agent_var(&mut env, plan.agent.as_ref());
    if let Some(session) = &plan.broker {
        for warning in session.apply(&mut env) {
            say(&warning);
        }
    }
    let launch = launch::Launch::new(&plan, &mut env);
    drop(plan.injections);
    let program = Program {
        program: &launch.program,
        argv0: &launch.argv0,
        args: &launch.args,
        env,
    };
    let dir = files.dir().map(std::path::Path::to_path_buf);
    let missing = plan
        .sandbox
        .as_ref()
        .map(crate::sandbox::Spec::missing_persistence);
    let outcome = spawn::run(signals, program, patterns, core_limit, verbose);
    for path in missing.iter().flat_map(|m| m.created()) {
        say(&format!(
            "warning: the sandboxed program created {}, where code runs later outside the sandbox: review it",
            crate::util::output::escape(&path.display().to_string())
        ));
    }
    if let Some(session) = plan.broker {
        session.stop();
    }
    if let (Err(e), Some(dir)) = (files.remove(), dir) {
        say(&format!("warning: cannot remove {}: {e}", dir.display()));
    }
    outcome
}

/// The search for `--mask`, finished by [`spawn::run`] once the program has started (see
/// [`Patterns::build_later`]); short values are named on stderr with `-v`.
fn masking_patterns(
    injections: &[Injection],
    verbose: bool,
    say: &dyn Fn(&str),
) -> Result<Option<mask::Unready>> {
    let built = Patterns::build_later(
        injections
            .iter()
            .map(|i| (i.name.to_string(), i.value.expose_secret())),
    )?;
    if verbose {
        for name in &built.too_short {
            say(&format!(
                "agentcred: not masking {name}: its value is shorter than {} bytes",
                mask::MIN_LEN
            ));
        }
    }
    Ok(built.patterns)
}

/// Replace this process with `program`, whose `argv[0]` is `argv0`. Returns only on
/// failure, with 126/127 errors like env(1).
pub fn replace_process(
    program: &OsStr,
    argv0: &OsStr,
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    core_limit: &Saved,
) -> Error {
    core_limit.restore();
    let error = Command::new(program)
        .arg0(argv0)
        .args(args)
        .env_clear()
        .envs(env)
        .exec();
    launch_error(argv0, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injection(name: &str, env: &str, value: &[u8]) -> Injection {
        Injection {
            name: CredentialName::parse(name).unwrap(),
            env: EnvVarName::parse(env).unwrap(),
            kind: Kind::Secret,
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
        let none = FileSet::default();
        let env = child_env(inherited.clone().into_iter(), false, &injections, &none);
        assert_eq!(
            env,
            pairs(&[("PATH", "/bin"), ("OTHER", "x"), ("API_KEY", "new")])
        );
        let env = child_env(inherited.into_iter(), true, &injections, &none);
        assert_eq!(env, pairs(&[("PATH", "/bin"), ("API_KEY", "new")]));
    }

    #[test]
    fn overdue_credentials_warn_or_deny() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let entry = |due: &str| Entry {
            due: Some(due.parse().unwrap()),
            ..Entry::plain("A", at)
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
    fn many_overdue_credentials_are_counted_not_listed() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let entry = Entry {
            due: Some("2026-01-08T00:00:00Z".parse().unwrap()),
            ..Entry::plain("A", at)
        };
        let names: Vec<CredentialName> = (0..10_000)
            .map(|i| CredentialName::parse(&format!("k{i:05}")).unwrap())
            .collect();
        let check = |n: usize, deny| {
            overdue_check(
                names.iter().take(n).map(|name| (name, &entry)),
                &Defaults::default(),
                now,
                deny,
            )
        };
        assert_eq!(check(10, false).unwrap().len(), 10, "ten: a line each");
        let ten = check(10, true).unwrap_err().to_string();
        assert!(
            ten.contains("k00009 (due 2d ago)") && !ten.contains("more"),
            "{ten}"
        );
        let warnings = check(10_000, false).unwrap();
        assert_eq!(warnings.len(), 9);
        assert_eq!(
            warnings[7],
            "warning: k00007 is overdue for rotation (due 2026-01-08, 2d ago)"
        );
        assert_eq!(
            warnings[8],
            "warning: and 9992 more credentials are overdue for rotation (`agentcred due` lists them)"
        );
        assert_eq!(
            check(10_000, true).unwrap_err().to_string(),
            "10000 credentials are overdue for rotation: k00000 (due 2d ago), k00001 (due 2d ago), \
             k00002 (due 2d ago), k00003 (due 2d ago), k00004 (due 2d ago), k00005 (due 2d ago), \
             k00006 (due 2d ago), k00007 (due 2d ago), and 9992 more"
        );
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
