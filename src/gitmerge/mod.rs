//! Teams in git: the merge driver, `resolve`, and the git setup that registers them.
//!
//! A line-based merge of `agentcred.toml` cannot keep the seal: both sides moved the
//! generation and the seal line, so git stops on every concurrent change. Git lets a repo
//! name a program for some paths (`.gitattributes` `merge=agentcred`) and runs the command
//! configured under `merge.agentcred.driver` in the *local* git config; git never takes that
//! command from the repository itself (a clone cannot make its users run anything), so
//! `init` and `git-setup` write it.
//!
//! The driver verifies base, ours and theirs with the store key (a side that does not
//! verify was written by someone who is not a recipient, or edited by hand: refused,
//! named), merges entry by entry (see [`merge`]) and seals the result at a generation
//! above both sides. When it cannot, it leaves a conflict record (see
//! [`crate::manifest::conflict`]) that every command refuses until `agentcred resolve`
//! has chosen a side for each conflict. Secret files need no driver: different credentials
//! are different files, and two rotations of one are git's own conflict (`merge=binary`)
//! that `resolve` settles by putting back the chosen side's file, checked against the
//! hash in the chosen entry. Without the identity or the store key the driver fails, and
//! git reports the conflict, rather than write a manifest nobody can verify.

pub mod merge;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::crypto::identity::Identity;
use crate::crypto::integrity::{StoreKey, sha256_hex};
use crate::error::{Error, Result};
use crate::manifest::conflict::{Side, Unresolved};
use crate::manifest::{self, Manifest};
use crate::model::credential::{BackendKind, CredentialName};
use crate::store::{RECIPIENTS, SECRETS, Store};
use crate::util;
use crate::util::output::{Say, escape};

/// The name of the driver in `.gitattributes` and the git config.
pub const DRIVER: &str = "agentcred";

const ATTRIBUTES: &str = ".gitattributes";
const ATTRIBUTE_LINES: &[&str] = &[
    "agentcred.toml merge=agentcred",
    "recipients.txt merge=agentcred",
    "storekey.age merge=binary",
    "secrets/*.age merge=binary",
];

/// What the driver did.
pub enum Merged {
    /// A sealed manifest at this generation (or, for `recipients.txt`, the merged file).
    Clean { generation: Option<u64> },
    /// A conflict record: each `KIND NAME` with why.
    Conflicts(Vec<(String, String)>),
}

/// Run as git's merge driver: `base`, `ours`, `theirs` are git's temporary files (%O %A
/// %B; the result goes into `ours`), `path` the file's path in the work tree (%P); git
/// runs drivers at the top of the work tree.
pub fn drive(
    identity: &Identity,
    base: &Path,
    ours: &Path,
    theirs: &Path,
    path: &Path,
    say: Say,
) -> Result<Merged> {
    let read = |file: &Path| {
        std::fs::read(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))
    };
    let (base_bytes, ours_bytes, theirs_bytes) = (read(base)?, read(ours)?, read(theirs)?);
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let write = |bytes: &[u8]| {
        std::fs::write(ours, bytes)
            .map_err(|e| Error::io(format!("cannot write {}", ours.display()), e))
    };
    if file_name == RECIPIENTS {
        if ours_bytes == theirs_bytes || theirs_bytes == base_bytes {
            return Ok(Merged::Clean { generation: None });
        }
        if ours_bytes == base_bytes {
            write(&theirs_bytes)?;
            return Ok(Merged::Clean { generation: None });
        }
        return Err(Error::Unsupported(
            "both sides changed recipients.txt; agentcred does not merge two recipients changes (each re-encrypted every value to its own list)".into(),
        ));
    }
    if file_name != manifest::FILE_NAME {
        return Err(Error::Usage(format!(
            "the agentcred merge driver merges agentcred.toml and recipients.txt, not {}",
            escape(&path.display().to_string())
        )));
    }
    let store_dir = store_dir_of(path);
    let store = Store::open(&store_dir, say)?;
    let text = |bytes: Vec<u8>, side: &str| {
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::integrity(side_file(side), "it is not UTF-8 text"))?;
        manifest::conflict::refuse_unmerged(&text)?;
        manifest::normalize_line_ends(text)
    };
    let ours_text = text(ours_bytes, "ours")?;
    let theirs_text = text(theirs_bytes, "theirs")?;
    let base_text = if base_bytes.is_empty() {
        None
    } else {
        Some(text(base_bytes, "base")?)
    };
    let key = store_key(&store, identity, &ours_text)?;
    let sides = Sides::verify(&key, base_text.as_deref(), &ours_text, &theirs_text)?;
    let outcome = merge::merge(
        sides.base.as_ref(),
        &sides.ours,
        &sides.theirs,
        &Default::default(),
    )?;
    if outcome.conflicts.is_empty() {
        let mut merged = outcome.merged;
        write(merged.render(&key).as_bytes())?;
        return Ok(Merged::Clean {
            generation: Some(merged.generation),
        });
    }
    let conflicts = sides.explain(outcome.conflicts);
    let record = Unresolved {
        conflicts: conflicts.iter().map(|(k, _)| k.clone()).collect(),
        reasons: conflicts.iter().map(|(_, r)| r.clone()).collect(),
        resolved: Default::default(),
    };
    write(record.render().as_bytes())?;
    Ok(Merged::Conflicts(conflicts))
}

