//! `agentcred recipients`: who can decrypt the store. Adding or removing one re-encrypts
//! every `age` value and the store key in one transaction (see
//! [`crate::store::Txn::change_recipients`]); removing one also replaces the store key and
//! marks what the removed member could read due for rotation.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::audit::NameList;
use crate::cli::context::Ctx;
use crate::crypto::recipient::{self, Recipient};
use crate::error::Error;
use crate::model::credential::BackendKind;
use crate::store::RecipientsFile;
use crate::util::output::{escape, first_names};

/// Who can decrypt the store: list, add or remove recipients
#[derive(Debug, Args)]
#[command(
    after_help = "A recipient is an age public key (age1..., from `agentcred identity --public`)
or an SSH public key (ssh-ed25519 or ssh-rsa, as in ~/.ssh/id_ed25519.pub). Adding or
removing one re-encrypts every age value and the store key, all or nothing; commit the
store to git afterwards so the others get the change.

Examples:
  agentcred recipients list
  agentcred recipients add age1teammate...
  agentcred recipients add \"$(cat ~/.ssh/id_ed25519.pub)\"
  agentcred recipients rm age1leaver...            # marks what they could read due now"
)]
pub struct RecipientsArgs {
    #[command(subcommand)]
    command: RecipientsCommand,
}

#[derive(Debug, Subcommand)]
enum RecipientsCommand {
    List(ListArgs),
    Add(AddArgs),
    Rm(RmArgs),
}

/// List the store's recipients
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred recipients list
  agentcred recipients list --json | jq -r '.recipients[].recipient'")]
struct ListArgs {
    /// One JSON document on stdout
    #[arg(long)]
    json: bool,
}

/// Add a recipient and re-encrypt the store to it
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred recipients add age1teammate...
  agentcred recipients add \"$(cat ~/.ssh/id_ed25519.pub)\"     # an SSH key, comment kept
  agentcred recipients add \"$(cat ci.pub)\" && git commit -am 'CI can read the store'")]
struct AddArgs {
    /// age1... or an SSH public key (quote it: it has spaces)
    recipient: String,
}

/// Remove a recipient: re-encrypt without it, replace the store key, mark its credentials due
#[derive(Debug, Args)]
#[command(
    after_help = "The removed member can no longer decrypt the store as re-encrypted now,
nor anything added later. They may have kept copies of the old files (git history keeps
them) and of the values, so every credential they could read is marked due for rotation
now (on a terminal, after asking), unless --keep-due. Without a terminal to confirm on,
it needs --yes, as `rm` does.

Examples:
  agentcred recipients rm age1leaver...
  agentcred recipients rm 'ssh-ed25519 AAAA...' --yes       # no question, mark due
  agentcred recipients rm SHA256:abc...                     # an SSH key by its fingerprint
  agentcred recipients rm age1old... --keep-due --yes       # a key retired, nobody left"
)]
struct RmArgs {
    /// The recipient, as listed (an SSH key also by its SHA256: fingerprint)
    recipient: String,

    /// Do not mark the credentials it could read due for rotation
    #[arg(long)]
    keep_due: bool,

    /// Do not ask (needed without a terminal); marks them due unless --keep-due
    #[arg(short, long)]
    yes: bool,

    /// Allow removing your own recipient (you lose access to the store)
    #[arg(long)]
    force: bool,
}

impl RecipientsArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        match self.command {
            RecipientsCommand::List(args) => args.run(ctx),
            RecipientsCommand::Add(args) => args.run(ctx),
            RecipientsCommand::Rm(args) => args.run(ctx),
        }
    }
}

#[derive(Serialize)]
struct RecipientJson {
    recipient: String,
    #[serde(rename = "type")]
    kind: &'static str,
    short: String,
    comment: Option<String>,
    you: bool,
}

#[derive(Serialize)]
struct ListJson {
    verified: bool,
    recipients: Vec<RecipientJson>,
}

