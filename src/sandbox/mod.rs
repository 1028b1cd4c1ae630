//! `exec --sandbox` (CONTRACT section 11): the program and everything it starts cannot
//! reach the store, the identity, the unlock cache, the Secret Service or agentcred itself,
//! and the kernel, not the program's good will, enforces it.
//!
//! # How
//!
//! Each "cannot" has its own kernel mechanism, all of them unprivileged:
//!
//! - **Files** (store, identity files, config and state directories): covered in a
//!   private mount namespace by an empty read-only mode-000 tmpfs, see [`namespace`], and
//!   Landlock, see [`landlock`]. Landlock's rules are allow-lists, so "everything but these
//!   paths" is written as full access to every sibling along the way from `/` down to
//!   each protected path; the directories on the way (HOME, `~/.config`) get every right
//!   but renaming or removing directories and cross-directory moves when the paths are
//!   covered, so that new entries work in them, and listing only when they are not (no
//!   user namespaces; or a missing protected path or a symbolic link on the way, which
//!   must not be planted or replaced).
//! - **Code that runs later outside** (shell startup files, `~/.ssh`, `~/.local/bin`,
//!   agentcred itself, the repository's config and hooks, see [`Spec::read_only`]):
//!   read-only bind mounts in the same namespace, where they exist. A deny-list.
//! - **Same-user services that run commands** (tmux, screen, the systemd user manager):
//!   their socket directories covered like the store, see [`Spec::hidden_dirs`].
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
//! applies them to itself and then `execve`s the program. agentcred spawns it and stays,
//! outside the sandbox, until the program ends, and then ends whatever the program left
//! behind (`exec::contain`): a sandboxed run is always in spawn mode. Why a trampoline:
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
//! can only take support away, and only debug builds (the tests') read it.
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

use crate::error::{Error, Result};

/// Set to `1` in a sandboxed program's environment.
pub const ENV_SANDBOXED: &str = "AGENTCRED_SANDBOXED";

/// Tests (debug builds only): `1` makes agentcred believe the kernel has no Landlock, so `--sandbox` refuses;
/// `userns` that it cannot make user namespaces, so the protected paths are not covered
/// and the directories on the way to them are list-only (see [`landlock`]).
pub const ENV_FORCE_UNSUPPORTED: &str = "AGENTCRED_SANDBOX_FORCE_UNSUPPORTED";

/// The hidden subcommand of the trampoline.
pub const TRAMPOLINE: &str = "__sandbox-exec";

/// Commands that need the store's secrets and so cannot work inside a sandbox.
pub const REFUSED_INSIDE: [&str; 4] = ["get", "export", "exec", "token"];

/// What to keep the program away from, and with what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// Files and directories the program may not touch at all (absolute, canonical).
    pub protected: Vec<PathBuf>,
    /// agentcred's own directories among `protected`: made (empty, mode 700) when
    /// missing, so that they can be covered rather than planted by the program.
    pub own_dirs: Vec<PathBuf>,
    /// Symbolic links on the way to a protected path (as agentcred follows them, e.g. a
    /// `~/.config` that links to a dotfiles repository): the program must not replace
    /// them, so their directories stay list-only.
    pub links: Vec<PathBuf>,
    /// Unix sockets to cover in a private mount namespace (absolute).
    pub hidden_sockets: Vec<PathBuf>,
    /// Directories of same-user services that run commands on request (tmux, screen, the
    /// systemd user manager's private socket): covered, where they exist, in the private
    /// mount namespace.
    pub hidden_dirs: Vec<PathBuf>,
    /// Where code that later runs outside the sandbox lives (shell startup files,
    /// `~/.ssh`, `~/.local/bin`, agentcred itself, the repository's hooks): made
    /// read-only, where they exist, in the private mount namespace. A deny-list.
    pub read_only: Vec<PathBuf>,
    /// The Landlock ABI, as found when the spec was made (0: none).
    pub abi: i32,
    /// Cover the protected paths in a private mount namespace (this system lets an
    /// unprivileged user make one).
    pub namespace: bool,
}

