//! Landlock: the program may use every file except the protected ones.
//!
//! A Landlock rule grants rights on a directory and everything beneath it, and what no
//! rule grants is denied; there are no deny rules. So "everything but P" is the set of
//! *siblings* along the way to P: for `/home/u/.config/agentcred`, every entry of `/` but
//! `home`, every entry of `/home` but `u`, of `/home/u` but `.config`, of
//! `/home/u/.config` but `agentcred`, each with full access (and so everything created
//! beneath them later).
//!
//! The directories *on the way* (`/`, `/home`, `/home/u`, `/home/u/.config`) are the hard
//! part: whatever right one of them gets, P gets too. Two cases:
//!
//! - **P is covered** by the mount namespace (namespace.rs): under P's name the
//!   program finds an empty read-only directory (or file) of mode 000, and P itself cannot
//!   be reached by any path. Then the directories on the way get every right but two
//!   (`Grant::Open`), so that a new dotfile in HOME or a first `~/.config/newtool` work:
//!   - no `REMOVE_DIR`: a directory on the way cannot be renamed or removed, nor can any
//!     other directory directly in one of them. Otherwise the program could
//!     `mv ~/.config ~/x` (P moves along, still covered), `mkdir -p ~/.config/agentcred`
//!     and plant a `config.toml` that agentcred would read after the program ended;
//!   - no `REFER`: nothing is linked or moved between such a directory and another one
//!     (the program gets EXDEV, on which `mv` copies instead). With P out of sight there is
//!     nothing protected to move, this is the margin.
//!
//!   Things the program makes directly in those directories get only these rights
//!   (their subdirectories cannot be removed while it runs).
//! - **P is not covered** (no user namespaces, or P or a symbolic link on the way to it,
//!   see `strict`, must not be replaced): the directories on the way may only be listed
//!   (`Grant::List`). Nothing new can be created directly in them, and the names in them
//!   and in P can be listed (never contents).
//!
//! Symbolic links among the siblings get no rule of their own: the kernel checks the path
//! they lead to, so a link into the store leads to a denial. Entries are opened with
//! `O_NOFOLLOW` for the same reason.
//!
//! On ABI 6 and later the ruleset also scopes abstract Unix sockets (an abstract D-Bus
//! session bus is then out of reach) and signals (the program cannot signal agentcred or
//! any other process outside its sandbox). In every ABI a sandboxed process may ptrace
//! only processes in its own sandbox, which also keeps it out of the `/proc/PID/root`,
//! `cwd` and `fd` links of processes outside, where the protected paths are not covered.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus,
    PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use rustix::fs::{CWD, Dir, FileType, Mode, OFlags, fstat, openat};

/// The Landlock ABI this kernel offers, as far as its access rights and scopes tell
/// (ABI 7 and 8 add none, so they show as 6), or `None` without Landlock. No thread and
/// no restriction: one `landlock_create_ruleset` query per try.
pub fn abi() -> Option<i32> {
    [9, 6, 5, 4, 3, 2, 1].into_iter().find(|&n| {
        let abi = ABI::from(n);
        let ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi));
        let ruleset = match n {
            4.. => ruleset.and_then(|r| r.handle_access(AccessNet::from_all(abi))),
            _ => ruleset,
        };
        match n {
            6.. => ruleset.and_then(|r| r.scope(Scope::from_all(abi))).is_ok(),
            _ => ruleset.is_ok(),
        }
    })
}

/// The exact Landlock ABI, for `doctor`. The kernel says so only to a process that
/// restricts itself, so a short-lived thread does it (no-new-privs and the ruleset are per
/// thread; the rest of agentcred is untouched).
pub fn exact_abi() -> Option<i32> {
    std::thread::spawn(|| {
        let status = Ruleset::default()
            .handle_access(AccessFs::Execute)
            .ok()?
            .create()
            .ok()?
            .restrict_self()
            .ok()?;
        match status.landlock {
            LandlockStatus::Available { effective_abi, .. } => Some(effective_abi as i32),
            _ => None,
        }
    })
    .join()
    .ok()
    .flatten()
}

/// What a rule grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    /// A sibling directory: everything beneath it.
    Everything,
    /// A sibling file (or device, fifo, socket).
    File,
    /// A directory on the way to a protected path that is covered: all but `REMOVE_DIR`
    /// and `REFER` (see the module doc).
    Open,
    /// A directory on the way to a protected path that is not covered: listing only.
    List,
}

