//! `exec --sandbox` (CONTRACT section 11): the program and everything it starts cannot
//! reach the store, the identity, the unlock cache, the Secret Service or agentcred itself,
//! and the kernel, not the program's good will, enforces it.
//!
//! # How
//!
//! Each "cannot" has its own kernel mechanism, all of them unprivileged:
//!
//! - **Files** (store, identity files, config and state directories): Landlock, see
//!   [`landlock`]. Its rules are allow-lists, so "everything but these paths" is written as
//!   full access to every sibling along the way from `/` down to each protected path.
//! - **The unlock cache** and every other kernel key: a seccomp filter makes `keyctl`,
//!   `add_key` and `request_key` fail with EPERM, see [`keyring`]. This reaches further
//!   than a fresh session keyring would: the per-user keyrings (`@u`, `@us`), which any
//!   process of the user may open by their special IDs, are out of reach too.
//! - **The Secret Service**: the session bus must be out of reach. An abstract socket is
//!   cut off by Landlock's abstract-socket scope (ABI 6); a path-named one is covered by
//!   `/dev/null` in a private mount namespace, inside an unprivileged user namespace, see
//!   [`namespace`]. Landlock forbids the program to mount or unmount anything afterwards.
//! - **agentcred's memory** (the broker and spawn mode keep it alive): agentcred is
//!   non-dumpable for its whole life ([`crate::util::hardening`]), and Landlock lets a sandboxed
//!   process ptrace (and so open `/proc/PID/mem` or `environ` of) only processes in its
//!   own sandbox.
//! - **Typing into the terminal** (`TIOCSTI`), which would let the program queue
//!   `agentcred get ...` for the shell that runs after it: refused by the same seccomp
//!   filter.
//!
//! # Where
//!
//! The restrictions are set up by agentcred itself in a fresh process image: agentcred
//! runs `/proc/self/exe __sandbox-exec SPEC -- PROGRAM ARGS` (the *trampoline*), which
//! applies them to itself and then `execve`s the program. In exec-replace mode agentcred
//! execs the trampoline; in spawn mode it spawns it. One path for both, and:
//! - this crate forbids `unsafe`, so `pre_exec` (run code in the child between fork and
//!   exec) is not available, and a trampoline needs none;
//! - a user namespace can only be entered by a single-threaded process, which a fresh image
//!   is and agentcred (signal forwarding, relays) may not be;
//! - the trampoline holds nothing but the program's own environment: no identity, no
//!   store key.
//!
//! The parent checks first ([`check`]) that the machine can do all of it and refuses
//! otherwise (exit 1): the program never runs unprotected. The trampoline checks again
//! and fails the same way. [`ENV_FORCE_UNSUPPORTED`] makes the check fail, for tests; it
//! can only take support away.
//!
//! Inside, [`ENV_SANDBOXED`] tells `agentcred get` and the like to say why they cannot
//! work (exit 5). The variable is only the message; the boundary is the kernel's.

#[cfg(target_os = "linux")]
pub mod keyring;
#[cfg(target_os = "linux")]
pub mod landlock;
#[cfg(target_os = "linux")]
pub mod namespace;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use crate::error::{Error, Result};

/// Set to `1` in a sandboxed program's environment.
pub const ENV_SANDBOXED: &str = "AGENTCRED_SANDBOXED";

/// Tests: `1` makes agentcred believe the kernel has no Landlock, so `--sandbox` refuses.
pub const ENV_FORCE_UNSUPPORTED: &str = "AGENTCRED_SANDBOX_FORCE_UNSUPPORTED";

/// The hidden subcommand of the trampoline.
pub const TRAMPOLINE: &str = "__sandbox-exec";

/// Commands that need the store's secrets and so cannot work inside a sandbox.
pub const REFUSED_INSIDE: [&str; 4] = ["get", "export", "exec", "token"];

/// What to keep the program away from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// Files and directories the program may not touch at all (absolute).
    pub protected: Vec<PathBuf>,
    /// Unix sockets to cover in a private mount namespace (absolute).
    pub hidden_sockets: Vec<PathBuf>,
}