impl Spec {
    /// The spec for a store at `store_dir`: the store, every identity file agentcred may
    /// use, its config and state directories, and the session bus.
    pub fn for_store(store_dir: &Path) -> Result<Spec> {
        let mut protected = own_dirs(store_dir);
        if let Some(file) =
            std::env::var_os(crate::crypto::identity::ENV_IDENTITY_FILE).filter(|f| !f.is_empty())
        {
            protected.push(PathBuf::from(file));
        }
        protected.extend(crate::crypto::identity::default_file());
        // A Vault token reaches every Vault-backed credential. Protected when it exists:
        // a missing one would keep HOME list-only (nothing new could be made there), and
        // a token the program plants only gives agentcred the program's own Vault rights.
        protected.extend(
            crate::backend::vault::token_file().filter(|f| std::fs::symlink_metadata(f).is_ok()),
        );
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot find the working directory", e))?;
        let mut links = Vec::new();
        let mut resolver = Resolver::default();
        let mut resolve_all = |paths: &[PathBuf]| {
            let mut out: Vec<PathBuf> = paths
                .iter()
                .map(|p| resolver.resolve(&cwd.join(p), &mut links))
                .collect();
            out.sort();
            out.dedup();
            out
        };
        let own_dirs = resolve_all(&own_dirs(store_dir));
        let mut protected = resolve_all(&protected);
        let mounts = mounts()?;
        protected.extend(aliases(&mounts, &protected));
        protected.sort();
        protected.dedup();
        links.sort();
        links.dedup();
        // A link seen through a second mount must stay in place there too.
        links.extend(aliases(&mounts, &links));
        links.sort();
        links.dedup();
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .filter(|h| h.is_absolute());
        let mut read_only: Vec<PathBuf> = persistence_paths(home.as_deref(), &cwd)
            .iter()
            .map(|p| resolver.resolve(p, &mut Vec::new()))
            .filter(|p| !protected.iter().any(|q| p.starts_with(q)))
            .collect();
        read_only.sort();
        read_only.dedup();
        let uid = rustix::process::getuid().as_raw();
        let mut hidden_dirs: Vec<PathBuf> = service_dirs(uid)
            .iter()
            .map(|p| resolver.resolve(p, &mut Vec::new()))
            .collect();
        hidden_dirs.sort();
        hidden_dirs.dedup();
        let hidden_sockets = session_bus_sockets(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").as_deref(),
            std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
            rustix::process::getuid().as_raw(),
        )?;
        let support = Support::quick();
        Ok(Spec {
            protected,
            own_dirs,
            links,
            hidden_sockets,
            hidden_dirs,
            read_only,
            abi: support.landlock_abi.unwrap_or_default(),
            namespace: support.user_namespaces,
        })
    }

    /// The places that run code later ([`Spec::read_only`]) that do not exist now. The
    /// read-only covers cannot reach a missing one, so a program may create it (a new
    /// `~/.bash_profile`); agentcred says so after the run ([`Missing::created`]).
    pub fn missing_persistence(&self) -> Missing {
        Missing(
            self.read_only
                .iter()
                .filter(|p| std::fs::symlink_metadata(p).is_err())
                .cloned()
                .collect(),
        )
    }

    /// The trampoline's arguments (after the program path `/proc/self/exe`).
    pub fn trampoline_args(
        &self,
        program: &OsStr,
        argv0: &OsStr,
        args: &[OsString],
    ) -> Vec<OsString> {
        let mut out = vec![OsString::from(TRAMPOLINE)];
        out.push("--abi".into());
        out.push(self.abi.to_string().into());
        if self.namespace {
            out.push("--namespace".into());
        }
        for (flag, paths) in [
            ("--protect", &self.protected),
            ("--own-dir", &self.own_dirs),
            ("--link", &self.links),
            ("--hide-socket", &self.hidden_sockets),
            ("--hide-dir", &self.hidden_dirs),
            ("--read-only", &self.read_only),
        ] {
            for path in paths {
                out.push(flag.into());
                out.push(path.clone().into_os_string());
            }
        }
        out.push("--".into());
        out.push(program.to_owned());
        out.push(argv0.to_owned());
        out.extend(args.iter().cloned());
        out
    }
}

/// Places that run code later and were missing when the program started.
#[derive(Debug)]
pub struct Missing(Vec<PathBuf>);