/// Restrict this process: no access to `protected` (absolute, canonical paths), full
/// access to everything else. The directories on the way to them get [`Grant::Open`]
/// when `covered` (the mount namespace hides the protected paths) and no path of `strict`
/// (protected paths left uncovered, symbolic links on the way) is beneath them, else
/// [`Grant::List`]. Fails unless the kernel enforces all of it. `abi_number` is what
/// [`abi`] found.
pub fn restrict(
    protected: &[PathBuf],
    covered: bool,
    strict: &[PathBuf],
    abi_number: i32,
) -> io::Result<()> {
    if abi_number < 1 {
        return Err(io::Error::other("this kernel has no Landlock"));
    }
    let abi = ABI::from(abi_number);
    let everything = AccessFs::from_all(abi);
    let file = AccessFs::from_file(abi);
    let open = everything & !(AccessFs::RemoveDir | AccessFs::Refer);
    let failed = |e: landlock::RulesetError| io::Error::other(e.to_string());
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(everything)
        .map_err(failed)?;
    if abi_number >= super::SCOPE_ABI {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket)
            .and_then(|r| r.scope(Scope::Signal))
            .map_err(failed)?;
    }
    let mut created = ruleset.create().map_err(failed)?;
    let open_way = |dir: &Path| covered && !strict.iter().any(|s| s.starts_with(dir));
    walk(protected, open_way, |fd, grant| {
        let access: BitFlags<AccessFs> = match grant {
            Grant::Everything => everything,
            Grant::File => file,
            Grant::Open => open,
            Grant::List => AccessFs::ReadDir.into(),
        };
        (&mut created)
            .add_rule(PathBeneath::new(fd, access))
            .map(|_| ())
            .map_err(failed)
    })?;
    let status = created.restrict_self().map_err(failed)?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(io::Error::other(
            "the kernel did not enforce every Landlock restriction",
        ));
    }
    Ok(())
}

/// Call `rule` for every sibling along the way to each protected path, and for every
/// directory on the way, [`Grant::Open`] where `open_way` says so (see the module doc).
///
/// Landlock combines the rules of one inode, whatever path they were added by, so the
/// grants are decided per inode (device and inode number), not per path: where the same
/// directory is reached by two paths (HOME and a second mount of it), it is on the way
/// in both walks, gets [`Grant::List`] if either walk says so, and never
/// [`Grant::Everything`] as a sibling in another walk; a protected inode never gets a
/// rule at all. One file descriptor per directory on the way, and one at a time for
/// the siblings, so a large home directory does not run into the descriptor limit.
fn walk(
    protected: &[PathBuf],
    open_way: impl Fn(&Path) -> bool,
    mut rule: impl FnMut(OwnedFd, Grant) -> io::Result<()>,
) -> io::Result<()> {
    use std::collections::BTreeMap;
    let protected: BTreeSet<&Path> = protected.iter().map(PathBuf::as_path).collect();
    let ancestors: BTreeSet<&Path> = protected
        .iter()
        .flat_map(|p| p.ancestors().skip(1))
        .filter(|dir| !protected.iter().any(|p| dir.starts_with(p)))
        .collect();
    let key = |fd: &OwnedFd| fstat(fd).map(|st| inode(&st));
    // The protected inodes that exist: never granted anything, by any path.
    let mut untouchable: BTreeSet<(u64, u64)> = BTreeSet::new();
    for path in &protected {
        if let Ok(fd) = openat(
            CWD,
            *path,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            untouchable.insert(key(&fd)?);
        }
    }
    // The directories on the way, each opened once, and per inode: the narrower grant
    // wins.
    let mut opened: Vec<(&Path, Option<OwnedFd>)> = Vec::new();
    let mut ways: BTreeMap<(u64, u64), (usize, Grant)> = BTreeMap::new();
    for &dir in &ancestors {
        let Ok(dir_fd) = openat(
            CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            // Missing (nothing to grant) or unreadable (its entries stay denied).
            continue;
        };
        let grant = if open_way(dir) {
            Grant::Open
        } else {
            Grant::List
        };
        let id = key(&dir_fd)?;
        opened.push((dir, Some(dir_fd)));
        let index = opened.len() - 1;
        ways.entry(id)
            .and_modify(|(_, g)| {
                if grant == Grant::List {
                    *g = Grant::List;
                }
            })
            .or_insert((index, grant));
    }
    for (dir, dir_fd) in &opened {
        let Some(dir_fd) = dir_fd else {
            continue;
        };
        let Ok(entries) = Dir::read_from(dir_fd) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let path = dir.join(name);
            if protected.contains(path.as_path()) || ancestors.contains(path.as_path()) {
                continue;
            }
            // `O_NOFOLLOW` keeps a link (also one that appeared since the listing) a link.
            if entry.file_type() == FileType::Symlink {
                continue;
            }
            let Ok(fd) = openat(
                dir_fd,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let stat = fstat(&fd)?;
            let id = inode(&stat);
            // On the way (or protected) by another path: that decides.
            if ways.contains_key(&id) || untouchable.contains(&id) {
                continue;
            }
            let grant = match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => continue,
                FileType::Directory => Grant::Everything,
                _ => Grant::File,
            };
            rule(fd, grant)?;
        }
    }
    for (_, (index, grant)) in ways {
        if let Some(fd) = opened.get_mut(index).and_then(|(_, fd)| fd.take()) {
            rule(fd, grant)?;
        }
    }
    Ok(())
}

