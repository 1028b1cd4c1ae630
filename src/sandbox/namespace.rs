//! A private mount namespace that covers the session bus socket with `/dev/null`.
//!
//! Landlock controls opening files, not connecting to a path-named Unix socket, so the
//! D-Bus session bus (and through it the Secret Service item holding the identity) stays
//! reachable under Landlock alone. In a mount namespace of its own, the program sees
//! `/dev/null` where the socket was: connecting fails with ECONNREFUSED. Making the
//! namespace needs no privilege inside an unprivileged user namespace, in which this
//! process's user and group are mapped to themselves (so files keep their owners).
//!
//! The program cannot undo it: mounts and unmounts are denied to a process under Landlock,
//! it loses the namespace's capabilities at `execve` (its user is not root there), and a
//! namespace it makes later receives these mounts locked.

use std::io;
use std::path::PathBuf;

use rustix::mount::{MountPropagationFlags, mount_bind, mount_change};
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

/// Enter a new user and mount namespace and cover each socket with `/dev/null`. Must run
/// in a single-threaded process (the trampoline).
pub fn hide(sockets: &[PathBuf]) -> io::Result<()> {
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    // rustix deprecates its safe `unshare` because `CLONE_FILES` can break other threads'
    // file descriptors; neither flag here touches descriptors, and there are no threads.
    #[allow(deprecated)]
    rustix::thread::unshare(UnshareFlags::NEWUSER | UnshareFlags::NEWNS)?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n"))?;
    // Nothing done here may reach the real namespace.
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    for socket in sockets {
        mount_bind("/dev/null", socket)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", socket.display())))?;
    }
    Ok(())
}
