//! The `age` backend: `secrets/NAME.age`, an armored age file encrypted to every recipient,
//! whose plaintext is the envelope of [`crate::crypto::integrity::seal_value`].
//!
//! A write first lands as `NAME.age.pending`; the manifest rename is the commit point, and
//! the pending file is renamed into place after it. A reader that finds `NAME.age` not
//! matching the manifest's hash (a writer died between the two renames) takes the pending
//! file when its hash is the one the sealed manifest names.

use std::collections::BTreeSet;
use std::path::Path;

use secrecy::SecretSlice;

use crate::backend::{Backend, Ctx};
use crate::crypto::identity::Identity;
use crate::crypto::integrity::{self, DecryptFailure, sha256_hex};
use crate::error::{Error, Result};
use crate::manifest::{Entry, Manifest};
use crate::model::credential::BackendKind;
use crate::model::credential::CredentialName;
use crate::util;

pub fn file_name(name: &CredentialName) -> String {
    format!("{name}.age")
}

pub fn pending_name(name: &CredentialName) -> String {
    format!("{name}.age.pending")
}

fn open_ciphertext(
    identity: &Identity,
    store_id: &str,
    name: &CredentialName,
    ciphertext: &[u8],
) -> Result<SecretSlice<u8>> {
    let file = format!("secrets/{}", file_name(name));
    let plain = integrity::decrypt(identity, ciphertext).map_err(|failure| match failure {
        DecryptFailure::NotForUs => Error::NotARecipient {
            what: format!("credential {name}"),
            identity: identity.source().to_string(),
        },
        DecryptFailure::Damaged => Error::integrity(&file, "it does not decrypt"),
    })?;
    integrity::open_value(&plain, store_id, name.as_str(), &file)
}

fn missing(name: &CredentialName) -> Error {
    Error::integrity(format!("secrets/{}", file_name(name)), "it is missing")
}

/// The bytes of the file the manifest names for `name`: `NAME.age`, or the pending file a
/// writer killed after its commit left, when that is the one whose hash is recorded.
pub fn committed_ciphertext(
    secrets_dir: &Path,
    name: &CredentialName,
    entry: &Entry,
) -> Result<Vec<u8>> {
    find_ciphertext(secrets_dir, name, entry)?.ok_or_else(|| missing(name))
}

