//! `doctor`: check a store's health and say how to fix each problem.
//!
//! Unlike every other command, doctor does not stop at the first problem: it runs each
//! check it can, records what it found, and leaves the store untouched. Checks that depend
//! on an earlier one (the secrets need the store key) are skipped, saying why, when that one
//! failed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::backend::{self, LazyVault};
use crate::crypto::identity::Identity;
use crate::crypto::integrity::StoreKey;
use crate::error::Error;
use crate::exit::Exit;
use crate::manifest::{self, Manifest};
use crate::model::credential::{BackendKind, CredentialName};
use crate::model::rotation::{self, Status};
use crate::store::{self, Store};
use crate::util::output::Say;
use crate::util::output::escape;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Problem,
}

/// One thing doctor found.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The exit code this problem stands for (integrity 6, unlock 5, overdue 3, other 1).
    #[serde(skip)]
    pub exit: Exit,
}

#[derive(Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(check, Level::Ok, message, None, Exit::Success);
    }

    fn warn(&mut self, check: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(
            check,
            Level::Warning,
            message,
            Some(fix.into()),
            Exit::Success,
        );
    }

    fn problem(
        &mut self,
        check: &'static str,
        message: impl Into<String>,
        fix: Option<String>,
        exit: Exit,
    ) {
        self.push(check, Level::Problem, message, fix, exit);
    }

    /// A problem from a core error: its message, hint and exit code.
    fn error(&mut self, check: &'static str, error: &Error) {
        self.problem(check, error.to_string(), error.hint(), error.exit());
    }

    fn push(
        &mut self,
        check: &'static str,
        level: Level,
        message: impl Into<String>,
        fix: Option<String>,
        exit: Exit,
    ) {
        self.findings.push(Finding {
            check,
            level,
            message: message.into(),
            fix,
            exit,
        });
    }

    pub fn healthy(&self) -> bool {
        self.findings.iter().all(|f| f.level != Level::Problem)
    }

    /// The most serious problem's exit code: integrity, then unlocking, then overdue.
    pub fn exit(&self) -> Exit {
        let rank = |exit: Exit| match exit {
            Exit::Integrity => 4,
            Exit::Locked => 3,
            Exit::NotFound => 2,
            Exit::Overdue => 1,
            _ => 0,
        };
        self.findings
            .iter()
            .filter(|f| f.level == Level::Problem)
            .map(|f| f.exit)
            .max_by_key(|&e| rank(e))
            .unwrap_or(Exit::Success)
    }
}

/// Run every check on the store at `root`. `identity` is how the caller unlocked (or failed to).
pub fn check(root: &Path, identity: Result<&Identity, Error>, say: Say) -> Report {
    let mut report = Report::default();
    if !root.join(manifest::FILE_NAME).exists() {
        report.error(
            "store",
            &Error::StoreNotFound {
                path: root.to_path_buf(),
            },
        );
        return report;
    }
    check_permissions(root, &mut report);
    let store = match Store::open(root, say) {
        Ok(store) => store,
        Err(e) => {
            report.error("store", &e);
            return report;
        }
    };
    let identity = match identity {
        Ok(identity) => {
            report.ok("identity", format!("unlocked from {}", identity.source()));
            Some(identity)
        }
        Err(e) => {
            report.error("identity", &e);
            None
        }
    };
    // A sealed manifest in agentcred's layout (the common case) is read in pieces, so its
    // text (3.7 MB for 10,000 credentials) is never held beside the entries parsed from
    // it; anything else, or any error, is read whole below, which says what is wrong.
    let streamed = identity.and_then(|identity| store.stream_for_doctor(identity).ok().flatten());
    let (key, manifest) = match streamed {
        Some((key, manifest)) => {
            report_key(&key, &mut report);
            report_sealed(&manifest, &mut report);
            (Some(key), Some(manifest))
        }
        None => {
            let text = match store.read_manifest() {
                Ok(text) => text,
                Err(e) => {
                    report.error("manifest", &e);
                    return report;
                }
            };
            let header = match manifest::header(&text) {
                Ok(header) => header,
                Err(e) => {
                    report.error("manifest", &e);
                    return report;
                }
            };
            let key = identity.and_then(|identity| match store.key_for(identity, &header, &text) {
                Ok((file, _)) => {
                    report_key(&file.key, &mut report);
                    Some(file.key)
                }
                Err(e) => {
                    report.error("store key", &e);
                    None
                }
            });
            let manifest = check_manifest(&text, key.as_ref(), &mut report);
            (key, manifest)
        }
    };
    let recipients = check_recipients(&store, manifest.as_ref(), &mut report);
    if let (Some(manifest), Some(identity), Some(key)) = (&manifest, identity, &key) {
        let vault = LazyVault::new(manifest.vault.clone(), &manifest.store_id);
        let vault_ok = check_vault(&vault, manifest, &mut report);
        let secrets = Secrets {
            store: &store,
            identity,
            key,
            manifest,
            recipients,
            vault: vault_ok.then_some(&vault),
        };
        secrets.check(&mut report);
    } else {
        report.warn(
            "secrets",
            "not checked: the manifest or the store key could not be read",
            "fix the problems above, then run doctor again",
        );
    }
    check_leftovers(&store, manifest.as_ref(), &mut report);
    check_audit(root, &mut report);
    if let Some(manifest) = &manifest {
        check_rotation(manifest, &mut report);
    }
    report
}