/// The store directory of a manifest path relative to the top of the work tree.
fn store_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn side_file(side: &str) -> String {
    format!("agentcred.toml of {side}")
}

/// The store key of this checkout (ours), checked against what this machine remembers.
/// Sides sealed with another key (an earlier one, before `recipients rm`) are refused: a
/// removed member knows an earlier key.
fn store_key(store: &Store, identity: &Identity, ours_text: &str) -> Result<StoreKey> {
    let header = manifest::header(ours_text)?;
    let (file, _) = store.key_for(identity, &header, ours_text)?;
    Ok(file.key)
}

/// The three sides, each verified with the store key.
struct Sides {
    base: Option<Manifest>,
    ours: Manifest,
    theirs: Manifest,
}

impl Sides {
    fn verify(key: &StoreKey, base: Option<&str>, ours: &str, theirs: &str) -> Result<Sides> {
        let one = |text: &str, side: &str| match Manifest::load(text, Some(key)) {
            Ok(manifest) => Ok(manifest),
            Err(Error::Integrity { detail, .. }) => Err(Error::integrity(
                side_file(side),
                format!(
                    "its seal does not verify with the store key ({detail}): it was written by someone who is not a recipient of this store, edited by hand, or sealed with an earlier store key; it is not merged"
                ),
            )),
            Err(e) => Err(e),
        };
        Ok(Sides {
            base: base.map(|text| one(text, "base")).transpose()?,
            ours: one(ours, "ours")?,
            theirs: one(theirs, "theirs")?,
        })
    }

    fn explain(&self, conflicts: Vec<(String, String)>) -> Vec<(String, String)> {
        conflicts
            .into_iter()
            .map(|(key, why)| {
                let note = merge::value_note(self.base.as_ref(), &self.ours, &self.theirs, &key);
                (key, format!("{why}{note}"))
            })
            .collect()
    }
}

/// What `resolve` did.
pub enum Resolved {
    /// Conflicts still open (by `KIND NAME`).
    Partly { open: Vec<String> },
    /// The merge is complete: the sealed manifest's generation, and the files put in place.
    Done { generation: u64, files: Vec<String> },
}

