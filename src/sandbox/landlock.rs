//! Landlock: the program may use every file except the protected ones.
//!
//! A Landlock rule grants rights on a directory and everything beneath it, and what no
//! rule grants is denied. So "everything but P" is the set of *siblings* along the way to
//! P: for `/home/u/.config/agentcred`, every entry of `/` but `home`, every entry of
//! `/home` but `u`, of `/home/u` but `.config`, of `/home/u/.config` but `agentcred`, each
//! with full access (and so everything created beneath them later). The directories on
//! the way (`/`, `/home`, `/home/u`, `/home/u/.config`) may only be listed: a right given
//! to them would reach P too. Hence the limits, which README states:
//! - a name created *directly* in one of those directories after the program started
//!   (a new dotfile in HOME) can be created by nobody inside and is not reachable;
//! - their listings show names (a protected directory's file names), never contents.
//!
//! Symbolic links among the siblings get no rule of their own: the kernel checks the path
//! they lead to, so a link into the store leads to a denial. Entries are opened with
//! `O_NOFOLLOW` for the same reason.
//!
//! On ABI 6 and later the ruleset also scopes abstract Unix sockets (an abstract D-Bus
//! session bus is then out of reach) and signals (the program cannot signal agentcred or
//! any other process outside its sandbox). In every ABI a sandboxed process may ptrace
//! only processes in its own sandbox.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, LandlockStatus, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use rustix::fs::{CWD, Dir, FileType, Mode, OFlags, fstat, openat};

/// The Landlock ABI this kernel offers (as far as the `landlock` crate knows them), or
/// `None` without Landlock.
///
/// The kernel says so only to a process that restricts itself, so a short-lived thread
/// does it (no-new-privs and the ruleset are per thread; the rest of agentcred is
/// untouched).
pub fn abi() -> Option<i32> {
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
    /// A directory on the way to a protected path: listing only.
    List,
}

/// Restrict this process: no access to `protected` (absolute, canonical paths), full
/// access to everything else. Fails unless the kernel enforces all of it.
/// `abi_number` is what [`abi`] found.
pub fn restrict(protected: &[PathBuf], abi_number: i32) -> io::Result<()> {
    if abi_number < 1 {
        return Err(io::Error::other("this kernel has no Landlock"));
    }
    let abi = ABI::from(abi_number);
    let everything = AccessFs::from_all(abi);
    let file = AccessFs::from_file(abi);
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
    walk(protected, |fd, grant| {
        let access: BitFlags<AccessFs> = match grant {
            Grant::Everything => everything,
            Grant::File => file,
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
/// directory on the way (see the module doc). One file descriptor is open at a time per
/// rule, so a large home directory does not run into the descriptor limit.
fn walk(
    protected: &[PathBuf],
    mut rule: impl FnMut(OwnedFd, Grant) -> io::Result<()>,
) -> io::Result<()> {
    let protected: BTreeSet<&Path> = protected.iter().map(PathBuf::as_path).collect();
    let ancestors: BTreeSet<&Path> = protected
        .iter()
        .flat_map(|p| p.ancestors().skip(1))
        .collect();
    for &dir in &ancestors {
        // Inside a protected directory nothing is granted.
        if protected.iter().any(|p| dir.starts_with(p)) {
            continue;
        }
        let Ok(dir_fd) = openat(
            CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            // Missing (nothing to grant) or unreadable (its entries stay denied).
            continue;
        };
        if let Ok(entries) = Dir::read_from(&dir_fd) {
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
                let Ok(fd) = openat(
                    &dir_fd,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) else {
                    continue;
                };
                let grant = match FileType::from_raw_mode(fstat(&fd)?.st_mode) {
                    FileType::Symlink => continue,
                    FileType::Directory => Grant::Everything,
                    _ => Grant::File,
                };
                rule(fd, grant)?;
            }
        }
        rule(dir_fd, Grant::List)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(protected: &[PathBuf]) -> Vec<(PathBuf, Grant)> {
        let mut out = Vec::new();
        walk(protected, |fd, grant| {
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
}