fn check_permissions(root: &Path, report: &mut Report) {
    let mut problems = Vec::new();
    let mut visit = |path: &Path| {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        let shown = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let shown = if shown.is_empty() {
            ".".to_string()
        } else {
            shown
        };
        if meta.file_type().is_symlink() {
            problems.push((
                format!("{shown} is a symlink"),
                format!("replace {} with the file itself", path.display()),
            ));
        } else if meta.mode() & 0o022 != 0 {
            let fix = if meta.is_dir() {
                "chmod 700"
            } else {
                "chmod 600"
            };
            problems.push((
                format!("{shown} is writable by group or others"),
                format!("{fix} {}", path.display()),
            ));
        }
    };
    visit(root);
    for dir in [root.to_path_buf(), root.join(store::SECRETS)] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                visit(&entry.path());
            }
        }
    }
    if problems.is_empty() {
        report.ok(
            "permissions",
            "no file or directory in the store is writable by others, and none is a symlink",
        );
    }
    for (message, fix) in problems {
        report.problem("permissions", message, Some(fix), Exit::Integrity);
    }
}

/// A sealed manifest older than this machine has seen (or than AGENTCRED_MIN_GENERATION)
/// may bring back a revoked grant or a removed recipient: exec refuses it.
fn check_rollback(manifest: &Manifest, report: &mut Report) {
    match crate::store::state::note_generation(&manifest.store_id, manifest.generation) {
        Ok(None) => {}
        Ok(Some(rollback)) => report.problem(
            "rollback",
            format!(
                "the store is at generation {}, older than generation {} {}: an old checkout or a rollback, which can bring back revoked grants",
                rollback.generation,
                rollback.seen,
                if rollback.pinned {
                    "pinned by AGENTCRED_MIN_GENERATION"
                } else {
                    "seen on this machine"
                }
            ),
            Some(if rollback.pinned {
                "`git pull` the current store, or lower AGENTCRED_MIN_GENERATION".into()
            } else {
                "`git pull` the current store; for a deliberate checkout of an older state, `agentcred doctor --trust`".into()
            }),
            Exit::Integrity,
        ),
        Err(e) => report.error("rollback", &e),
    }
}

fn report_key(key: &StoreKey, report: &mut Report) {
    report.ok(
        "store key",
        format!("opens; fingerprint {}", key.fingerprint()),
    );
}

/// A manifest whose seal verified: what it holds, and whether it is a rollback.
fn report_sealed(manifest: &Manifest, report: &mut Report) {
    report.ok(
        "manifest",
        format!(
            "seal verified: generation {}, {} credential{}, {} agent{}",
            manifest.generation,
            manifest.credentials.len(),
            plural(manifest.credentials.len()),
            manifest.agents.len(),
            plural(manifest.agents.len())
        ),
    );
    check_rollback(manifest, report);
}

