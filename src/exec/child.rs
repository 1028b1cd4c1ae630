//! Starting spawn mode's child with `posix_spawn(3)` from one C copy of its environment.
//!
//! std's `Command` keeps the environment it is given in a map, and, to spawn, copies it
//! again into the `NAME=value` strings `execve(2)` takes: two copies of every credential
//! while the child starts (2.6 MB for 10,000), neither of them wiped afterwards. Here each
//! variable is turned into its `NAME=value` string as it is handed over (ours is wiped at
//! once), those strings are what the child gets, and they are wiped once it has started.
//!
//! What std's spawn does besides is done here too: the child starts with no signal
//! blocked and with SIGPIPE at its default action (Rust ignores SIGPIPE, and an ignored
//! signal stays ignored across `execve`), and its piped output is made of close-on-exec
//! pipes, so that nothing else inherits them. glibc's `posix_spawn` reports a failed
//! `execve` as its own error, so a missing or unrunnable program fails here, before
//! anything is relayed.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, Signal as NixSignal};
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, WaitOptions, waitpid};
use zeroize::Zeroize;

/// A started child: its pid, and the read ends of its output when that is piped.
pub struct Child {
    pub pid: Pid,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Child {
    /// A child std started (the pseudo-terminal path): from here on it is waited for by
    /// pid, like one started by [`spawn`].
    pub fn from_std(mut child: std::process::Child) -> Child {
        Child {
            pid: Pid::from_child(&child),
            stdout: child.stdout.take().map(OwnedFd::from),
            stderr: child.stderr.take().map(OwnedFd::from),
        }
    }
}

/// Reap the child `pid` and return how it ended.
pub fn reap(pid: Pid) -> io::Result<ExitStatus> {
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(ExitStatus::from_raw(status.as_raw())),
            Ok(None) => return Err(io::Error::other("the program has no status to report")),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `NAME=value` of the child's environment, wiped when dropped.
struct Variable(CString);

impl AsRef<CStr> for Variable {
    fn as_ref(&self) -> &CStr {
        &self.0
    }
}

impl Drop for Variable {
    fn drop(&mut self) {
        std::mem::take(&mut self.0).into_bytes().zeroize();
    }
}

/// `NAME=value` strings for `env`, each of ours wiped as soon as its string is made.
fn environment(env: Vec<(OsString, OsString)>) -> io::Result<Vec<Variable>> {
    let mut out = Vec::with_capacity(env.len());
    let mut failed = false;
    for (key, value) in env {
        let mut bytes = Vec::with_capacity(key.len() + value.len() + 2);
        bytes.extend_from_slice(key.as_bytes());
        bytes.push(b'=');
        bytes.extend_from_slice(value.as_bytes());
        value.into_vec().zeroize();
        // Checked when values are stored and inherited ones cannot hold one; but never
        // cut a value short silently.
        match CString::new(bytes) {
            Ok(variable) => out.push(Variable(variable)),
            Err(e) => {
                e.into_vec().zeroize();
                failed = true;
            }
        }
    }
    if failed {
        return Err(nul_error());
    }
    Ok(out)
}

fn nul_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "an argument or variable holds a NUL byte",
    )
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| nul_error())
}

