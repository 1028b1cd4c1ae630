//! Filesystem primitives the store is built on: private directories, reads that never
//! follow a symlink, and atomic replacement (temp file in the same directory, fsync,
//! rename, fsync of the directory), so a crash leaves the old file or the new, never half.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Create `path` (and missing parents) as 0700 whatever the umask.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    fs::set_permissions(path, Permissions::from_mode(0o700))
}

/// Open a file for reading, refusing a symlink in the last component.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

pub fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_nofollow(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Like [`read_nofollow`] but `Ok(None)` when the file does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match read_nofollow(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write a complete new temp file in `dir`, 0600, synced to disk; the caller renames it.
pub fn write_temp(dir: &Path, bytes: &[u8]) -> io::Result<tempfile::TempPath> {
    write_temp_with(dir, |out| out.write_all(bytes))
}

/// [`write_temp`] of what `write` writes (through a buffer; it may seek back). A failure
/// removes the temp file.
pub fn write_temp_with(
    dir: &Path,
    write: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
) -> io::Result<tempfile::TempPath> {
    let temp = filled_temp(dir, write)?;
    temp.as_file().sync_all()?;
    Ok(temp.into_temp_path())
}

/// A new temp file in `dir`, 0600 whatever the umask, holding what `write` wrote.
fn filled_temp(
    dir: &Path,
    write: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
) -> io::Result<tempfile::NamedTempFile> {
    let temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.as_file()
        .set_permissions(Permissions::from_mode(0o600))?;
    let mut out = io::BufWriter::with_capacity(64 * 1024, temp.as_file());
    write(&mut out)?;
    out.flush()?;
    drop(out);
    Ok(temp)
}

/// Replace `dir/name` with `bytes` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(dir, name, |out| out.write_all(bytes))
}

/// Replace `dir/name` atomically and durably with what `write` writes, without holding
/// it all in memory (the manifest at every commit).
pub fn write_atomic_with(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    let temp = write_temp_with(dir, write)?;
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Replace `dir/name` with `bytes` atomically (temp file and rename), without waiting for
/// the disk: for records whose loss in a power cut is harmless.
pub fn write_replace(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_replace_with(dir, name, |out| out.write_all(bytes))
}

/// [`write_replace`] of what `write` writes (through a buffer). A failure removes the
/// temp file.
pub fn write_replace_with(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    filled_temp(dir, write)?
        .persist(dir.join(name))
        .map_err(|e| e.error)?;
    Ok(())
}

/// Rename within one directory and make it durable.
pub fn rename_durable(dir: &Path, from: &str, to: &str) -> io::Result<()> {
    fs::rename(dir.join(from), dir.join(to))?;
    sync_dir(dir)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Remove a file; `Ok(false)` when it was not there.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Open a file for reading and writing in place, creating it 0600 if missing; refuses a
/// symlink in the last component.
pub fn open_private_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Create a new file that must not exist yet, 0600, and write it durably.
pub fn create_new_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The file name of CMD as given (`./bin/mybot` -> `mybot`), when it is text.
pub fn program_basename(program: &std::ffi::OsStr) -> Option<&str> {
    std::path::Path::new(program)
        .file_name()
        .and_then(std::ffi::OsStr::to_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn atomic_write_replaces_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "f", b"one").unwrap();
        write_atomic(dir.path(), "f", b"two").unwrap();
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"two");
        let mode = fs::metadata(dir.path().join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn nofollow_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("real"), b"x").unwrap();
        symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert!(read_nofollow(&dir.path().join("link")).is_err());
        assert_eq!(read_nofollow(&dir.path().join("real")).unwrap(), b"x");
    }
}