fn check_manifest(text: &str, key: Option<&StoreKey>, report: &mut Report) -> Option<Manifest> {
    // A sealed file is in the layout agentcred writes and is parsed a section at a time,
    // as a reader parses it: the TOML parser's tree of a whole manifest of 10,000
    // credentials took 70 MB. Anything else is parsed as an unverified read is: a
    // section at a time where that works, else whole, to say what is wrong.
    let seal = key.map(|key| manifest::seal_ok(text, key));
    let parsed = match seal {
        // No check here reads the credentials' history.
        Some(Ok(true)) => Manifest::parse_sealed_without_history(text),
        _ => Manifest::parse_unverified(text),
    };
    let manifest = match parsed {
        Ok(manifest) => manifest,
        Err(e) => {
            report.error("manifest", &e);
            return None;
        }
    };
    let (Some(key), Some(seal)) = (key, seal) else {
        report.warn(
            "manifest",
            format!(
                "parses (generation {}), but its seal was not checked without the store key",
                manifest.generation
            ),
            "unlock the identity to check it",
        );
        return Some(manifest);
    };
    match seal {
        Ok(true) => report_sealed(&manifest, report),
        Ok(false) => {
            let fix = "if the edit was deliberate, `agentcred doctor --reseal`; otherwise restore agentcred.toml from git".to_string();
            let edits = manifest::hand_edits(&manifest, key);
            if edits.is_empty() {
                report.problem(
                    "manifest",
                    "agentcred.toml was changed outside agentcred (outside any entry, or an entry was removed)",
                    Some(fix.clone()),
                    Exit::Integrity,
                );
            }
            for edit in edits {
                report.problem("manifest", edit, Some(fix.clone()), Exit::Integrity);
            }
        }
        Err(e) => report.error("manifest", &e),
    }
    Some(manifest)
}

/// Check `recipients.txt` against the manifest; returns how many recipients it names.
fn check_recipients(store: &Store, manifest: Option<&Manifest>, report: &mut Report) -> usize {
    let file = match manifest {
        Some(m) => store.committed_recipients(&m.recipients_sha256),
        None => store.recipients(),
    };
    match file {
        Err(e) => {
            report.error("recipients", &e);
            0
        }
        Ok(file) => {
            let count = file.lines.len();
            match manifest {
                Some(m) if m.recipients_sha256 != file.sha256 => report.problem(
                    "recipients",
                    "recipients.txt was changed outside agentcred: nothing is encrypted to it until that is resolved",
                    Some("restore recipients.txt from git, or accept the change with `agentcred doctor --reseal`".into()),
                    Exit::Integrity,
                ),
                _ => {
                    let ssh = file
                        .lines
                        .iter()
                        .filter(|l| l.recipient.kind() != "x25519")
                        .count();
                    report.ok(
                        "recipients",
                        format!(
                            "{count} recipient{}{}",
                            plural(count),
                            if ssh > 0 {
                                format!(" ({ssh} SSH key{})", plural(ssh))
                            } else {
                                String::new()
                            }
                        ),
                    );
                }
            }
            count
        }
    }
}

/// When the store has `vault` credentials: can Vault be reached with the token at hand?
/// Returns whether their values can be checked.
fn check_vault(vault: &LazyVault, manifest: &Manifest, report: &mut Report) -> bool {
    let count = manifest
        .credentials
        .values()
        .filter(|e| e.backend == BackendKind::Vault)
        .count();
    if count == 0 {
        return false;
    }
    match vault
        .get()
        .and_then(|v| Ok((v.addr().to_string(), v.check_token()?)))
    {
        Ok((addr, source)) => {
            report.ok(
                "vault",
                format!(
                    "Vault at {} answers and accepts {source} ({count} credential{} there)",
                    escape(&addr),
                    plural(count)
                ),
            );
            true
        }
        Err(e) => {
            report.problem(
                "vault",
                format!("{e} ({count} credential{} live there)", plural(count)),
                e.hint(),
                e.exit(),
            );
            false
        }
    }
}

/// What checking every value needs.
struct Secrets<'a> {
    store: &'a Store,
    identity: &'a Identity,
    key: &'a StoreKey,
    manifest: &'a Manifest,
    /// How many recipients the store has.
    recipients: usize,
    /// The Vault client, when Vault answered.
    vault: Option<&'a LazyVault>,
}