impl Missing {
    /// Those that exist now: the program made them.
    pub fn created(&self) -> impl Iterator<Item = &Path> {
        self.0
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .map(PathBuf::as_path)
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
            "--abi" => spec.abi = args.next()?.to_str()?.parse().ok()?,
            "--namespace" => spec.namespace = true,
            "--protect" => spec.protected.push(absolute(args.next()?)?),
            "--own-dir" => spec.own_dirs.push(absolute(args.next()?)?),
            "--link" => spec.links.push(absolute(args.next()?)?),
            "--hide-socket" => spec.hidden_sockets.push(absolute(args.next()?)?),
            "--hide-dir" => spec.hidden_dirs.push(absolute(args.next()?)?),
            "--read-only" => spec.read_only.push(absolute(args.next()?)?),
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

/// The other paths to the protected files: where the file system that holds one is also
/// mounted a second time (a bind mount of HOME elsewhere, a container's volume), showing
/// a directory above it. Each is protected like the path itself, or it would be a way
/// around. Only paths that lead to the very same file (device and inode) count. Without
/// `/proc/self/mountinfo` they cannot be found, and the sandbox refuses.
fn aliases(mounts: &[Mount], protected: &[PathBuf]) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for path in protected {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        // The mount the path is seen through: the longest mount point above it, the last
        // (topmost) of a stack.
        let Some((device, root, point)) = mounts
            .iter()
            .filter(|(_, _, point)| path.starts_with(point))
            .max_by_key(|(_, _, point)| point.components().count())
        else {
            continue;
        };
        let Ok(inside) = path.strip_prefix(point).map(|rest| root.join(rest)) else {
            continue;
        };
        for (other_device, other_root, other_point) in mounts {
            let Ok(rest) = inside.strip_prefix(other_root) else {
                continue;
            };
            let alias = other_point.join(rest);
            if other_device != device || alias == *path {
                continue;
            }
            if std::fs::symlink_metadata(&alias)
                .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
            {
                out.push(alias);
            }
        }
    }
    out
}

/// A mount as /proc/self/mountinfo shows it: device (major:minor), root within the file
/// system, mount point.
type Mount = (String, PathBuf, PathBuf);

/// This process's mounts. Without `/proc/self/mountinfo` the other paths to the store
/// cannot be found, and the sandbox refuses.
fn mounts() -> Result<Vec<Mount>> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::SandboxUnavailable {
            reason: format!(
                "cannot read /proc/self/mountinfo to find other mounts of the store: {e}"
            ),
            need: "a mounted /proc".into(),
        })?;
    // ID, parent ID, major:minor, root within the file system, mount point, ...
    Ok(info
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ').skip(2);
            let device = fields.next()?.to_string();
            let root = mountinfo_path(fields.next()?);
            let point = mountinfo_path(fields.next()?);
            Some((device, root, point))
        })
        .collect())
}

/// Where code lives that runs later outside the sandbox, as the user: a program that
/// changed it would run unsandboxed next time (finding 1 of the review). A deny-list:
/// only these, and only those that exist when the program starts, are made read-only.
fn persistence_paths(home: Option<&Path>, cwd: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(home) = home {
        for name in [
            ".bashrc",
            ".bash_profile",
            ".bash_login",
            ".bash_logout",
            ".profile",
            ".zshrc",
            ".zprofile",
            ".zshenv",
            ".zlogin",
            ".config/fish",
            ".ssh",
            ".local/bin",
            ".cargo/bin",
            ".config/systemd",
            ".config/autostart",
            ".config/environment.d",
            ".config/git",
            ".gitconfig",
            ".pam_environment",
        ] {
            out.push(home.join(name));
        }
    }
    // agentcred itself, and the directory it is in (a wrapper put beside it, or in its
    // place, would run the next time the user types `agentcred`), unless the program
    // works there.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent().filter(|d| !cwd.starts_with(d)) {
            out.push(dir.to_path_buf());
        }
        out.push(exe);
    }
    // The repository the program works in: its config (core.fsmonitor, core.hooksPath,
    // aliases) and hooks run for whoever uses git there next.
    for dir in cwd.ancestors() {
        let dot_git = dir.join(".git");
        let git_dir = match std::fs::symlink_metadata(&dot_git) {
            Ok(meta) if meta.is_dir() => dot_git,
            Ok(meta) if meta.is_file() => {
                // A worktree or submodule: `gitdir: PATH`.
                let Some(git_dir) = std::fs::read_to_string(&dot_git).ok().and_then(|text| {
                    let path = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
                    Some(dir.join(path))
                }) else {
                    break;
                };
                git_dir
            }
            _ => continue,
        };
        if let Ok(common) = std::fs::read_to_string(git_dir.join("commondir")) {
            let common = git_dir.join(common.trim());
            out.push(common.join("config"));
            out.push(common.join("hooks"));
        }
        out.push(git_dir.join("config"));
        out.push(git_dir.join("hooks"));
        break;
    }
    out
}