/// Like [`committed_ciphertext`]; `Ok(None)` when there is no such file.
fn find_ciphertext(
    secrets_dir: &Path,
    name: &CredentialName,
    entry: &Entry,
) -> Result<Option<Vec<u8>>> {
    let file = format!("secrets/{}", file_name(name));
    let expected = entry
        .sha256
        .as_deref()
        .ok_or_else(|| Error::integrity(&file, "the manifest records no hash for it"))?;
    let read = |file_name: String| {
        let path = secrets_dir.join(file_name);
        util::fs::read_optional(&path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
    };
    let current = read(file_name(name))?;
    match current {
        Some(bytes) if sha256_hex(&bytes) == expected => Ok(Some(bytes)),
        current => match read(pending_name(name))? {
            Some(bytes) if sha256_hex(&bytes) == expected => Ok(Some(bytes)),
            _ if current.is_none() => Ok(None),
            _ => Err(Error::integrity(
                &file,
                "it does not match the manifest (replaced, swapped or damaged)",
            )),
        },
    }
}

/// What a secret file looked like when its bytes were last checked against the manifest:
/// its inode, size and change times. The value cache keeps it beside each value, so a
/// file that has not changed since is not read and hashed again (one `lstat` instead of
/// an open, a read and a SHA-256); any write, rename or `git checkout` over the file
/// changes its inode or ctime, which user space cannot set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStamp {
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        meta.is_file().then(|| FileStamp {
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// The stamp of `NAME.age` in the open `secrets/` directory now, without following a
    /// symlink (one `fstatat` relative to the directory, not a walk of the whole path);
    /// `None` when it is missing or not a regular file.
    pub fn current(secrets_dir: &std::fs::File, name: &CredentialName) -> Option<FileStamp> {
        use rustix::fs::{AtFlags, FileType, statat};
        let stat = statat(secrets_dir, file_name(name), AtFlags::SYMLINK_NOFOLLOW).ok()?;
        (FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile).then(|| FileStamp {
            ino: stat.st_ino,
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mtime: (
                stat.st_mtime,
                i64::try_from(stat.st_mtime_nsec).unwrap_or(-1),
            ),
            ctime: (
                stat.st_ctime,
                i64::try_from(stat.st_ctime_nsec).unwrap_or(-1),
            ),
        })
    }
}

/// Like [`committed_ciphertext`], with the stamp of `NAME.age` as it was read (from the
/// open file, so it describes the bytes that were hashed); no stamp when the bytes came
/// from a pending file.
pub fn committed_ciphertext_stamped(
    secrets_dir: &Path,
    name: &CredentialName,
    entry: &Entry,
) -> Result<(Vec<u8>, Option<FileStamp>)> {
    use std::io::Read;
    let path = secrets_dir.join(file_name(name));
    let opened = util::fs::open_nofollow(&path).and_then(|mut file| {
        let stamp = FileStamp::of(&file.metadata()?);
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok((bytes, stamp))
    });
    match (opened, entry.sha256.as_deref()) {
        (Ok((bytes, stamp)), Some(expected)) if sha256_hex(&bytes) == expected => {
            Ok((bytes, stamp))
        }
        // Anything else (missing, unreadable, another hash, a pending file): the general
        // path, which words the error or finds the pending file.
        _ => committed_ciphertext(secrets_dir, name, entry).map(|bytes| (bytes, None)),
    }
}

/// Decrypt the ciphertext of `secrets/NAME.age` and check its envelope (store and name).
pub fn open_committed(
    identity: &Identity,
    store_id: &str,
    name: &CredentialName,
    ciphertext: &[u8],
) -> Result<SecretSlice<u8>> {
    open_ciphertext(identity, store_id, name, ciphertext)
}

/// The age backend's staged work: the names it wrote a `NAME.age.pending` for.
#[derive(Default)]
pub struct AgeBackend {
    staged: Vec<CredentialName>,
}

impl Backend for AgeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Age
    }

    fn read(
        &self,
        ctx: &Ctx,
        name: &CredentialName,
        entry: &Entry,
    ) -> Result<Option<SecretSlice<u8>>> {
        match find_ciphertext(&ctx.secrets_dir, name, entry)? {
            Some(ciphertext) => {
                open_ciphertext(ctx.identity, &ctx.store_id, name, &ciphertext).map(Some)
            }
            None => Ok(None),
        }
    }

    fn missing(&self, _ctx: &Ctx, name: &CredentialName) -> Error {
        missing(name)
    }

    /// Finish a commit that a killed writer left between its two renames (the pending file
    /// is the one the manifest names), and drop pending and temporary files of commits
    /// that never happened.
    fn recover(&self, ctx: &Ctx, manifest: &Manifest) -> Result<()> {
        let dir = &ctx.secrets_dir;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ctx.io_err("list secrets", e)),
        };
        let err = |e| ctx.io_err("clean up secrets", e);
        for dirent in entries {
            let dirent = dirent.map_err(err)?;
            let file_name = dirent.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            if file_name.starts_with(".tmp-") {
                util::fs::remove_if_exists(&dirent.path()).map_err(err)?;
                continue;
            }
            let Some(stem) = file_name.strip_suffix(".age.pending") else {
                continue;
            };
            let expected = CredentialName::parse(stem)
                .ok()
                .and_then(|name| manifest.entry(&name).and_then(|e| e.sha256.clone()));
            let bytes = util::fs::read_nofollow(&dirent.path()).map_err(err)?;
            if expected.is_some_and(|sha| sha == sha256_hex(&bytes)) {
                util::fs::rename_durable(dir, file_name, &format!("{stem}.age")).map_err(err)?;
            } else {
                util::fs::remove_if_exists(&dirent.path()).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Encrypt a value for `name` and write it as `NAME.age.pending`; returns the file's
    /// SHA-256 for the entry.
    fn stage(&mut self, ctx: &Ctx, name: &CredentialName, value: &[u8]) -> Result<String> {
        let plain = integrity::seal_value(&ctx.store_id, name.as_str(), value);
        let ciphertext = integrity::encrypt_to(ctx.recipients, &plain)?;
        let dir = &ctx.secrets_dir;
        let err = |e| ctx.io_err("write a secret", e);
        util::fs::create_private_dir(dir).map_err(err)?;
        let temp = util::fs::write_temp(dir, &ciphertext).map_err(err)?;
        temp.persist(dir.join(pending_name(name)))
            .map_err(|e| err(e.error))?;
        self.staged.push(name.clone());
        Ok(sha256_hex(&ciphertext))
    }

    fn staged(&self) -> Vec<&CredentialName> {
        self.staged.iter().collect()
    }

    fn rewrite_on_recipients(&self, _new_key: bool) -> bool {
        true
    }

    fn before_commit(&mut self, ctx: &Ctx, _manifest: &mut Manifest) -> Result<()> {
        if !self.staged.is_empty() {
            util::fs::sync_dir(&ctx.secrets_dir).map_err(|e| ctx.io_err("commit", e))?;
        }
        Ok(())
    }

    /// Rename each staged file into place when its entry is still an `age` one; drop the
    /// `NAME.age` of a credential removed or moved to another backend.
    fn finish(
        &mut self,
        ctx: &Ctx,
        manifest: &Manifest,
        touched: &BTreeSet<CredentialName>,
        _warnings: &mut Vec<String>,
    ) -> Result<()> {
        let dir = &ctx.secrets_dir;
        let err = |e| ctx.io_err("commit", e);
        let mut files_changed = false;
        // Looked up once per touched name: a recipients change stages all 10,000.
        self.staged.sort_unstable();
        for name in touched {
            let age_now = manifest
                .entry(name)
                .is_some_and(|entry| entry.backend == BackendKind::Age);
            let staged = self.staged.binary_search(name).is_ok();
            if staged && age_now {
                util::fs::rename_durable(dir, &pending_name(name), &file_name(name))
                    .map_err(err)?;
            } else {
                if staged {
                    util::fs::remove_if_exists(&dir.join(pending_name(name))).map_err(err)?;
                }
                if !age_now {
                    files_changed |=
                        util::fs::remove_if_exists(&dir.join(file_name(name))).map_err(err)?;
                }
            }
        }
        if files_changed {
            util::fs::sync_dir(dir).map_err(err)?;
        }
        self.staged.clear();
        Ok(())
    }

    fn finish_in_place(&mut self, ctx: &Ctx) -> Result<()> {
        let dir = &ctx.secrets_dir;
        // One at a time, each dropped from `staged` once in place: an error stops here,
        // and what is left is the commit's, finished by the next transaction's `recover`
        // (the manifest names the pending files' hashes), not removed by `undo`.
        while let Some(name) = self.staged.last() {
            util::fs::rename_durable(dir, &pending_name(name), &file_name(name))
                .map_err(|e| ctx.io_err("commit", e))?;
            self.staged.pop();
        }
        Ok(())
    }

    fn undo(&mut self, ctx: &Ctx, _warnings: &mut Vec<String>) {
        for name in self.staged.drain(..) {
            let _ = util::fs::remove_if_exists(&ctx.secrets_dir.join(pending_name(&name)));
        }
    }
}