impl Secrets<'_> {
    fn check(&self, report: &mut Report) {
        let manifest = self.manifest;
        let mut checked = 0;
        let mut failed = 0;
        let mut unreachable = 0;
        for (name, entry) in &manifest.credentials {
            let Ok(credential) = CredentialName::parse(name) else {
                continue;
            };
            if entry.backend == BackendKind::Vault && self.vault.is_none() {
                unreachable += 1;
                continue;
            }
            match self.read(&credential, entry) {
                Ok(newer) => {
                    checked += 1;
                    if newer {
                        report.warn(
                            "secrets",
                            format!(
                                "{name}: Vault holds a newer value than this manifest records (rotated on another machine, or a rotation cut short before its commit)"
                            ),
                            format!(
                                "pull the store; if it is up to date, a rotation was cut short: run `agentcred rotate {name}` again"
                            ),
                        );
                    }
                }
                Err(e) => {
                    failed += 1;
                    report.problem(
                        "secrets",
                        format!("{name}: {e}"),
                        Some(e.hint().unwrap_or_else(|| {
                            format!("store a good value with `agentcred rotate {name}`")
                        })),
                        e.exit(),
                    );
                    continue;
                }
            }
            if entry.backend == BackendKind::Age {
                self.check_stanzas(&credential, entry, report);
            }
        }
        if unreachable > 0 {
            report.warn(
                "secrets",
                format!(
                    "{unreachable} value{} in Vault not checked: Vault cannot be used (see above)",
                    plural(unreachable)
                ),
                "fix the Vault problem above, then run doctor again",
            );
        }
        if failed == 0 {
            report.ok(
                "secrets",
                format!(
                    "all {checked} value{} can be read and verify",
                    plural(checked)
                ),
            );
        }
    }

    /// Read one value; `Ok(true)` for a Vault value newer than the manifest records.
    fn read(&self, name: &CredentialName, entry: &manifest::Entry) -> Result<bool, Error> {
        let store_id = &self.manifest.store_id;
        match (entry.backend, self.vault) {
            (BackendKind::Vault, Some(vault)) => {
                Ok(vault.get()?.read(self.key, store_id, name, entry)?.newer)
            }
            _ => {
                let ctx = self
                    .store
                    .backend_ctx(self.identity, self.key, store_id, &[]);
                backend::read(&ctx, name, entry, &|| Err(Error::VaultNotConfigured))?;
                Ok(false)
            }
        }
    }

    fn check_stanzas(&self, name: &CredentialName, entry: &manifest::Entry, report: &mut Report) {
        let recipients = self.recipients;
        let stanzas = backend::age::committed_ciphertext(&self.store.secrets_dir(), name, entry)
            .ok()
            .and_then(|bytes| recipient_stanzas(&bytes));
        if let Some(stanzas) = stanzas
            && stanzas != recipients
        {
            report.warn(
                "secrets",
                format!(
                    "{name} is encrypted to {stanzas} recipient{}, the store has {recipients}",
                    plural(stanzas)
                ),
                format!("re-encrypt it to the current recipients with `agentcred rotate {name}`"),
            );
        }
    }
}

/// How many recipient stanzas an age file's header has (armored or binary). Only the kinds
/// of recipient a store can have count: age adds random "grease" stanzas to every header.
fn recipient_stanzas(ciphertext: &[u8]) -> Option<usize> {
    use std::io::Read;
    let mut header = Vec::new();
    age::armor::ArmoredReader::new(ciphertext)
        .take(64 * 1024)
        .read_to_end(&mut header)
        .ok()?;
    let end = header.windows(4).position(|w| w == b"\n---")?;
    let text = std::str::from_utf8(&header[..end]).ok()?;
    const KINDS: [&str; 3] = ["-> X25519 ", "-> ssh-ed25519 ", "-> ssh-rsa "];
    Some(
        text.lines()
            .filter(|l| KINDS.iter().any(|k| l.starts_with(k)))
            .count(),
    )
}

