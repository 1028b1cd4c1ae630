//! File credentials (`--kind file`, README "File credentials").
//!
//! Some programs want a key *file*, not a variable: a Google service-account JSON through
//! `GOOGLE_APPLICATION_CREDENTIALS`, a PEM key, a kubeconfig. While the program runs, each
//! such value is written to a 0600 file in a fresh 0700 directory under `$XDG_RUNTIME_DIR`
//! (memory-backed and private to the user on systemd machines) or else the temp dir, and the
//! variable holds the file's path. The directory is removed when the program ends or when
//! agentcred is signalled (it forwards the signal, waits, then cleans up). A directory left
//! by an agentcred that was SIGKILLed is removed by the next `exec`: its name records its
//! owner, `agentcred-<pid>-<start>-<random>`, and it is stale once that process is gone.
//! `<start>` is the owner's start time (clock ticks since boot, from `/proc/<pid>/stat`),
//! so a pid reused by an unrelated process does not keep a stale directory alive.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::process::{Pid, geteuid, getpid, test_kill_process};

use crate::error::{Error, Result};
use crate::model::credential::CredentialName;

/// Every directory this module makes starts with this.
pub const PREFIX: &str = "agentcred-";

/// The files written for one run, removed on [`FileSet::remove`] or drop.
#[derive(Default)]
pub struct FileSet {
    dir: Option<PathBuf>,
    files: Vec<(CredentialName, PathBuf)>,
}

impl FileSet {
    /// Write each value to `<base>/agentcred-.../NAME`. Nothing is written (and the set is
    /// empty) when there are no items. On failure, whatever was written is removed.
    pub fn write<'a>(
        base: &Path,
        items: impl IntoIterator<Item = (&'a CredentialName, &'a [u8])>,
    ) -> Result<FileSet> {
        let mut items = items.into_iter().peekable();
        if items.peek().is_none() {
            return Ok(FileSet::default());
        }
        let dir = base.join(dir_name()?);
        let cannot = |e| {
            Error::io(
                format!(
                    "cannot create a directory for file credentials in {}",
                    base.display()
                ),
                e,
            )
        };
        DirBuilder::new().mode(0o700).create(&dir).map_err(cannot)?;
        let mut set = FileSet {
            dir: Some(dir.clone()),
            files: Vec::new(),
        };
        // The umask can only take bits away; say exactly what we mean.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(cannot)?;
        for (name, value) in items {
            let path = dir.join(name.as_str());
            write_private(&path, value)
                .map_err(|e| Error::io(format!("cannot write the file for {name}"), e))?;
            set.files.push((name.clone(), path));
        }
        Ok(set)
    }

    /// The file written for a credential.
    pub fn path(&self, name: &CredentialName) -> Option<&Path> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }

    /// The directory holding the files, if any were written.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Remove the directory and its files. Idempotent.
    pub fn remove(&mut self) -> io::Result<()> {
        match self.dir.take() {
            Some(dir) => match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
            None => Ok(()),
        }
    }
}

impl Drop for FileSet {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

fn write_private(path: &Path, value: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(value)?;
    file.flush()
}

/// Where run directories go: `$XDG_RUNTIME_DIR` when it is set to a directory, else the
/// temp dir.
pub fn base_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// `agentcred-<pid>-<start>-<random>` for this process.
fn dir_name() -> Result<String> {
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random)
        .map_err(|e| Error::io("cannot get random bytes", io::Error::other(e)))?;
    let pid = getpid();
    let start = start_time(pid).unwrap_or(0);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{PREFIX}{}-{start}-{hex}", pid.as_raw_nonzero()))
}

/// A process's start time in clock ticks since boot (Linux), to tell a reused pid apart.
fn start_time(pid: Pid) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so count fields
    // from the last ')'. starttime is field 22; the first after ')' is field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the process that made a run directory may still be running.