impl ListArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        let store = ctx.open_store()?;
        let identity = ctx.identity_if_unlocked()?;
        let (file, verified) = match identity {
            Some(identity) => (store.reader(identity)?.recipients()?, true),
            None => {
                eprintln!("{}", ctx.unverified_note());
                let manifest = store.manifest_unverified()?;
                (
                    store.committed_recipients(&manifest.recipients_sha256)?,
                    false,
                )
            }
        };
        let mine = identity.map(|i| i.recipients()).unwrap_or_default();
        let recipients: Vec<RecipientJson> = file
            .lines
            .iter()
            .map(|line| RecipientJson {
                recipient: line.recipient.to_string(),
                kind: line.recipient.kind(),
                short: line.recipient.short(),
                comment: line.comment.clone(),
                you: mine.contains(&line.recipient),
            })
            .collect();
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(
                &mut out,
                &ListJson {
                    verified,
                    recipients,
                },
            )?;
            writeln!(out)?;
            return Ok(());
        }
        for r in recipients {
            let comment = r
                .comment
                .map(|c| format!(" {}", escape(&c)))
                .unwrap_or_default();
            let you = if r.you { "  (you)" } else { "" };
            writeln!(out, "{}{comment}{you}", r.recipient)?;
        }
        Ok(())
    }
}

/// The recipient in the file that `query` names.
fn find(file: &RecipientsFile, query: &str) -> Result<Recipient, Error> {
    file.lines
        .iter()
        .map(|line| &line.recipient)
        .find(|r| r.matches(query))
        .cloned()
        .ok_or_else(|| Error::RecipientNotFound {
            recipient: escape(query.trim()),
        })
}

/// Never the last recipient; never your own without `--force`.
fn check_removable(
    file: &RecipientsFile,
    removed: &Recipient,
    identity: &crate::crypto::identity::Identity,
    force: bool,
) -> Result<(), Error> {
    if identity.recipients().contains(removed) && !force {
        return Err(Error::Usage(format!(
            "{} is your own recipient: without it you cannot decrypt the store (pass --force if that is what you want)",
            removed.short()
        )));
    }
    if file.lines.len() == 1 {
        return Err(Error::Usage(format!(
            "{} is the store's only recipient; add another first",
            removed.short()
        )));
    }
    Ok(())
}

impl AddArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("recipients-add");
        let recipient = Recipient::parse(&self.recipient)?;
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        // Every age value is written again: the audit names them all.
        let (mut txn, reencrypted) = begin(ctx, &store, identity, |e| e == BackendKind::Age)?;
        let current = store.recipients()?;
        if current.lines.iter().any(|l| l.recipient == recipient) {
            eprintln!(
                "{} is already a recipient; nothing changed",
                recipient.short()
            );
            return Ok(());
        }
        let text = recipient::add_to_file(
            &current.text,
            &recipient,
            recipient::comment_of(&self.recipient),
        );
        let mut progress = Progress::new();
        txn.change_recipients(&text, false, &mut |done, total| progress.show(done, total))?;
        // The event once every value was read: a streamed commit reads them as it goes.
        txn.commit_with(&mut |done, total| progress.show(done, total), &mut || {
            ctx.audit.ok()
        })?;
        progress.finish();
        let reencrypted = reencrypted.len();
        eprintln!(
            "added {}: it can decrypt the store's {} age value{} and the store key; commit the store so it reaches them",
            recipient.short(),
            reencrypted,
            plural(reencrypted)
        );
        Ok(())
    }
}