/// Choose `side` for every open conflict named `name` (a credential, agent or `defaults`
/// / `vault`), then, when none is left, write the sealed merge and stage it in git.
pub fn resolve(
    identity: &Identity,
    store_dir: &Path,
    name: &str,
    side: Side,
    say: Say,
) -> Result<(Vec<String>, Resolved)> {
    let store = Store::open(store_dir, say)?;
    let path = store_dir.join(manifest::FILE_NAME);
    let raw =
        util::fs::read_nofollow(&path).map_err(|e| Error::io("cannot read agentcred.toml", e))?;
    let raw = String::from_utf8(raw)
        .map_err(|_| Error::integrity(manifest::FILE_NAME, "it is not UTF-8 text"))?;
    let Some(mut record) = Unresolved::parse(&raw)? else {
        return Err(Error::Usage(
            "this store has no unresolved merge (agentcred resolve settles a stopped `git merge`)"
                .into(),
        ));
    };
    let chosen: Vec<String> = record
        .conflicts
        .iter()
        .filter(|key| key.split_once(' ').is_some_and(|(_, n)| n == name))
        .cloned()
        .collect();
    if chosen.is_empty() {
        return Err(Error::Usage(format!(
            "{} is not in conflict; the conflicts are: {}",
            escape(name),
            record.conflicts.join(", ")
        )));
    }
    for key in &chosen {
        record.resolved.insert(key.clone(), side);
    }
    let stage = |n: u8| git_show(store_dir, &format!(":{n}:./{}", manifest::FILE_NAME));
    let gone = || {
        Error::Usage(
            "git no longer holds the two sides of agentcred.toml (was it `git add`ed?); run `git merge --abort` and merge again".into(),
        )
    };
    let as_text = |bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .map_err(|_| Error::integrity(manifest::FILE_NAME, "it is not UTF-8 text"))
            .and_then(manifest::normalize_line_ends)
    };
    let ours_text = as_text(stage(2)?.ok_or_else(gone)?)?;
    let theirs_text = as_text(stage(3)?.ok_or_else(gone)?)?;
    let base_text = stage(1)?.map(as_text).transpose()?;
    let key = store_key(&store, identity, &ours_text)?;
    let sides = Sides::verify(&key, base_text.as_deref(), &ours_text, &theirs_text)?;
    let outcome = merge::merge(
        sides.base.as_ref(),
        &sides.ours,
        &sides.theirs,
        &record.resolved,
    )?;
    if !outcome.conflicts.is_empty() {
        let open = outcome.conflicts.into_iter().map(|(k, _)| k).collect();
        util::fs::write_atomic(store_dir, manifest::FILE_NAME, record.render().as_bytes())
            .map_err(|e| Error::io("cannot write agentcred.toml", e))?;
        return Ok((chosen, Resolved::Partly { open }));
    }
    let mut merged = outcome.merged;
    // The secret file of each credential a side was chosen for: that side's file, checked
    // against the hash in that side's entry.
    let mut files = Vec::new();
    let mut staged: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    for (key, side) in &record.resolved {
        let Some(cred) = key.strip_prefix("credential ") else {
            continue;
        };
        let cred = CredentialName::parse(cred)?;
        let file = format!("{SECRETS}/{cred}.age");
        let entry = merged
            .credentials
            .get(cred.as_str())
            .filter(|e| e.backend == BackendKind::Age);
        let Some(entry) = entry else {
            staged.push((file, None));
            continue;
        };
        let want = entry.sha256.clone().unwrap_or_default();
        let n = if *side == Side::Ours { 2 } else { 3 };
        let candidates = [
            git_show(store_dir, &format!(":{n}:./{file}"))?,
            util::fs::read_optional(&store_dir.join(&file))
                .map_err(|e| Error::io(format!("cannot read {file}"), e))?,
        ];
        let bytes = candidates
            .into_iter()
            .flatten()
            .find(|bytes| sha256_hex(bytes) == want)
            .ok_or_else(|| {
                Error::integrity(
                    file.clone(),
                    format!(
                        "the file of {} on {} is not in the merge (no version has the hash its entry records)",
                        cred,
                        if *side == Side::Ours { "ours" } else { "theirs" }
                    ),
                )
            })?;
        staged.push((file, Some(bytes)));
    }
    // Everything is checked: now write.
    let secrets = store.secrets_dir();
    for (file, bytes) in staged {
        let file_path = store_dir.join(&file);
        match bytes {
            Some(bytes) => {
                util::fs::create_private_dir(&secrets)
                    .map_err(|e| Error::io("cannot create secrets/", e))?;
                let name = file_path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                util::fs::write_atomic(&secrets, &name, &bytes)
                    .map_err(|e| Error::io(format!("cannot write {file}"), e))?;
                git(store_dir, &["add", "--", &file])?;
            }
            None => {
                util::fs::remove_if_exists(&file_path)
                    .map_err(|e| Error::io(format!("cannot remove {file}"), e))?;
                git(
                    store_dir,
                    &["rm", "-q", "--cached", "--ignore-unmatch", "--", &file],
                )?;
            }
        }
        files.push(file);
    }
    let text = merged.render(&key);
    util::fs::write_atomic(store_dir, manifest::FILE_NAME, text.as_bytes())
        .map_err(|e| Error::io("cannot write agentcred.toml", e))?;
    git(store_dir, &["add", "--", manifest::FILE_NAME])?;
    Ok((
        chosen,
        Resolved::Done {
            generation: merged.generation,
            files,
        },
    ))
}

/// Register the driver for the git work tree holding `store_dir`: `.gitattributes` in the
/// store directory and `merge.agentcred.*` in the repository's config. `program` is the
/// agentcred git should run. Returns the top of the work tree, or `None` when the store
/// is not in one (or git is not installed).
pub fn setup(store_dir: &Path, program: &Path) -> Result<Option<PathBuf>> {
    let Ok(out) = Command::new("git")
        .arg("-C")
        .arg(store_dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
    else {
        return Ok(None);
    };
    if !out.status.success() {
        return Ok(None);
    }
    let top = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end());
    let existing = util::fs::read_optional(&store_dir.join(ATTRIBUTES))
        .map_err(|e| Error::io("cannot read .gitattributes", e))?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut text = existing.clone().unwrap_or_else(|| {
        "# Written by agentcred: merge the store's manifest entry by entry, keeping its seal.\n"
            .to_string()
    });
    for line in ATTRIBUTE_LINES {
        if !text.lines().any(|l| l.trim() == *line) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    if existing.as_deref() != Some(text.as_str()) {
        util::fs::write_atomic(store_dir, ATTRIBUTES, text.as_bytes())
            .map_err(|e| Error::io("cannot write .gitattributes", e))?;
    }
    let program = shell_quote(&program.display().to_string());
    git(
        store_dir,
        &[
            "config",
            &format!("merge.{DRIVER}.name"),
            "agentcred: merge store manifests entry by entry and keep the seal",
        ],
    )?;
    git(
        store_dir,
        &[
            "config",
            &format!("merge.{DRIVER}.driver"),
            &format!("{program} merge-driver %O %A %B %P"),
        ],
    )?;
    Ok(Some(top))
}

fn shell_quote(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| Error::io("cannot run git", e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::io(
            format!("git {} failed", args.first().unwrap_or(&"")),
            std::io::Error::other(escape(stderr.lines().next().unwrap_or(""))),
        ));
    }
    Ok(out.stdout)
}

/// `git cat-file blob REV:PATH`, or `None` when git has no such object (a stage not in the index).
fn git_show(dir: &Path, object: &str) -> Result<Option<Vec<u8>>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["cat-file", "blob", object])
        .output()
        .map_err(|e| Error::io("cannot run git", e))?;
    Ok(out.status.success().then_some(out.stdout))
}