/// The socket directories of same-user services that run commands on request: tmux,
/// screen, the systemd user manager's private socket (`systemd-run --user`).
fn service_dirs(uid: u32) -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from(format!("/tmp/tmux-{uid}")),
        PathBuf::from("/run/screen"),
        PathBuf::from("/tmp/screens"),
        PathBuf::from("/tmp/screen"),
        PathBuf::from(format!("/run/user/{uid}/systemd")),
    ];
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    out.extend(var("TMUX_TMPDIR").map(|d| d.join(format!("tmux-{uid}"))));
    out.extend(var("SCREENDIR"));
    out.extend(var("XDG_RUNTIME_DIR").map(|d| d.join("systemd")));
    out
}

/// A path as /proc/self/mountinfo writes it: space, tab, newline and backslash as `\ooo`.
fn mountinfo_path(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|o| std::str::from_utf8(o).ok())
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// agentcred's own directories for a store at `store_dir`.
fn own_dirs(store_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![store_dir.to_path_buf()];
    if let Some(project) = directories::ProjectDirs::from("", "", "agentcred") {
        dirs.push(project.config_dir().to_path_buf());
        dirs.push(project.data_dir().to_path_buf());
        dirs.push(project.data_local_dir().to_path_buf());
        dirs.extend(project.state_dir().map(Path::to_path_buf));
    }
    dirs
}

/// A path with its symbolic links resolved as far as it exists, and `.` and `..`
/// applied: Landlock sees inodes, and mounts go on real directories. Each link on the way
/// is added to `links` (its own path, in its real directory): a program that replaced
/// one would redirect agentcred's next run.
fn resolve(path: &Path, links: &mut Vec<PathBuf>) -> PathBuf {
    Resolver::default().resolve(path, links)
}

/// What `lstat` found at a path, remembered so that a spec's thirty-odd paths, which
/// share most of their directories, cost one `lstat` per directory rather than one per
/// directory per path (a third of the sandbox's set-up time went to repeating them).
#[derive(Clone)]
enum Seen {
    Missing,
    /// A symbolic link and where it leads (`None`: unreadable).
    Link(Option<PathBuf>),
    Other,
}

/// [`resolve`] for many paths, each directory looked at once.
#[derive(Default)]
struct Resolver {
    seen: std::collections::HashMap<PathBuf, Seen>,
}

impl Resolver {
    fn look(&mut self, path: &Path) -> Seen {
        if let Some(seen) = self.seen.get(path) {
            return seen.clone();
        }
        let seen = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => Seen::Link(std::fs::read_link(path).ok()),
            Ok(_) => Seen::Other,
            Err(_) => Seen::Missing,
        };
        self.seen.insert(path.to_path_buf(), seen.clone());
        seen
    }

    /// See [`resolve`].
    fn resolve(&mut self, path: &Path, links: &mut Vec<PathBuf>) -> PathBuf {
        use std::collections::VecDeque;
        let mut todo: VecDeque<OsString> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_os_string()),
                Component::ParentDir => Some("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
            })
            .collect();
        let mut out = PathBuf::from("/");
        let mut exists = true;
        let mut hops = 0;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                out.pop();
                continue;
            }
            out.push(&part);
            if !exists {
                continue;
            }
            match self.look(&out) {
                Seen::Link(target) if hops < 40 => {
                    hops += 1;
                    links.push(out.clone());
                    let Some(target) = target else {
                        exists = false;
                        continue;
                    };
                    out.pop();
                    if target.is_absolute() {
                        out = PathBuf::from("/");
                    }
                    for part in target.components().rev().filter_map(|c| match c {
                        Component::Normal(name) => Some(name.to_os_string()),
                        Component::ParentDir => Some("..".into()),
                        _ => None,
                    }) {
                        todo.push_front(part);
                    }
                }
                Seen::Missing => exists = false,
                Seen::Link(_) | Seen::Other => {}
            }
        }
        out
    }
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
        .filter_map(|p| {
            use std::os::unix::fs::FileTypeExt;
            match std::fs::metadata(&p) {
                Ok(m) if m.file_type().is_socket() => Some(Ok(p)),
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
                    None
                }
                // Out of this user's reach (another user's runtime directory, kept by
                // `sudo -u`): out of the program's too, as it runs as this user.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => None,
                // Cannot tell: it may be the bus, so refuse rather than leave it open.
                Err(e) => Some(Err(Error::SandboxUnavailable {
                    reason: format!("cannot inspect the session bus socket {}: {e}", p.display()),
                    need: "a session bus socket agentcred can inspect".into(),
                })),
            }
        })
        .collect::<Result<Vec<PathBuf>>>()?
        .into_iter()
        .map(|p| resolve(&p, &mut Vec::new()))
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