/// Start `program` (a path: it is not searched for) with `argv0` and `args`, and exactly
/// the environment `env`; with `pipe_output`, its stdout and stderr are pipes whose read
/// ends [`Child`] holds, else they are agentcred's own, as stdin always is.
pub fn spawn(
    program: &OsStr,
    argv0: &OsStr,
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    pipe_output: bool,
) -> io::Result<Child> {
    let envp = environment(env)?;
    let path = c_string(program)?;
    let argv = std::iter::once(argv0)
        .chain(args.iter().map(OsString::as_os_str))
        .map(c_string)
        .collect::<io::Result<Vec<CString>>>()?;

    let mut attr = PosixSpawnAttr::init()?;
    let mut pipe = SigSet::empty();
    pipe.add(NixSignal::SIGPIPE);
    attr.set_sigdefault(&pipe)?;
    attr.set_sigmask(&SigSet::empty())?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK,
    )?;

    let mut actions = PosixSpawnFileActions::init()?;
    let mut ours = [None, None];
    let mut theirs = Vec::new();
    if pipe_output {
        for (fd, read_end) in [1, 2].into_iter().zip(ours.iter_mut()) {
            let (read, write) = pipe_with(PipeFlags::CLOEXEC)?;
            // dup2 onto 1 or 2 clears close-on-exec there (and glibc clears it when the
            // pipe already is that descriptor).
            actions.add_dup2(write.as_raw_fd(), fd)?;
            *read_end = Some(read);
            theirs.push(write);
        }
    }
    let pid = posix_spawn(path.as_c_str(), &actions, &attr, &argv, &envp)?;
    drop(envp);
    drop(theirs);
    let [stdout, stderr] = ours;
    Ok(Child {
        pid: Pid::from_raw(pid.as_raw())
            .ok_or_else(|| io::Error::other("posix_spawn returned no pid"))?,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pairs(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    /// `sh -c SCRIPT`, with nothing in its environment.
    fn sh(script: &str, pipe_output: bool) -> Child {
        let args = ["-c".into(), script.into()];
        spawn(
            OsStr::new("/bin/sh"),
            OsStr::new("sh"),
            &args,
            Vec::new(),
            pipe_output,
        )
        .unwrap()
    }

    fn read_all(fd: OwnedFd) -> String {
        let mut out = String::new();
        std::fs::File::from(fd).read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn the_child_gets_exactly_the_environment_and_arguments_given() {
        let child = spawn(
            OsStr::new("/usr/bin/env"),
            OsStr::new("env"),
            &[],
            pairs(&[("A", "x=y"), ("B", "")]),
            true,
        )
        .unwrap();
        assert_eq!(read_all(child.stdout.unwrap()), "A=x=y\nB=\n");
        assert_eq!(reap(child.pid).unwrap().code(), Some(0));

        let script = "tr '\\0' ' ' </proc/$$/cmdline; echo err >&2";
        let child = spawn(
            OsStr::new("/bin/sh"),
            OsStr::new("named-sh"),
            &["-c".into(), script.into(), "zero".into(), "one".into()],
            Vec::new(),
            true,
        )
        .unwrap();
        let out = read_all(child.stdout.unwrap());
        assert_eq!(out, format!("named-sh -c {script} zero one "));
        assert_eq!(read_all(child.stderr.unwrap()), "err\n");
        assert_eq!(reap(child.pid).unwrap().code(), Some(0));
    }

    #[test]
    fn sigpipe_is_back_to_its_default_in_the_child() {
        // Rust ignores SIGPIPE; the child must not inherit that.
        let child = sh("grep SigIgn /proc/self/status", true);
        let out = read_all(child.stdout.unwrap());
        assert_eq!(reap(child.pid).unwrap().code(), Some(0));
        let ignored =
            u64::from_str_radix(out.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
        assert_eq!(
            ignored & (1 << (13 - 1)),
            0,
            "SIGPIPE ignored in the child: {out}"
        );
    }

    #[test]
    fn a_missing_program_fails_to_spawn() {
        let err = spawn(
            OsStr::new("/nonexistent/program"),
            OsStr::new("program"),
            &[],
            Vec::new(),
            false,
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("not-a-program");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let err = spawn(plain.as_os_str(), OsStr::new("x"), &[], Vec::new(), false)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    }

    #[test]
    fn a_nul_byte_is_refused_not_cut_short() {
        let err = spawn(
            OsStr::new("/bin/true"),
            OsStr::new("true"),
            &[],
            pairs(&[("A", "x\0y")]),
            false,
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn the_exit_status_is_reported() {
        assert_eq!(reap(sh("exit 7", false).pid).unwrap().code(), Some(7));
        let killed = reap(sh("kill -TERM $$", false).pid).unwrap();
        assert_eq!(killed.signal(), Some(15));
    }
}
