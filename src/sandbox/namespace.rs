//! A private mount namespace, made by an unprivileged user namespace, in which the
//! protected paths are covered and the session bus is gone.
//!
//! - **Protected directories** are covered by one empty, read-only tmpfs of mode 000:
//!   `open()` of anything beneath fails with EACCES, and nothing can be created there.
//! - **Protected files** outside them (an `AGENTCRED_IDENTITY_FILE`) are covered by an
//!   empty mode-000 file of that tmpfs: EACCES too.
//! - **Path-named Unix sockets** (the D-Bus session bus) are covered by `/dev/null`:
//!   connecting fails with ECONNREFUSED. Landlock controls opening files, not connecting to
//!   a socket, so without this the Secret Service (and the identity item in it) stays
//!   reachable.
//!
//! Covered paths are mount points, so they cannot be renamed or removed either (EBUSY).
//! Because the protected paths are out of sight here, Landlock can let the program create
//! entries in the directories on the way to them (a new dotfile in HOME), see
//! landlock.rs.
//!
//! The program cannot undo it: mounts and unmounts are denied to a process under Landlock,
//! it loses the namespace's capabilities at `execve` (its user is not root here, the user
//! and group map to themselves, so files keep their owners), and a namespace it makes
//! later receives these mounts locked (the kernel then refuses to unmount them or to bind
//! a directory above them without them).

use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use std::os::fd::OwnedFd;

use rustix::fs::{
    CWD, Mode, OFlags, ResolveFlags, StatVfsMountFlags, fstat, fstatfs, fstatvfs, openat2,
};
use rustix::mount::{MountFlags, MountPropagationFlags, mount, mount_bind, mount_change};
use rustix::process::{getgid, getuid};
use rustix::thread::UnshareFlags;

/// Whether this system lets an unprivileged user make a user namespace, as far as its
/// settings say (the trampoline finds out for certain, and fails closed).
pub fn available() -> bool {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    read("/proc/sys/user/max_user_namespaces").is_some_and(|n| n > 0)
        && read("/proc/sys/kernel/unprivileged_userns_clone").is_none_or(|v| v == 1)
        && read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_none_or(|v| v == 0)
}

/// What to cover.
#[derive(Debug, Default)]
pub struct Cover<'a> {
    /// Existing directories, none beneath another.
    pub dirs: Vec<&'a Path>,
    /// Existing files (anything but a directory), none beneath one of `dirs`.
    pub files: Vec<&'a Path>,
    /// Path-named sockets.
    pub sockets: &'a [PathBuf],
    /// Existing files and directories to make read-only (with whatever is mounted
    /// beneath them), none of them a symbolic link.
    pub read_only: Vec<&'a Path>,
}

/// A new user namespace, its maps not written yet: this process's user and group as
/// they were outside (inside they read as the overflow IDs until then).
pub struct Entered {
    uid: u32,
    gid: u32,
}

/// Enter a new user and mount namespace. Must run in a single-threaded process. When this
/// fails, nothing has changed.
pub fn unshare() -> io::Result<Entered> {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    // rustix deprecates its safe `unshare` because `CLONE_FILES` can break other threads'
    // file descriptors; neither flag here touches descriptors, and there are no threads.
    #[allow(deprecated)]
    rustix::thread::unshare(UnshareFlags::NEWUSER | UnshareFlags::NEWNS)?;
    Ok(Entered { uid, gid })
}

/// An error that names the path it happened at.
fn at<E: Into<io::Error>>(path: &Path) -> impl Fn(E) -> io::Error + '_ {
    move |e| {
        let e = e.into();
        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    }
}