impl Spec {
    /// The spec for a store at `store_dir`: the store, every identity file agentcred may
    /// use, its config and state directories, and the session bus.
    pub fn for_store(store_dir: &Path) -> Result<Spec> {
        let mut protected = vec![store_dir.to_path_buf()];
        if let Some(file) =
            std::env::var_os(crate::crypto::identity::ENV_IDENTITY_FILE).filter(|f| !f.is_empty())
        {
            protected.push(PathBuf::from(file));
        }
        protected.extend(crate::crypto::identity::default_file());
        if let Some(dirs) = directories::ProjectDirs::from("", "", "agentcred") {
            protected.push(dirs.config_dir().to_path_buf());
            protected.push(dirs.data_dir().to_path_buf());
            protected.push(dirs.data_local_dir().to_path_buf());
            protected.extend(dirs.state_dir().map(Path::to_path_buf));
        }
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot find the working directory", e))?;
        let mut protected: Vec<PathBuf> =
            protected.iter().map(|p| canonical(&cwd.join(p))).collect();
        protected.sort();
        protected.dedup();
        let hidden_sockets = session_bus_sockets(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").as_deref(),
            std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
            rustix::process::getuid().as_raw(),
        )?;
        Ok(Spec {
            protected,
            hidden_sockets,
        })
    }

    /// The trampoline's arguments (after the program path `/proc/self/exe`).
    pub fn trampoline_args(
        &self,
        program: &OsStr,
        argv0: &OsStr,
        args: &[OsString],
    ) -> Vec<OsString> {
        let mut out = vec![OsString::from(TRAMPOLINE)];
        for path in &self.protected {
            out.push("--protect".into());
            out.push(path.clone().into_os_string());
        }
        for path in &self.hidden_sockets {
            out.push("--hide-socket".into());
            out.push(path.clone().into_os_string());
        }
        out.push("--".into());
        out.push(program.to_owned());
        out.push(argv0.to_owned());
        out.extend(args.iter().cloned());
        out
    }
}

/// The trampoline's command line, parsed: the spec, the program, its argv[0] and arguments.
struct Invocation {
    spec: Spec,
    program: OsString,
    argv0: OsString,
    args: Vec<OsString>,
}

fn parse_invocation(mut args: impl Iterator<Item = OsString>) -> Option<Invocation> {
    let mut spec = Spec::default();
    loop {
        let flag = args.next()?;
        match flag.to_str()? {
            "--protect" => spec.protected.push(absolute(args.next()?)?),
            "--hide-socket" => spec.hidden_sockets.push(absolute(args.next()?)?),
            "--" => break,
            _ => return None,
        }
    }
    Some(Invocation {
        spec,
        program: args.next()?,
        argv0: args.next()?,
        args: args.collect(),
    })
}

fn absolute(path: OsString) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    path.is_absolute().then_some(path)
}