/// Landlock's truncate right: older ABIs let any file the program may open be truncated,
/// protected or not.
pub const TRUNCATE_ABI: i32 = 3;

/// Landlock's abstract-socket and signal scopes.
pub const SCOPE_ABI: i32 = 6;

impl Support {
    /// Ask the kernel, exactly (for `doctor`): the Landlock ABI from a short-lived thread,
    /// and bubblewrap along `PATH`.
    pub fn probe() -> Support {
        #[cfg(target_os = "linux")]
        if !forced_unsupported() {
            return Support {
                landlock_abi: landlock::exact_abi(),
                bubblewrap: bubblewrap(),
                ..Support::quick()
            };
        }
        Support::quick()
    }

    /// Ask the kernel what `exec --sandbox` needs, cheaply: no thread (a process that has
    /// had one cannot enter a user namespace until the kernel has reaped it), no `PATH`
    /// search. ABI 7 and 8 show as 6 (see [`landlock::abi`]).
    pub fn quick() -> Support {
        let none = Support {
            landlock_abi: None,
            user_namespaces: false,
            seccomp: false,
            bubblewrap: None,
        };
        if forced_unsupported() {
            return none;
        }
        #[cfg(target_os = "linux")]
        {
            Support {
                landlock_abi: landlock::abi(),
                user_namespaces: namespace::available() && !forced_no_user_namespaces(),
                seccomp: keyring::available(),
                bubblewrap: None,
            }
        }
        #[cfg(not(target_os = "linux"))]
        none
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
                "Linux 6.2 or later with Landlock enabled (lsm=...,landlock)",
            ));
        };
        if abi < TRUNCATE_ABI {
            return Err(unavailable(
                format!(
                    "Landlock ABI {abi} does not govern truncating files, so the program could empty the store"
                ),
                "Landlock ABI 3 (Linux 6.2) or later",
            ));
        }
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
        if self.user_namespaces {
            parts.push("a private mount namespace".into());
        } else {
            if !spec.hidden_sockets.is_empty() {
                return Err(unavailable(
                    format!(
                        "the session bus socket {} can only be hidden in a private mount namespace, and this system does not let unprivileged users make one",
                        spec.hidden_sockets[0].display()
                    ),
                    "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0)",
                ));
            }
            return Ok(format!(
                "{} (no user namespaces: nothing new can be made directly in HOME and the other directories on the way to the protected paths)",
                parts.join(" + ")
            ));
        }
        Ok(parts.join(" + "))
    }
}

/// [`ENV_FORCE_UNSUPPORTED`], honoured only by debug builds (the tests'): a shipped
/// binary cannot be talked into the weaker mode from its environment.
fn forced(value: &str) -> bool {
    cfg!(debug_assertions) && std::env::var_os(ENV_FORCE_UNSUPPORTED).is_some_and(|v| v == value)
}

fn forced_unsupported() -> bool {
    forced("1")
}