/// In the namespace [`unshare`] entered, cover what `cover` names. The working directory
/// is entered again afterwards, so that it is seen through the new mounts.
pub fn cover(entered: Entered, cover: &Cover<'_>, cwd: &Path) -> io::Result<()> {
    let Entered { uid, gid } = entered;
    // A non-dumpable process (agentcred itself, in exec-replace mode) finds its /proc/self
    // files owned by root, so it cannot write its own maps. It becomes dumpable for these
    // three writes: only a process of this user outside any sandbox could attach in that
    // moment (Landlock keeps sandboxed ones out), and such a process can run `agentcred
    // get` anyway. The program it becomes at `execve` is dumpable in any case.
    use rustix::process::{DumpableBehavior, dumpable_behavior, set_dumpable_behavior};
    let undumpable = matches!(dumpable_behavior(), Ok(DumpableBehavior::NotDumpable));
    if undumpable {
        set_dumpable_behavior(DumpableBehavior::Dumpable)?;
    }
    let maps = (|| {
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
        std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))
    })();
    if undumpable {
        set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    }
    maps.map_err(at(Path::new("/proc/self/uid_map")))?;
    // Nothing done here may reach the real namespace.
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    let locked = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let mut expected = Expected::default();
    if let Some((&first, rest)) = cover.dirs.split_first() {
        expected.before = Some(inode(&open_exact(first)?)?);
        mount(
            "agentcred-sandbox",
            first,
            "tmpfs",
            locked,
            c"mode=0700,size=4k,nr_inodes=4",
        )
        .map_err(at(first))?;
        if !cover.files.is_empty() {
            let blank = first.join("protected");
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o000)
                .open(&blank)?;
            expected.blank = Some(inode(&open_exact(&blank)?)?);
            for &file in &cover.files {
                mount_bind(&blank, file).map_err(at(file))?;
            }
        }
        std::fs::set_permissions(first, std::fs::Permissions::from_mode(0o000))?;
        rustix::mount::mount_remount(first, locked | MountFlags::RDONLY, "").map_err(at(first))?;
        for &dir in rest {
            mount_bind(first, dir).map_err(at(dir))?;
        }
    } else {
        // No directory to hold a blank file: /dev/null reads as empty, writes vanish.
        for &file in &cover.files {
            mount_bind("/dev/null", file).map_err(at(file))?;
        }
    }
    for socket in cover.sockets {
        mount_bind("/dev/null", socket).map_err(at(socket))?;
    }
    // Read-only: bound onto itself (with the covers beneath it), then remounted
    // read-only, keeping the flags the kernel locks (nosuid, nodev, noexec, atime).
    for &path in &cover.read_only {
        rustix::mount::mount_bind_recursive(path, path).map_err(at(path))?;
        let kept = rustix::fs::statvfs(path).map_err(at(path))?.f_flag;
        let mut flags = MountFlags::BIND | MountFlags::RDONLY;
        for (has, flag) in [
            (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
            (StatVfsMountFlags::NODEV, MountFlags::NODEV),
            (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
            (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
            (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
            (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
        ] {
            if kept.contains(has) {
                flags |= flag;
            }
        }
        rustix::mount::mount_remount(path, flags, "").map_err(at(path))?;
    }
    verify(cover, &expected)?;
    std::env::set_current_dir(cwd).map_err(at(cwd))?;
    Ok(())
}

/// What the mounts should show, recorded along the way.
#[derive(Default)]
struct Expected {
    /// The first covered directory, before the tmpfs went on it.
    before: Option<(u64, u64)>,
    /// The blank file protected files are covered with.
    blank: Option<(u64, u64)>,
}

/// `path` opened without following any symbolic link on the way (`O_PATH`).
fn open_exact(path: &Path) -> io::Result<OwnedFd> {
    openat2(
        CWD,
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS,
    )
    .map_err(at(path))
}

/// A file's device and inode number (their types differ between architectures).
#[allow(clippy::unnecessary_cast)]
fn inode(fd: &OwnedFd) -> io::Result<(u64, u64)> {
    let st = fstat(fd)?;
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// After the mounts, each target, looked up again without following any symbolic link,
/// must show what was mounted there. A mount follows links on the way to its target, so a
/// process of this user outside (one an earlier sandboxed program left running) that
/// swapped a directory on the way for a link between agentcred's look and the mount
/// would have sent it elsewhere, leaving the real path open: then refuse.
fn verify(cover: &Cover<'_>, expected: &Expected) -> io::Result<()> {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let elsewhere = |path: &Path| {
        io::Error::other(format!(
            "{}: the cover did not land there (was a directory on the way replaced by a link?)",
            path.display()
        ))
    };
    let null = inode(&open_exact(Path::new("/dev/null"))?)?;
    if let Some((&first, _)) = cover.dirs.split_first() {
        let fd = open_exact(first)?;
        let tmpfs = inode(&fd)?;
        #[allow(clippy::unnecessary_cast)]
        let is_tmpfs = fstatfs(&fd)?.f_type as i64 == TMPFS_MAGIC;
        if Some(tmpfs) == expected.before || !is_tmpfs {
            return Err(elsewhere(first));
        }
        for &dir in &cover.dirs {
            if inode(&open_exact(dir)?)? != tmpfs {
                return Err(elsewhere(dir));
            }
        }
        for &file in &cover.files {
            if Some(inode(&open_exact(file)?)?) != expected.blank {
                return Err(elsewhere(file));
            }
        }
    } else {
        for &file in &cover.files {
            if inode(&open_exact(file)?)? != null {
                return Err(elsewhere(file));
            }
        }
    }
    for socket in cover.sockets {
        if inode(&open_exact(socket)?)? != null {
            return Err(elsewhere(socket));
        }
    }
    for &path in &cover.read_only {
        let flags = fstatvfs(open_exact(path)?)?.f_flag;
        if !flags.contains(StatVfsMountFlags::RDONLY) {
            return Err(elsewhere(path));
        }
    }
    Ok(())
}