impl RmArgs {
    fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        ctx.audit.begin("recipients-rm");
        let store = ctx.open_store()?;
        let identity = ctx.identity()?;
        // Find what to do and ask first, holding no lock.
        let (removed, exposed) = {
            // Only the count is needed: each entry counted as the manifest is read in
            // pieces, none held (the reader of every value held 2.5 MB for 10,000).
            let mut exposed = 0;
            let mut count = |_: String, entry: crate::manifest::Entry| {
                exposed += usize::from(exposed_by(entry.backend));
                true
            };
            let file = match store.each_entry(Some(identity), &mut count)? {
                Some(manifest) => store.verified_recipients(&manifest.recipients_sha256)?,
                None => {
                    let reader = store.reader_of_values(identity)?;
                    exposed = (reader.every_credential()?.iter())
                        .filter(|(_, entry, _)| exposed_by(entry.backend))
                        .count();
                    reader.recipients()?
                }
            };
            let removed = find(&file, &self.recipient)?;
            check_removable(&file, &removed, identity, self.force)?;
            (removed, exposed)
        };
        let mark_due = self.mark_due(ctx, &removed, exposed)?;
        let (mut txn, exposed) = begin(ctx, &store, identity, exposed_by)?;
        let current = store.recipients()?;
        let removed = find(&current, &self.recipient)?;
        check_removable(&current, &removed, identity, self.force)?;
        let text = recipient::remove_from_file(&current.text, &removed);
        let mut progress = Progress::new();
        txn.change_recipients(&text, true, &mut |done, total| progress.show(done, total))?;
        let now = crate::model::rotation::now();
        txn.mark_every(
            exposed_by,
            now,
            mark_due,
            "recipient-removed",
            Some(removed.short()),
        );
        let vault = txn
            .manifest()
            .credentials
            .values()
            .any(|e| e.backend == BackendKind::Vault);
        let fingerprint = txn.key_fingerprint();
        // The event once every value was read: a streamed commit reads them as it goes.
        txn.commit_with(&mut |done, total| progress.show(done, total), &mut || {
            ctx.audit.ok()
        })?;
        progress.finish();
        let exposed: Vec<&str> = exposed.iter().collect();
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "removed {}: it cannot decrypt the store as re-encrypted now, nor anything added from now on; the store key was replaced",
            removed.short()
        )?;
        writeln!(
            err,
            "it may have kept the old files (git history keeps them) and the values in them"
        )?;
        if exposed.is_empty() {
            // Nothing it could read is stored.
        } else if mark_due {
            writeln!(
                err,
                "marked {} credential{} due for rotation now: {}",
                exposed.len(),
                plural(exposed.len()),
                first_names(&exposed, Some("`agentcred due` lists them"))
            )?;
        } else {
            writeln!(
                err,
                "{} credential{} it could read {} not marked due; rotate them if it may have kept copies",
                exposed.len(),
                plural(exposed.len()),
                if exposed.len() == 1 { "was" } else { "were" }
            )?;
        }
        if vault {
            writeln!(
                err,
                "values in Vault are readable by whoever Vault lets read them: revoke its Vault token or policy there too"
            )?;
        }
        writeln!(
            err,
            "the new store key's fingerprint is {fingerprint}: update AGENTCRED_STORE_FINGERPRINT where it is pinned"
        )?;
        writeln!(err, "commit the store so the change reaches everyone")?;
        Ok(())
    }

    /// Confirm the removal (`--yes`, or a terminal to ask on: destructive without a
    /// terminal means `--yes`, as for `rm`), then whether to mark the exposed credentials
    /// due: `--keep-due` no, `--yes` yes, else a question.
    fn mark_due(&self, ctx: &Ctx, removed: &Recipient, count: usize) -> anyhow::Result<bool> {
        let who = removed.short();
        if !self.yes
            && !super::input::confirm_destructive(
                ctx.may_prompt(),
                &format!(
                    "Remove recipient {who}? The store is re-encrypted without it, with a new key"
                ),
                &format!("remove recipient {who}"),
            )?
        {
            anyhow::bail!("nothing was changed");
        }
        if self.keep_due {
            return Ok(false);
        }
        if self.yes || count == 0 {
            return Ok(true);
        }
        Ok(super::input::confirm(
            &format!(
                "{who} could read {count} credential{}. Mark them due for rotation now?",
                plural(count)
            ),
            true,
        )?)
    }
}

/// The transaction of a recipients change, streamed where the store allows (see
/// [`crate::store::Store::begin_streamed`]), and the names of the credentials of the
/// backends `which` picks, which the audit event names too.
fn begin<'a>(
    ctx: &Ctx,
    store: &'a crate::store::Store,
    identity: &'a crate::crypto::identity::Identity,
    which: fn(BackendKind) -> bool,
) -> anyhow::Result<(crate::store::Txn<'a>, NameList)> {
    // A streamed transaction has only `age` credentials: all of them are named.
    let mut names = NameList::default();
    let streamed = match which(BackendKind::Age) {
        true => store.begin_streamed(identity, &mut |name| names.push(name))?,
        false => None,
    };
    let txn = match streamed {
        Some(txn) => txn,
        None => {
            let txn = store.begin(identity)?;
            names = (txn.manifest().credentials.iter())
                .filter(|(_, e)| which(e.backend))
                .map(|(name, _)| name)
                .collect();
            txn
        }
    };
    ctx.audit.note(|d| d.credentials = names.clone());
    Ok((txn, names))
}

/// What a removed member could read: every `age` value (each was encrypted to them), and
/// every `vault` value (they held the store key and, most likely, a Vault token). Keychain
/// values live on one machine and were never encrypted to them.
fn exposed_by(backend: BackendKind) -> bool {
    matches!(backend, BackendKind::Age | BackendKind::Vault)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A counter on stderr, shown only on a terminal, outside CI, once the work has taken more
/// than a second.
struct Progress {
    start: Instant,
    enabled: bool,
    shown: bool,
}

impl Progress {
    fn new() -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        Progress {
            start: Instant::now(),
            enabled: !ci && std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, done: usize, total: usize) {
        if !self.enabled || self.start.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.shown = true;
        eprint!("\rre-encrypting: {done}/{total}");
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}