fn forced_no_user_namespaces() -> bool {
    forced("userns")
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
/// provide all of it, as found when `spec` was made; on success, the mechanism to be used.
pub fn check(spec: &Spec) -> Result<String> {
    spec_support(spec).mechanism(
        spec,
        abstract_bus(std::env::var_os("DBUS_SESSION_BUS_ADDRESS").as_deref()),
    )
}

fn spec_support(spec: &Spec) -> Support {
    if forced_unsupported() {
        return Support::quick();
    }
    Support {
        landlock_abi: (spec.abi > 0).then_some(spec.abi),
        user_namespaces: spec.namespace,
        #[cfg(target_os = "linux")]
        seccomp: keyring::available(),
        #[cfg(not(target_os = "linux"))]
        seccomp: false,
        bubblewrap: None,
    }
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
pub fn trampoline_if_asked() -> Option<u8> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(OsStr::new(TRAMPOLINE)) {
        return None;
    }
    let Some(invocation) = parse_invocation(args) else {
        eprintln!("error: {TRAMPOLINE} is agentcred's own; run `agentcred exec --sandbox`");
        return Some(crate::exit::Exit::Usage.code());
    };
    let error = trampoline(invocation);
    eprintln!("error: {error}");
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
    Some(error.exit().code())
}

fn trampoline(invocation: Invocation) -> Error {
    #[cfg(target_os = "linux")]
    let parent = rustix::process::getppid();
    if let Err(e) = apply(&invocation.spec) {
        return e;
    }
    // agentcred stays to end what the program leaves behind (`exec::contain`); should it
    // be killed outright, the program goes with it (the signal survives `execve`). It
    // may have gone already: then the program does not start.
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Signal, getppid, set_parent_process_death_signal};
        if let Err(e) = set_parent_process_death_signal(Some(Signal::KILL)) {
            return Error::SandboxUnavailable {
                reason: format!("cannot tie the program's life to agentcred's: {e}"),
                need: "prctl(PR_SET_PDEATHSIG)".into(),
            };
        }
        if getppid() != parent {
            return Error::SandboxUnavailable {
                reason: "agentcred ended before the program started".into(),
                need: "nothing: run it again".into(),
            };
        }
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
    // The parent's check again, as this process sees its environment.
    check(spec)?;
    let mut strict = spec.links.clone();
    let mut covered = false;
    if spec.namespace && !forced_no_user_namespaces() {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot find the working directory", e))?;
        for dir in &spec.own_dirs {
            if std::fs::symlink_metadata(dir).is_err() {
                use std::os::unix::fs::DirBuilderExt;
                // Not made: left uncovered, so the way to it stays list-only (below).
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir);
            }
        }
        let mut cover = namespace::Cover::default();
        let mut sorted: Vec<&PathBuf> = spec.protected.iter().collect();
        sorted.sort();
        for path in sorted {
            if cover.dirs.iter().any(|d| path.starts_with(d)) {
                continue;
            }
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => cover.dirs.push(path),
                Ok(meta) if !meta.file_type().is_symlink() => cover.files.push(path),
                // Missing (or replaced by a link since the spec was made): nothing to
                // cover, so nothing may be created on the way to it.
                _ => strict.push(path.clone()),
            }
        }
        let runs = other_runs()?;
        cover.dirs.extend(runs.iter().map(PathBuf::as_path));
        // Service directories that exist and are real directories (not a link, which
        // would move the cover elsewhere).
        for dir in &spec.hidden_dirs {
            if std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir())
                && !cover.dirs.iter().any(|d| dir.starts_with(d))
            {
                cover.dirs.push(dir);
            }
        }
        let read_only: Vec<&Path> = spec
            .read_only
            .iter()
            .map(PathBuf::as_path)
            .filter(|p| {
                std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_symlink())
                    && !cover.dirs.iter().chain(&cover.files).any(|d| p.starts_with(d))
                    // The program's own working directory stays writable.
                    && !cwd.starts_with(p)
            })
            .collect();
        cover.read_only = read_only;
        let sockets: Vec<PathBuf> = spec
            .hidden_sockets
            .iter()
            .filter(|s| !cover.dirs.iter().any(|d| s.starts_with(d)))
            .cloned()
            .collect();
        cover.sockets = &sockets;
        if let Some(inside) = cover
            .dirs
            .iter()
            .chain(&cover.files)
            .find(|p| cwd.starts_with(p))
        {
            return Err(Error::SandboxUnavailable {
                reason: format!(
                    "the working directory is inside {}, which the sandbox hides",
                    inside.display()
                ),
                need: "start the program from another directory".into(),
            });
        }
        no_inherited_directories()?;
        match namespace::unshare() {
            Ok(entered) => {
                namespace::cover(entered, &cover, &cwd)
                    .map_err(|e| failed("cover the protected paths", e))?;
                covered = true;
            }
            // Where the settings allow user namespaces but something else does not (a
            // container's seccomp profile): nothing happened, so go on uncovered, as
            // without user namespaces, unless a socket must be hidden.
            Err(e) if !spec.hidden_sockets.is_empty() => {
                return Err(failed("make a private mount namespace", e));
            }
            Err(_) => {}
        }
    } else if !spec.hidden_sockets.is_empty() {
        return Err(Error::SandboxUnavailable {
            reason: "the session bus socket can only be hidden in a private mount namespace".into(),
            need: "unprivileged user namespaces".into(),
        });
    }
    keyring::deny().map_err(|e| failed("install the seccomp filter", e))?;
    let mut walked = spec.protected.clone();
    walked.extend(spec.links.iter().cloned());
    landlock::restrict(&walked, covered, &strict, spec.abi)
        .map_err(|e| failed("restrict file access", e))?;
    Ok(())
}