/// A file's device and inode number (their types differ between architectures).
#[allow(clippy::unnecessary_cast)]
fn inode(stat: &rustix::fs::Stat) -> (u64, u64) {
    (stat.st_dev as u64, stat.st_ino as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(protected: &[PathBuf]) -> Vec<(PathBuf, Grant)> {
        grants_open(protected, |_| false)
    }

    fn grants_open(protected: &[PathBuf], open: impl Fn(&Path) -> bool) -> Vec<(PathBuf, Grant)> {
        let mut out = Vec::new();
        walk(protected, open, |fd, grant| {
            let path = std::fs::read_link(format!("/proc/self/fd/{}", {
                use std::os::fd::AsRawFd;
                fd.as_raw_fd()
            }))?;
            out.push((path, grant));
            Ok(())
        })
        .unwrap();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn siblings_along_the_way_everything_else_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        for dir in [
            "home/.config/agentcred",
            "home/.config/other",
            "home/project",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::write(root.join("home/.bashrc"), "").unwrap();
        std::fs::write(root.join("home/.config/agentcred/identity.txt"), "").unwrap();
        std::os::unix::fs::symlink(
            root.join("home/.config/agentcred"),
            root.join("home/shortcut"),
        )
        .unwrap();
        let protected = [root.join("home/.config/agentcred")];
        let got = grants(&protected);
        let at = |p: &str| {
            got.iter()
                .find(|(path, _)| path == &root.join(p))
                .map(|g| g.1)
        };
        assert_eq!(at("home/project"), Some(Grant::Everything));
        assert_eq!(at("home/.config/other"), Some(Grant::Everything));
        assert_eq!(at("home/.bashrc"), Some(Grant::File));
        assert_eq!(at("home"), Some(Grant::List));
        assert_eq!(at("home/.config"), Some(Grant::List));
        assert_eq!(at("home/.config/agentcred"), None);
        assert_eq!(at("home/.config/agentcred/identity.txt"), None);
        assert_eq!(at("home/shortcut"), None, "a symlink gets no rule");
        assert_eq!(
            got.iter().find(|(p, _)| p == Path::new("/")).map(|g| g.1),
            Some(Grant::List)
        );
    }

    #[test]
    fn nothing_inside_a_protected_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir_all(root.join("store/secrets")).unwrap();
        std::fs::write(root.join("store/secrets/a.age"), "").unwrap();
        let got = grants(&[root.join("store"), root.join("store/secrets/a.age")]);
        assert!(
            got.iter().all(|(p, _)| !p.starts_with(root.join("store"))),
            "{got:?}"
        );
    }

    #[test]
    fn open_ways_where_covered() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        for dir in [
            "home/.config/agentcred",
            "home/.local/share/agentcred",
            "keys",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let protected = [
            root.join("home/.config/agentcred"),
            root.join("home/.local/share/agentcred"),
            root.join("keys/id.txt"),
        ];
        // keys/id.txt is missing: uncovered, so `keys` and everything above stay list-only.
        let strict = [root.join("keys/id.txt")];
        let got = grants_open(&protected, |dir| !strict.iter().any(|s| s.starts_with(dir)));
        let at = |p: &str| {
            got.iter()
                .find(|(path, _)| path == &root.join(p))
                .map(|g| g.1)
        };
        assert_eq!(at("home"), Some(Grant::Open));
        assert_eq!(at("home/.config"), Some(Grant::Open));
        assert_eq!(at("home/.local/share"), Some(Grant::Open));
        assert_eq!(at("keys"), Some(Grant::List));
        assert_eq!(at(""), Some(Grant::List));
        assert_eq!(at("home/.config/agentcred"), None);
    }

    #[test]
    fn the_probe_finds_landlock_here() {
        // The CI kernel has Landlock; both probes agree up to ABI 6 (7 and 8 show as 6).
        let (quick, exact) = (abi(), exact_abi());
        assert_eq!(quick.is_some(), exact.is_some());
        if let (Some(quick), Some(exact)) = (quick, exact) {
            let expected = match exact {
                9.. => 9,
                6.. => 6,
                n => n,
            };
            assert_eq!(quick, expected, "quick {quick}, exact {exact}");
        }
    }
}