/// A path with its symlinks resolved as far as it exists, and `.` and `..` applied:
/// Landlock sees inodes, so the walk must go through the real directories.
fn canonical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    let mut exists = true;
    for part in path.components() {
        match part {
            Component::Normal(name) => {
                out.push(name);
                if exists {
                    match std::fs::canonicalize(&out) {
                        Ok(real) => out = real,
                        Err(_) => exists = false,
                    }
                }
            }
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The path-named sockets through which the session bus may be reached: the one in
/// `DBUS_SESSION_BUS_ADDRESS`, and the standard `$XDG_RUNTIME_DIR/bus` and
/// `/run/user/UID/bus` (a program may try those without the variable). An address that no
/// sandbox can cut off (TCP) is refused.
pub fn session_bus_sockets(
    address: Option<&OsStr>,
    runtime_dir: Option<&OsStr>,
    uid: u32,
) -> Result<Vec<PathBuf>> {
    let mut sockets = Vec::new();
    let runtime_dir = runtime_dir.filter(|d| !d.is_empty()).map(PathBuf::from);
    if let Some(address) = address {
        let text = String::from_utf8_lossy(address.as_bytes());
        for one in text.split(';').filter(|a| !a.is_empty()) {
            let (transport, params) = one.split_once(':').unwrap_or((one, ""));
            match transport {
                "unix" => {
                    for param in params.split(',') {
                        match param.split_once('=') {
                            Some(("path", path)) => sockets.push(PathBuf::from(unescape(path))),
                            Some(("runtime", "yes")) => {
                                sockets.extend(runtime_dir.as_ref().map(|d| d.join("bus")));
                            }
                            // Abstract sockets: Landlock's scope (checked in `check`).
                            _ => {}
                        }
                    }
                }
                // autolaunch finds the bus through X11 or a path file under the home.
                "autolaunch" | "launchd" => {}
                other => {
                    return Err(Error::SandboxUnavailable {
                        reason: format!(
                            "the session bus (DBUS_SESSION_BUS_ADDRESS) is reached over {other}, which a sandbox cannot cut off without cutting off the network"
                        ),
                        need: "a session bus on a Unix socket".into(),
                    });
                }
            }
        }
    }
    sockets.extend(runtime_dir.map(|d| d.join("bus")));
    sockets.push(PathBuf::from(format!("/run/user/{uid}/bus")));
    let mut existing: Vec<PathBuf> = sockets
        .into_iter()
        .filter(|p| p.is_absolute())
        .filter(|p| {
            use std::os::unix::fs::FileTypeExt;
            std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
        })
        .map(|p| canonical(&p))
        .collect();
    existing.sort();
    existing.dedup();
    Ok(existing)
}

/// D-Bus address values escape bytes as `%XX`.
fn unescape(value: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// What this machine offers for the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Support {
    /// The Landlock ABI version, `None` when the kernel has no Landlock.
    pub landlock_abi: Option<i32>,
    /// Whether an unprivileged process may make a user namespace.
    pub user_namespaces: bool,
    /// Whether seccomp filters (for the keyring and TIOCSTI) work on this architecture.
    pub seccomp: bool,
    /// bubblewrap, when installed (reported by doctor; not used: agentcred makes the same
    /// namespace itself).
    pub bubblewrap: Option<PathBuf>,
}

/// Landlock's abstract-socket and signal scopes.
pub const SCOPE_ABI: i32 = 6;

impl Support {
    /// Ask the kernel. Cheap (a few system calls), except `user_namespaces`, which forks.
    pub fn probe() -> Support {
        if forced_unsupported() {
            return Support {
                landlock_abi: None,
                user_namespaces: false,
                seccomp: false,
                bubblewrap: None,
            };
        }
        #[cfg(target_os = "linux")]
        {
            Support {
                landlock_abi: landlock::abi(),
                user_namespaces: namespace::available(),
                seccomp: keyring::available(),
                bubblewrap: bubblewrap(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        Support {
            landlock_abi: None,
            user_namespaces: false,
            seccomp: false,
            bubblewrap: None,
        }
    }

    /// What `--sandbox` would use for this spec, or why it cannot.
    pub fn mechanism(&self, spec: &Spec, abstract_bus: bool) -> Result<String> {
        let unavailable = |reason: String, need: &str| Error::SandboxUnavailable {
            reason,
            need: need.into(),
        };
        let Some(abi) = self.landlock_abi else {
            return Err(unavailable(
                "this kernel has no Landlock".into(),
                "Linux 5.13 or later with Landlock enabled (lsm=...,landlock)",
            ));
        };
        if !self.seccomp {
            return Err(unavailable(
                format!(
                    "seccomp filters are not available on this system ({})",
                    std::env::consts::ARCH
                ),
                "Linux on x86_64, aarch64 or riscv64 with seccomp",
            ));
        }
        if abi < SCOPE_ABI && abstract_bus {
            return Err(unavailable(
                format!(
                    "the session bus is an abstract socket, which Landlock ABI {abi} cannot cut off"
                ),
                "Landlock ABI 6 (Linux 6.12) or a session bus on a path-named socket",
            ));
        }
        let mut parts = vec![format!("Landlock ABI {abi}"), "seccomp".to_string()];
        if !spec.hidden_sockets.is_empty() {
            if !self.user_namespaces {
                return Err(unavailable(
                    format!(
                        "the session bus socket {} can only be hidden in a private mount namespace, and this system does not let unprivileged users make one",
                        spec.hidden_sockets[0].display()
                    ),
                    "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)",
                ));
            }
            parts.push("a private mount namespace".into());
        }
        Ok(parts.join(" + "))
    }
}

fn forced_unsupported() -> bool {
    std::env::var_os(ENV_FORCE_UNSUPPORTED).is_some_and(|v| v == "1")
}

/// Whether `DBUS_SESSION_BUS_ADDRESS` names an abstract socket.
pub fn abstract_bus(address: Option<&OsStr>) -> bool {
    address.is_some_and(|a| {
        let text = String::from_utf8_lossy(a.as_bytes());
        text.contains("abstract=") || text.contains("tmpdir=")
    })
}

#[cfg(target_os = "linux")]
fn bubblewrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bwrap"))
        .find(|p| p.is_file())
}

/// What `doctor` says about the sandbox: whether `exec --sandbox` works here, the one
/// line saying with what (Landlock ABI, user namespaces, bubblewrap, the mechanism), and,
/// when it does not work, what is needed.
pub fn doctor(store_dir: &Path) -> (bool, String, Option<String>) {
    let support = Support::probe();
    let facts = format!(
        "Landlock {}, unprivileged user namespaces {}, bubblewrap {}",
        support
            .landlock_abi
            .map_or_else(|| "no".to_string(), |abi| format!("ABI {abi}")),
        if support.user_namespaces { "yes" } else { "no" },
        if support.bubblewrap.is_some() {
            "installed (not needed)"
        } else {
            "not installed (not needed)"
        },
    );
    let mechanism = Spec::for_store(store_dir).and_then(|spec| {
        support.mechanism(
            &spec,
            abstract_bus(std::env::var_os("DBUS_SESSION_BUS_ADDRESS").as_deref()),
        )
    });
    match mechanism {
        Ok(mechanism) => (
            true,
            format!("exec --sandbox would use {mechanism} ({facts})"),
            None,
        ),
        Err(Error::SandboxUnavailable { reason, need }) => (
            false,
            format!("exec --sandbox refuses to run here: {reason} ({facts})"),
            Some(format!("needed: {need}")),
        ),
        Err(e) => (false, format!("exec --sandbox: {e} ({facts})"), e.hint()),
    }
}

/// Refuse `--sandbox` (exit 1, saying why and what is needed) unless this machine can
/// provide all of it; on success, the mechanism to be used.
pub fn check(spec: &Spec) -> Result<String> {
    Support::probe().mechanism(
        spec,
        abstract_bus(std::env::var_os("DBUS_SESSION_BUS_ADDRESS").as_deref()),
    )
}

/// Make sure agentcred itself is non-dumpable (no ptrace, no `/proc/PID/mem`, no core),
/// as it stays while a sandboxed program runs beside it in spawn mode.
/// [`crate::util::hardening`] already asked for it at start; this refuses if it did not stick.
pub fn keep_undumpable() -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{DumpableBehavior, dumpable_behavior, set_dumpable_behavior};
        let _ = set_dumpable_behavior(DumpableBehavior::NotDumpable);
        if !matches!(dumpable_behavior(), Ok(DumpableBehavior::NotDumpable)) {
            return Err(Error::SandboxUnavailable {
                reason: "agentcred cannot make itself non-dumpable".into(),
                need: "prctl(PR_SET_DUMPABLE)".into(),
            });
        }
    }
    Ok(())
}

/// The error `get`, `export`, `exec` and `token` end with inside a sandbox (exit 5), or
/// `None` outside one.
pub fn refuse_inside(command: &str) -> Option<Error> {
    (REFUSED_INSIDE.contains(&command)
        && std::env::var_os(ENV_SANDBOXED).is_some_and(|v| !v.is_empty()))
    .then(|| Error::Sandboxed {
        command: command.to_string(),
    })
}

/// When agentcred was started as the trampoline, apply the sandbox and run the program;
/// this returns only when it could not (the exit code to end with). `None` otherwise.
pub fn trampoline_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(TRAMPOLINE)) {
        return None;
    }
    let Some(invocation) = parse_invocation(args) else {
        eprintln!("error: {TRAMPOLINE} is agentcred's own; run `agentcred exec --sandbox`");
        return Some(ExitCode::from(crate::exit::Exit::Usage.code()));
    };
    let error = trampoline(invocation);
    eprintln!("error: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
    Some(ExitCode::from(error.exit().code()))
}

fn trampoline(invocation: Invocation) -> Error {
    if let Err(e) = apply(&invocation.spec) {
        return e;
    }
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(&invocation.program)
        .arg0(&invocation.argv0)
        .args(&invocation.args)
        .exec();
    launch_error(&invocation.argv0, error)
}

/// Why the program could not be started, as exec reports it (127 not found, 126
/// otherwise). The same as `exec::program::launch_error`, which this module, a layer
/// peer that exec uses, cannot import without a cycle.
fn launch_error(program: &OsStr, error: std::io::Error) -> Error {
    let program = crate::util::output::escape(&program.to_string_lossy());
    match error.kind() {
        std::io::ErrorKind::NotFound => Error::CommandNotFound { program },
        std::io::ErrorKind::PermissionDenied => Error::NotExecutable { program },
        _ => Error::NotExecutable {
            program: format!("{program}: {error}"),
        },
    }
}

/// Restrict this process (and whatever it will run) as `spec` says, or fail: the mount
/// namespace first (it needs the mount rights Landlock then takes away), then seccomp,
/// then Landlock.
#[cfg(target_os = "linux")]
pub fn apply(spec: &Spec) -> Result<()> {
    let failed = |what: &str, e: std::io::Error| Error::SandboxUnavailable {
        reason: format!("cannot {what}: {e}"),
        need: "see `agentcred doctor`".into(),
    };
    // First, while this process is sure to be single-threaded (probing Landlock below runs
    // a thread, and a process that has had one may not enter a user namespace for a
    // moment after it ends).
    if !spec.hidden_sockets.is_empty() {
        namespace::hide(&spec.hidden_sockets).map_err(|e| failed("hide the session bus", e))?;
    }
    // The parent's check again, as this process sees the machine (the socket part is done,
    // and bubblewrap does not matter): one Landlock probe, reused below.
    let support = if forced_unsupported() {
        Support::probe()
    } else {
        Support {
            landlock_abi: landlock::abi(),
            user_namespaces: true,
            seccomp: keyring::available(),
            bubblewrap: None,
        }
    };
    support.mechanism(
        &Spec {
            hidden_sockets: Vec::new(),
            ..spec.clone()
        },
        abstract_bus(std::env::var_os("DBUS_SESSION_BUS_ADDRESS").as_deref()),
    )?;
    let abi = support.landlock_abi.unwrap_or_default();
    keyring::deny().map_err(|e| failed("install the seccomp filter", e))?;
    landlock::restrict(&spec.protected, abi).map_err(|e| failed("restrict file access", e))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn apply(_spec: &Spec) -> Result<()> {
    Err(Error::SandboxUnavailable {
        reason: "the sandbox is only implemented on Linux".into(),
        need: "Linux with Landlock (macOS sandbox-exec profiles are not done yet)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampoline_arguments_round_trip() {
        let spec = Spec {
            protected: vec!["/home/u/.config/agentcred".into(), "/s".into()],
            hidden_sockets: vec!["/run/user/1/bus".into()],
        };
        let args = spec.trampoline_args(
            OsStr::new("/usr/bin/env"),
            OsStr::new("env"),
            &["--".into(), "-x".into()],
        );
        assert_eq!(args[0], TRAMPOLINE);
        let parsed = parse_invocation(args.into_iter().skip(1)).unwrap();
        assert_eq!(parsed.spec, spec);
        assert_eq!(parsed.program, "/usr/bin/env");
        assert_eq!(parsed.argv0, "env");
        assert_eq!(parsed.args, ["--", "-x"]);
    }

    #[test]
    fn trampoline_refuses_relative_or_unknown() {
        let parse = |list: &[&str]| parse_invocation(list.iter().map(OsString::from));
        assert!(parse(&["--protect", "rel", "--", "p", "p"]).is_none());
        assert!(parse(&["--weaken", "/x", "--", "p", "p"]).is_none());
        assert!(parse(&["--protect", "/x"]).is_none());
    }

    #[test]
    fn bus_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("my bus");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let escaped = format!("unix:path={}", sock.display()).replace(' ', "%20");
        let found = session_bus_sockets(Some(OsStr::new(&escaped)), None, u32::MAX).unwrap();
        assert_eq!(found, [canonical(&sock)]);
        let runtime = session_bus_sockets(
            Some(OsStr::new("unix:abstract=/tmp/dbus-x,guid=1")),
            Some(dir.path().as_os_str()),
            u32::MAX,
        )
        .unwrap();
        assert!(runtime.is_empty(), "{runtime:?}");
        let err =
            session_bus_sockets(Some(OsStr::new("tcp:host=1.2.3.4,port=1")), None, 0).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Failure);
        assert!(abstract_bus(Some(OsStr::new("unix:abstract=/tmp/dbus-x"))));
        assert!(!abstract_bus(Some(OsStr::new("unix:path=/run/user/1/bus"))));
    }

    #[test]
    fn canonical_resolves_the_existing_part() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let got = canonical(&dir.path().join("link/missing/../deeper"));
        assert_eq!(got, std::fs::canonicalize(&real).unwrap().join("deeper"));
    }

    #[test]
    fn no_landlock_refuses() {
        let support = Support {
            landlock_abi: None,
            user_namespaces: true,
            seccomp: true,
            bubblewrap: None,
        };
        let err = support.mechanism(&Spec::default(), false).unwrap_err();
        assert!(err.to_string().contains("no Landlock"), "{err}");
        let old = Support {
            landlock_abi: Some(4),
            ..support.clone()
        };
        assert!(old.mechanism(&Spec::default(), true).is_err());
        assert_eq!(
            old.mechanism(&Spec::default(), false).unwrap(),
            "Landlock ABI 4 + seccomp"
        );
        let no_userns = Support {
            landlock_abi: Some(7),
            user_namespaces: false,
            ..support
        };
        let bus = Spec {
            hidden_sockets: vec!["/run/user/1/bus".into()],
            ..Spec::default()
        };
        assert!(no_userns.mechanism(&bus, false).is_err());
    }
}