/// The run directories of other agentcred processes' file credentials
/// (`agentcred-<pid>-<start>-<random>`, see `exec::filecred`), which hold other agents'
/// keys while those run: covered like the protected paths. The program's own is its
/// agentcred's, the trampoline's parent. They are looked for where agentcred puts them
/// (`$XDG_RUNTIME_DIR`, `/run/user/UID`, the temp dir); one made after the program started
/// is not covered.
#[cfg(target_os = "linux")]
fn other_runs() -> Result<Vec<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let uid = rustix::process::getuid().as_raw();
    let own = format!(
        "agentcred-{}-",
        rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
    );
    let mut bases: Vec<PathBuf> = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .into_iter()
        .chain([
            PathBuf::from(format!("/run/user/{uid}")),
            std::env::temp_dir(),
        ])
        .map(|d| resolve(&d, &mut Vec::new()))
        .collect();
    bases.sort();
    bases.dedup();
    let mut runs = Vec::new();
    for base in bases {
        let entries = match std::fs::read_dir(&base) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // Another agent's keys may be in there: refuse rather than leave them open.
            Err(e) => {
                return Err(Error::SandboxUnavailable {
                    reason: format!(
                        "cannot look for other agents' run directories in {}: {e}",
                        base.display()
                    ),
                    need: "a temp and runtime directory agentcred can list".into(),
                });
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if !is_run_dir(name) || name.starts_with(&own) {
                continue;
            }
            let path = base.join(name);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
                runs.push(path);
            }
        }
    }
    Ok(runs)
}