fn owner_alive(pid: Pid, recorded_start: u64) -> bool {
    if pid == getpid() {
        return true;
    }
    match test_kill_process(pid) {
        Err(rustix::io::Errno::SRCH) => false,
        // Alive (EPERM: alive but someone else's, so the pid was reused).
        _ => match (recorded_start, start_time(pid)) {
            (0, _) | (_, None) => true,
            (recorded, Some(now)) => recorded == now,
        },
    }
}

/// Parse `agentcred-<pid>-<start>-<random>`.
fn parse_dir_name(name: &str) -> Option<(Pid, u64)> {
    let mut parts = name.strip_prefix(PREFIX)?.splitn(3, '-');
    let pid = Pid::from_raw(parts.next()?.parse().ok()?)?;
    let start = parts.next()?.parse().ok()?;
    let random = parts.next()?;
    (random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())).then_some((pid, start))
}

/// Remove run directories in `base` whose owner is gone (an agentcred that was SIGKILLed,
/// or a machine that crashed while `/tmp` survives). Only directories owned by this user
/// are touched; symlinks never are. Returns how many were removed.
pub fn remove_stale(base: &Path) -> usize {
    stale_dirs(base)
        .iter()
        .filter(|path| fs::remove_dir_all(path).is_ok())
        .count()
}

/// This user's file-credential directories in `base` whose agentcred is gone (killed
/// before it could clean up). Never a symlink, never another user's.
pub fn stale_dirs(base: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    let uid = geteuid().as_raw();
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, start)) = name.to_str().and_then(parse_dir_name) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() && meta.uid() == uid && !owner_alive(pid, start) {
            stale.push(path);
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_record_the_owner() {
        let name = dir_name().unwrap();
        let (pid, start) = parse_dir_name(&name).unwrap();
        assert_eq!(pid, getpid());
        if cfg!(target_os = "linux") {
            assert_eq!(Some(start), start_time(getpid()));
            assert!(start > 0);
        }
        assert!(owner_alive(pid, start));
        for bad in [
            "agentcred-",
            "agentcred-x-1-0011223344556677",
            "agentcred-1-1-xyz",
            "other-1-1-0011223344556677",
        ] {
            assert!(parse_dir_name(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn files_are_private_and_removed() {
        let base = tempfile::tempdir().unwrap();
        let name = CredentialName::parse("gcp-sa.json").unwrap();
        let mut set = FileSet::write(base.path(), [(&name, &b"{\"k\": 1}\0binary"[..])]).unwrap();
        let path = set.path(&name).unwrap().to_path_buf();
        assert_eq!(fs::read(&path).unwrap(), b"{\"k\": 1}\0binary");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        let dir = set.dir().unwrap().to_path_buf();
        assert_eq!(mode(&dir), 0o700);
        // Ours and alive: not stale.
        assert_eq!(remove_stale(base.path()), 0);
        set.remove().unwrap();
        assert!(!dir.exists());
        set.remove().unwrap();
        let empty = FileSet::write(base.path(), []).unwrap();
        assert!(empty.dir().is_none());
    }

    #[test]
    fn a_dead_owners_directory_is_stale() {
        let base = tempfile::tempdir().unwrap();
        // A pid that cannot be running: above the kernel's pid_max (at most 2^22).
        let dead = base.path().join("agentcred-99999999-5-0011223344556677");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("x"), "v").unwrap();
        // Alive pid, wrong start time: the pid was reused.
        let reused = base
            .path()
            .join(format!("agentcred-1-12345678901-{}", "ab".repeat(8)));
        fs::create_dir(&reused).unwrap();
        let unrelated = base.path().join("agentcred-notes");
        fs::create_dir(&unrelated).unwrap();
        let removed = remove_stale(base.path());
        assert!(!dead.exists());
        assert!(unrelated.exists());
        if cfg!(target_os = "linux") && start_time(Pid::from_raw(1).unwrap()).is_some() {
            assert!(!reused.exists());
            assert_eq!(removed, 2);
        }
    }
}