fn check_leftovers(store: &Store, manifest: Option<&Manifest>, report: &mut Report) {
    let mut leftovers = Vec::new();
    let mut orphans = Vec::new();
    for dir in [store.root().to_path_buf(), store.secrets_dir()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") || name.ends_with(".pending") {
                leftovers.push(entry.path());
            } else if dir != store.root()
                && let Some(stem) = name.strip_suffix(".age")
                && manifest.is_some_and(|m| !m.credentials.contains_key(stem))
            {
                orphans.push(entry.path());
            }
        }
    }
    let stale = crate::exec::filecred::stale_dirs(&crate::exec::filecred::base_dir());
    if leftovers.is_empty() && orphans.is_empty() && stale.is_empty() {
        report.ok("leftovers", "no temporary, pending or orphaned files");
    }
    for path in leftovers {
        report.warn(
            "leftovers",
            format!("{} was left by an interrupted write", path.display()),
            "the next change to the store (add, rotate, rm, recipients) finishes or removes it",
        );
    }
    // File-credential directories (holding plain values) left by an agentcred that was
    // killed: the next exec with a file credential removes them, but until then they are
    // secrets on disk.
    for path in stale {
        report.problem(
            "leftovers",
            format!(
                "{} holds file credentials of an agentcred that was killed",
                path.display()
            ),
            Some(format!("rm -r {}", path.display())),
            Exit::Failure,
        );
    }
    for path in orphans {
        report.warn(
            "leftovers",
            format!("{} belongs to no credential", path.display()),
            format!("rm {}", path.display()),
        );
    }
}

fn check_audit(root: &Path, report: &mut Report) {
    match crate::audit::verify_log(root) {
        Ok(scan) => match scan.broken {
            None if scan.lines == 0 => report.ok("audit", "no audit log on this machine yet"),
            None => report.ok(
                "audit",
                format!(
                    "{} event{}, chain intact",
                    scan.lines,
                    plural(usize::try_from(scan.lines).unwrap_or(usize::MAX))
                ),
            ),
            Some(e) => report.problem(
                "audit",
                e.to_string(),
                Some("keep the broken log as evidence (mv audit.jsonl audit.jsonl.broken), then `agentcred doctor --trust` starts a new one".into()),
                Exit::Integrity,
            ),
        },
        Err(e) => report.error("audit", &e),
    }
}

fn check_rotation(manifest: &Manifest, report: &mut Report) {
    let now = rotation::now();
    let mut overdue = Vec::new();
    let mut soon = Vec::new();
    for (name, entry) in &manifest.credentials {
        match rotation::status(
            entry.due_at(&manifest.defaults),
            now,
            manifest.defaults.due_soon_window,
        ) {
            Status::Overdue => overdue.push(escape(name)),
            Status::DueSoon => soon.push(escape(name)),
            _ => {}
        }
    }
    if !overdue.is_empty() {
        report.problem(
            "rotation",
            format!(
                "{} credential{} overdue: {}",
                overdue.len(),
                plural(overdue.len()),
                overdue.join(", ")
            ),
            Some("rotate each with `agentcred rotate NAME` (`agentcred due` lists them)".into()),
            Exit::Overdue,
        );
    }
    if !soon.is_empty() {
        report.warn(
            "rotation",
            format!(
                "{} credential{} due soon: {}",
                soon.len(),
                plural(soon.len()),
                soon.join(", ")
            ),
            "plan their rotation (`agentcred due`)",
        );
    }
    if overdue.is_empty() && soon.is_empty() {
        report.ok("rotation", "nothing overdue or due soon");
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_is_the_most_serious_problem() {
        let mut report = Report::default();
        report.ok("a", "fine");
        assert!(report.healthy());
        assert_eq!(report.exit(), Exit::Success);
        report.warn("b", "meh", "do x");
        assert!(report.healthy());
        report.problem("c", "overdue", None, Exit::Overdue);
        assert_eq!(report.exit(), Exit::Overdue);
        report.problem("d", "tampered", None, Exit::Integrity);
        report.problem("e", "locked", None, Exit::Locked);
        assert_eq!(report.exit(), Exit::Integrity);
        assert!(!report.healthy());
    }

    #[test]
    fn counts_recipient_stanzas() {
        let a = crate::crypto::recipient::Recipient::X25519(
            age::x25519::Identity::generate().to_public(),
        );
        let b = crate::crypto::recipient::Recipient::X25519(
            age::x25519::Identity::generate().to_public(),
        );
        let one = crate::crypto::integrity::encrypt_to(std::slice::from_ref(&a), b"x").unwrap();
        let two = crate::crypto::integrity::encrypt_to(&[a, b], b"x").unwrap();
        assert_eq!(recipient_stanzas(&one), Some(1));
        assert_eq!(recipient_stanzas(&two), Some(2));
        assert_eq!(recipient_stanzas(b"not age"), None);
    }
}