/// `agentcred-<pid>-<start>-<16 hex digits>`, and nothing else.
fn is_run_dir(name: &str) -> bool {
    let mut parts = name.split('-');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    parts.next() == Some("agentcred")
        && digits(parts.next())
        && digits(parts.next())
        && parts
            .next()
            .is_some_and(|p| p.len() == 16 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        && parts.next().is_none()
}

/// Refuse when an open directory would be handed to the program. It was opened before
/// the mount namespace was made, so paths beneath it are not covered: through it (and
/// `..`) the program would reach the protected paths, which the directories on the way
/// no longer keep from it (see [`landlock`]). Close-on-exec ones end at `execve`.
#[cfg(target_os = "linux")]
fn no_inherited_directories() -> Result<()> {
    let fds: Vec<String> = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(e) => return Err(Error::io("cannot list the open file descriptors", e)),
    };
    for fd in fds {
        if !std::fs::metadata(format!("/proc/self/fd/{fd}")).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let close_on_exec = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
            .ok()
            .and_then(|info| {
                let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
                u32::from_str_radix(flags.trim(), 8).ok()
            })
            .is_some_and(|flags| flags & 0o2_000_000 != 0);
        if !close_on_exec {
            return Err(Error::SandboxUnavailable {
                reason: format!(
                    "file descriptor {fd} is an open directory, through which the program could reach what the sandbox hides"
                ),
                need: format!("close it before starting agentcred (in a shell: {fd}<&-)"),
            });
        }
    }
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
            own_dirs: vec!["/s".into()],
            links: vec!["/home/u/.config".into()],
            hidden_sockets: vec!["/run/user/1/bus".into()],
            hidden_dirs: vec!["/tmp/tmux-1".into()],
            read_only: vec!["/home/u/.bashrc".into(), "/w/.git/hooks".into()],
            abi: 6,
            namespace: true,
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
        assert_eq!(found, [std::fs::canonicalize(&sock).unwrap()]);
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
    fn persistence_paths_find_the_repository_above() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        // A worktree: `.git` is a file naming its git dir, which names the common dir.
        let main_git = root.join("main/.git");
        let wt_git = main_git.join("worktrees/wt");
        std::fs::create_dir_all(&wt_git).unwrap();
        std::fs::write(wt_git.join("commondir"), "../..\n").unwrap();
        std::fs::create_dir_all(root.join("wt/src/deep")).unwrap();
        std::fs::write(
            root.join("wt/.git"),
            format!("gitdir: {}\n", wt_git.display()),
        )
        .unwrap();
        let home = root.join("home");
        let got = persistence_paths(Some(&home), &root.join("wt/src/deep"));
        for want in [
            home.join(".bashrc"),
            home.join(".ssh"),
            home.join(".local/bin"),
            home.join(".config/git"),
            wt_git.join("config"),
            wt_git.join("hooks"),
            wt_git.join("../../config"),
            wt_git.join("../../hooks"),
        ] {
            assert!(got.contains(&want), "{want:?} not in {got:?}");
        }
        // A plain repository above the working directory.
        let got = persistence_paths(None, &root.join("main/sub"));
        assert!(got.contains(&main_git.join("config")), "{got:?}");
        assert!(got.contains(&main_git.join("hooks")), "{got:?}");
        assert!(!got.iter().any(|p| p.starts_with(&home)), "{got:?}");
    }

    #[test]
    fn run_directory_names() {
        assert!(is_run_dir("agentcred-123-456-0123456789abcdef"));
        assert!(!is_run_dir("agentcred-123-456-0123456789abcdef-x"));
        assert!(!is_run_dir("agentcred-store"));
        assert!(!is_run_dir("agentcred-1-2-xyz"));
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(
            mountinfo_path(r"/home/a\040b\134c"),
            PathBuf::from(r"/home/a b\c")
        );
        assert_eq!(mountinfo_path(r"/x\0"), PathBuf::from(r"/x\0"));
    }

    #[test]
    fn resolve_follows_links_and_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let real = root.join("real");
        std::fs::create_dir_all(real.join("config")).unwrap();
        std::os::unix::fs::symlink(&real, root.join("link")).unwrap();
        // A relative link through the first one.
        std::os::unix::fs::symlink("link/config", root.join("dotconfig")).unwrap();
        let mut links = Vec::new();
        let got = resolve(&root.join("dotconfig/agentcred/../agentcred/x"), &mut links);
        assert_eq!(got, real.join("config/agentcred/x"));
        assert_eq!(links, [root.join("dotconfig"), root.join("link")]);
        let mut links = Vec::new();
        assert_eq!(
            resolve(&root.join("link/missing/../deeper"), &mut links),
            real.join("deeper")
        );
        // A loop ends: the path is left as it is.
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let mut links = Vec::new();
        assert_eq!(resolve(&root.join("loop"), &mut links), root.join("loop"));
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
        // Landlock before ABI 3 does not govern truncation: refused.
        let no_truncate = Support {
            landlock_abi: Some(2),
            ..support.clone()
        };
        let err = no_truncate.mechanism(&Spec::default(), false).unwrap_err();
        assert!(err.to_string().contains("truncat"), "{err}");
        assert_eq!(
            old.mechanism(&Spec::default(), false).unwrap(),
            "Landlock ABI 4 + seccomp + a private mount namespace"
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
        // Without user namespaces and no bus to hide, it works, list-only on the way.
        let strict = no_userns.mechanism(&Spec::default(), false).unwrap();
        assert!(
            strict.starts_with("Landlock ABI 7 + seccomp (no user namespaces: nothing new"),
            "{strict}"
        );
    }
}
