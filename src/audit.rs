//! The audit log: `<store>/audit.jsonl`, one JSON object per line for every command that
//! reads or changes a secret, each line carrying the SHA-256 of the line before it.
//!
//! The chain makes the log tamper-evident: a line edited, deleted, inserted or moved breaks
//! it at that place, and `audit --verify` names the line. Writers append under an exclusive
//! lock on the log file itself (held across "read the last line, write the next"), with
//! `O_APPEND` and an fsync, so concurrent writers never interleave or lose a line. An event
//! is written before a secret is released or a change committed: no log line, no secret.
//! The log is machine-local (not committed) and never holds a value, only names.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::util;
use crate::util::hash::sha256_hex;
use crate::util::output::Say;

pub const FILE_NAME: &str = "audit.jsonl";

/// The `prev` of the first line: there is no line before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the log. Field order is the order written. `C` is how the credentials are
/// held: their names, or (reading the last line to append after it) [`Names`], which
/// checks them as names are checked and keeps nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event<C = Vec<String>> {
    /// 1 for the first line, and one more for each line after it.
    pub seq: u64,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// `get`, `exec`, `export`, `add`, `rm`, `import`, `agent-add`, ...
    pub action: String,
    /// `ok`, or why it failed: `denied`, `not-found`, `locked`, `integrity`, `usage`, ...
    pub outcome: String,
    /// The agent applied (exec, export) or changed (agent commands).
    pub agent: Option<String>,
    /// The credentials read, changed, or allowed. Names only, never values.
    pub credentials: C,
    /// The program's file name (exec), or the declared command's name (mcp `run`).
    pub program: Option<String>,
    /// A request the broker forwarded or refused (action `broker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    pub pid: u32,
    /// `user@host`.
    pub user: String,
    /// Lowercase hex SHA-256 of the previous line's bytes, its newline included.
    pub prev: String,
}

impl Event {
    pub fn at(&self) -> Option<Timestamp> {
        self.time.parse().ok()
    }
}

/// A list of credential names checked to be one (a sequence of strings) and not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names;

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Each;
        impl<'de> serde::de::Visitor<'de> for Each {
            type Value = Names;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Names, A::Error> {
                while seq.next_element::<Name>()?.is_some() {}
                Ok(Names)
            }
        }
        deserializer.deserialize_seq(Each)
    }
}

/// A string checked and dropped (read through the parser's scratch buffer, not kept).
struct Name;

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Name;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Name, E> {
                Ok(Name)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// One request through the broker: never headers, bodies or the query.
/// The credential names of an event being written, in one string: 10,000 names (`exec`
/// of every credential) are about 100 KB here, where a `Vec<String>` took 560 KB, and
/// the event is written from it without another copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameList {
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<u32>,
}

impl NameList {
    pub fn push(&mut self, name: &str) {
        self.text.push_str(name);
        // An audit line of 4 GiB of names is not written anyway (the line would be refused
        // long before); saturate rather than wrap.
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let end = (end as usize).min(self.text.len());
            let name = self.text.get(start..end).unwrap_or_default();
            start = end;
            name
        })
    }
}

impl<S: AsRef<str>> FromIterator<S> for NameList {
    fn from_iter<I: IntoIterator<Item = S>>(names: I) -> Self {
        let mut list = NameList::default();
        for name in names {
            list.push(name.as_ref());
        }
        list.text.shrink_to_fit();
        list.ends.shrink_to_fit();
        list
    }
}

impl<S: AsRef<str>> From<Vec<S>> for NameList {
    fn from(names: Vec<S>) -> Self {
        names.into_iter().collect()
    }
}

impl<S: AsRef<str>, const N: usize> From<[S; N]> for NameList {
    fn from(names: [S; N]) -> Self {
        names.into_iter().collect()
    }
}

impl Serialize for NameList {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    pub host: String,
    pub path: String,
    pub status: u16,
    /// `brokered` or `blocked`.
    pub decision: String,
}

/// What a command knows so far about the event it will write.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    pub action: &'static str,
    pub agent: Option<String>,
    pub credentials: NameList,
    pub program: Option<String>,
    pub request: Option<Request>,
}

/// The word an exit code is logged as.
pub fn outcome(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "ok",
        Exit::Failure => "error",
        Exit::Usage => "usage",
        Exit::Overdue => "overdue",
        Exit::NotFound => "not-found",
        Exit::Locked => "locked",
        Exit::Integrity => "integrity",
        Exit::Denied => "denied",
        Exit::NotExecutable => "not-executable",
        Exit::CommandNotFound => "command-not-found",
    }
}

fn log_error(e: io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        Error::integrity(FILE_NAME, "it is a symlink")
    } else {
        Error::io("cannot write the audit log", e)
    }
}

/// Append one event to the log in `store_root`, chained to the last line. Returns it.
pub fn append<'a>(
    store_root: &Path,
    draft: &'a Draft,
    outcome: &str,
) -> Result<Event<&'a NameList>> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(store_root.join(FILE_NAME))
        .map_err(log_error)?;
    // Held until `file` is closed: from reading the last line to the fsync of the new one.
    file.lock().map_err(log_error)?;
    let len = file.metadata().map_err(log_error)?.len();
    let last = last_line(&file, len).map_err(log_error)?;
    let seq = last.seq.checked_add(1).ok_or_else(|| Error::AuditChain {
        line: 0,
        detail: "its last sequence number cannot grow (the log was edited)".into(),
    })?;
    let event = Event {
        seq,
        time: Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
        action: draft.action.to_string(),
        outcome: outcome.to_string(),
        agent: draft.agent.clone(),
        credentials: &draft.credentials,
        program: draft.program.clone(),
        request: draft.request.clone(),
        pid: std::process::id(),
        user: crate::util::host::user_at_host(),
        prev: last.hash.clone(),
    };
    let mut line = Vec::with_capacity(256);
    if last.torn {
        // A write cut short left a line without its newline: end it, so that it stays one
        // (broken) line of its own and the chain goes on after it.
        line.push(b'\n');
    }
    let start = line.len();
    serde_json::to_writer(&mut line, &event)
        .map_err(|e| Error::io("cannot write the audit log", e.into()))?;
    line.push(b'\n');
    if let Err(e) = (&file).write_all(&line) {
        // A full disk (or a file size limit) can take the first part of the line: cut it
        // off again, so the log stays a whole chain rather than broken for good.
        let _ = file.set_len(len);
        return Err(log_error(e));
    }
    // A change to the store is fsynced with it. A read (get, exec, token, export) is in the
    // file, and so in the page cache, before the secret is released; only a power loss in
    // the next seconds could drop it, and an fsync would cost every `exec` about half a
    // millisecond on this machine's disk.
    let durable = !is_read(draft.action) || outcome != "ok";
    if durable {
        file.sync_data().map_err(log_error)?;
    }
    if len == 0 {
        util::fs::sync_dir(store_root).map_err(log_error)?;
    }
    move_anchor(
        store_root,
        &file,
        (len, &last),
        &line[start..],
        event.seq,
        durable,
    );
    Ok(event)
}

/// Move this machine's anchor of the log (see [`crate::store::state::AuditAnchor`]) to the line
/// just written, but only from where it was: if the log no longer reaches the anchored
/// line, or that line changed, the anchor stays as evidence for `audit --verify`.
/// `before` is the log's length before the line and its last line then, as `append` read
/// it: the anchor is usually exactly there, and that line need not be read again.
fn move_anchor(
    store_root: &Path,
    file: &File,
    before: (u64, &Last),
    line: &[u8],
    seq: u64,
    durable: bool,
) {
    let (len, last) = before;
    let end = len + line.len() as u64;
    let anchored = match crate::store::state::audit_anchor(store_root) {
        None => true,
        Some(anchor) if anchor.bytes == 0 => anchor.lines == 0,
        Some(anchor) if anchor.bytes == len => !last.torn && last.hash == anchor.head,
        Some(anchor) => {
            anchor.bytes <= len
                && last_line(file, anchor.bytes).is_ok_and(|l| !l.torn && l.hash == anchor.head)
        }
    };
    if !anchored {
        return;
    }
    let anchor = crate::store::state::AuditAnchor {
        lines: seq,
        bytes: end,
        head: sha256_hex(line),
    };
    if let Err(e) = crate::store::state::save_audit_anchor(store_root, &anchor, durable) {
        eprintln!(
            "warning: cannot remember where the audit log ends ({e}): its truncation would go unnoticed"
        );
    }
}

/// The last line of the log: its hash (the next `prev`) and sequence number.
struct Last {
    seq: u64,
    hash: String,
    torn: bool,
}

fn last_line(file: &File, len: u64) -> io::Result<Last> {
    if len == 0 {
        return Ok(Last {
            seq: 0,
            hash: GENESIS.to_string(),
            torn: false,
        });
    }
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, len - 1)?;
    let torn = byte[0] != b'\n';
    let end = if torn { len } else { len - 1 };
    // Scan back from the end for the newline before the last line.
    let mut start = end;
    // No more than the log holds: a buffer is zeroed before it is read into, and each
    // page of it zeroed is a page fault of every command's start.
    let mut chunk = vec![0u8; 8192.min(end as usize).max(1)];
    'scan: while start > 0 {
        let size = chunk.len().min(start as usize);
        let from = start - size as u64;
        file.read_exact_at(&mut chunk[..size], from)?;
        for i in (0..size).rev() {
            if chunk[i] == b'\n' {
                start = from + i as u64 + 1;
                break 'scan;
            }
        }
        start = from;
    }
    // Parsed and hashed as it is read: after an `exec` of 10,000 credentials the last
    // line is 0.7 MB, and every command appends after one.
    let mut hashed = Hashed {
        file,
        at: start,
        end,
        hasher: Sha256::new(),
    };
    let line = usize::try_from(end - start).unwrap_or(usize::MAX);
    let parsed = if line <= 64 * 1024 {
        // Nearly every line (a few hundred bytes): read whole and parsed from memory.
        // serde_json's reader takes a byte at a time through `io::Bytes`, about 70,000
        // instructions of every `exec` for a line of 300 bytes.
        let mut bytes = Vec::with_capacity(line);
        io::Read::read_to_end(&mut hashed, &mut bytes)?;
        serde_json::from_slice::<Event<Names>>(&bytes).map(|event| event.seq)
    } else {
        let mut reader = BufReader::with_capacity(64 * 1024, &mut hashed);
        let parsed = serde_json::from_reader::<_, Event<Names>>(&mut reader);
        // What the parser did not read (a damaged line stops it early) is hashed too.
        io::copy(&mut reader, &mut io::sink())?;
        parsed.map(|event| event.seq)
    };
    if hashed.at != end {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the audit log changed while it was read",
        ));
    }
    hashed.hasher.update(b"\n");
    let seq = match parsed {
        Ok(seq) => seq,
        // A damaged last line: number the next one by position, as verify will.
        Err(_) => count_lines(file)? + u64::from(torn),
    };
    Ok(Last {
        seq,
        hash: crate::util::hash::hex(&hashed.hasher.finalize()),
        torn,
    })
}

/// The bytes of `file` from `at` to `end`, hashed as they are read.
struct Hashed<'a> {
    file: &'a File,
    at: u64,
    end: u64,
    hasher: Sha256,
}

impl io::Read for Hashed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.at) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.hasher.update(&buf[..n]);
        self.at += n as u64;
        Ok(n)
    }
}

fn count_lines(file: &File) -> io::Result<u64> {
    let mut reader = BufReader::new(file.try_clone()?);
    let mut count = 0;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(count);
        }
        count += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buffer.len();
        reader.consume(n);
    }
}

/// What reading the whole log found.
#[derive(Debug)]
pub struct Scan {
    pub lines: u64,
    /// The SHA-256 of the last line: what the next line will carry, and what to note down
    /// elsewhere to anchor the log (the chain alone cannot show the last lines removed).
    pub head: String,
    /// The first place the chain breaks.
    pub broken: Option<Error>,
}

/// Read a log from its first line, checking the chain, and hand each event that parses to
/// `each`. Only the first break is kept; reading goes on after it.
pub fn scan(reader: impl BufRead, each: impl FnMut(Event) -> Result<()>) -> Result<Scan> {
    scan_anchored(reader, None, each)
}

/// [`scan`], also checking the log against this machine's anchor: it must still reach the
/// anchored line, unchanged. A chain break is reported first (it says more).
pub fn scan_anchored(
    mut reader: impl BufRead,
    anchor: Option<&crate::store::state::AuditAnchor>,
    mut each: impl FnMut(Event) -> Result<()>,
) -> Result<Scan> {
    let mut anchored_hash = None;
    let mut expected_prev = GENESIS.to_string();
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut first_break = None;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("cannot read the audit log", e))?;
        if n == 0 {
            break;
        }
        number += 1;
        let complete = line.ends_with(b"\n");
        let problem = if !complete {
            Some((
                number,
                "it is incomplete (a write was cut short, or the file was truncated)".into(),
            ))
        } else {
            match serde_json::from_slice::<Event>(&line) {
                Err(_) => Some((
                    number,
                    "it is not an audit event (it was edited or damaged)".into(),
                )),
                Ok(event) => {
                    let problem = if event.seq != number {
                        Some((
                            number,
                            format!(
                                "its sequence number is {}, not {number}: a line before it was deleted or inserted, or lines were moved",
                                event.seq
                            ),
                        ))
                    } else if event.prev != expected_prev {
                        // The line whose hash is missing is the likely edit.
                        Some(if number == 1 {
                            (
                                1,
                                "its prev is not the genesis value: lines before it were removed"
                                    .to_string(),
                            )
                        } else {
                            (
                                number - 1,
                                format!(
                                    "it was changed after it was written (line {number} does not carry its hash), or lines after it were removed or moved"
                                ),
                            )
                        })
                    } else {
                        None
                    };
                    each(event)?;
                    problem
                }
            }
        };
        if let Some((at, detail)) = problem
            && first_break.is_none()
        {
            first_break = Some(Error::AuditChain { line: at, detail });
        }
        expected_prev = sha256_hex(&line);
        if anchor.is_some_and(|a| a.lines == number) {
            anchored_hash = Some(expected_prev.clone());
        }
    }
    if first_break.is_none()
        && let Some(anchor) = anchor
        && anchor.lines > 0
    {
        first_break = if number < anchor.lines {
            Some(Error::AuditChain {
                line: number,
                detail: format!(
                    "the log was truncated: it has {number} lines, but this machine wrote {} (the last lines were removed)",
                    anchor.lines
                ),
            })
        } else if anchored_hash.as_deref() != Some(anchor.head.as_str()) {
            Some(Error::AuditChain {
                line: anchor.lines,
                detail: "it is not the line this machine wrote there: the log was truncated and rewritten".into(),
            })
        } else {
            None
        };
    }
    Ok(Scan {
        lines: number,
        head: if number == 0 {
            GENESIS.to_string()
        } else {
            expected_prev
        },
        broken: first_break,
    })
}

/// Check the whole log of the store at `root` against its chain and this machine's anchor
/// (`audit --verify`, `doctor`). A log deleted after this machine wrote to it is a break.
pub fn verify_log(root: &Path) -> Result<Scan> {
    let anchor = crate::store::state::audit_anchor(root);
    match open_for_reading(root)? {
        Some(reader) => scan_anchored(reader, anchor.as_ref(), |_| Ok(())),
        None => Ok(Scan {
            lines: 0,
            head: GENESIS.to_string(),
            broken: anchor.filter(|a| a.lines > 0).map(|a| Error::AuditChain {
                line: 0,
                detail: format!(
                    "the log was deleted: this machine wrote {} lines to it (`agentcred doctor --trust` starts a new one deliberately)",
                    a.lines
                ),
            }),
        }),
    }
}

/// Anchor the log as it is now (`doctor --trust`): a deliberate reset or truncation is
/// accepted, and later ones are caught again.
pub fn reanchor(root: &Path) -> Result<()> {
    let result = match open_for_reading(root)? {
        None => crate::store::state::reset_audit_anchor(root),
        Some(mut reader) => {
            let mut bytes = 0u64;
            let mut lines = 0u64;
            let mut head = GENESIS.to_string();
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io("cannot read the audit log", e))?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                lines += 1;
                head = sha256_hex(&line);
            }
            crate::store::state::save_audit_anchor(
                root,
                &crate::store::state::AuditAnchor { lines, bytes, head },
                true,
            )
        }
    };
    result.map_err(|e| Error::io("cannot remember where the audit log ends", e))
}

/// Open the log for reading, with a shared lock so no line is read half-written.
/// `Ok(None)` when there is no log yet.
pub fn open_for_reading(store_root: &Path) -> Result<Option<BufReader<File>>> {
    let file = match util::fs::open_nofollow(&store_root.join(FILE_NAME)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::integrity(FILE_NAME, "it is a symlink"));
        }
        Err(e) => return Err(Error::io("cannot read the audit log", e)),
    };
    file.lock_shared()
        .map_err(|e| Error::io("cannot read the audit log", e))?;
    Ok(Some(BufReader::new(file)))
}

/// The event a command will write: begun by the command, completed as it learns names,
/// written once with `ok` before the secret is released (or the change committed), and by
/// `main` with the failure's outcome when the command fails.
pub struct Recorder {
    state: RefCell<RecorderState>,
    /// Where the warnings about the log itself go (the caller prints them).
    say: Say,
}

#[derive(Default)]
struct RecorderState {
    /// Set once the store was opened: never create a log where there is no store.
    store: Option<PathBuf>,
    draft: Option<Draft>,
}

impl Recorder {
    pub fn new(say: Say) -> Recorder {
        Recorder {
            state: RefCell::default(),
            say,
        }
    }

    pub fn store_opened(&self, root: &Path) {
        self.state.borrow_mut().store = Some(root.to_path_buf());
    }

    /// Start the event of this command.
    pub fn begin(&self, action: &'static str) {
        self.state.borrow_mut().draft = Some(Draft {
            action,
            ..Draft::default()
        });
    }

    /// Add what is known (agent, credential names, program) to the event.
    pub fn note(&self, update: impl FnOnce(&mut Draft)) {
        if let Some(draft) = self.state.borrow_mut().draft.as_mut() {
            update(draft);
        }
    }

    /// Write the event with outcome `ok`. Failing to write fails the command (nothing is
    /// released unlogged), except on a store this user cannot write (a read-only checkout),
    /// where no log can be kept: a warning says so.
    pub fn ok(&self) -> Result<()> {
        let state = self.state.borrow();
        let (Some(store), Some(draft)) = (&state.store, &state.draft) else {
            return Ok(());
        };
        let written = append(store, draft, "ok").map(|_| ());
        let store = store.clone();
        // Released before anything is said: `say` may be anything.
        drop(state);
        match written {
            Ok(()) => {}
            // Only a store this user cannot write at all (a read-only checkout or mount, or
            // someone else's store) goes unaudited; a log made read-only inside a writable
            // store is a refusal, not a way to switch auditing off.
            Err(Error::Io { cause, .. })
                if matches!(
                    cause.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                ) && !dir_writable(&store) =>
            {
                (self.say)(&format!(
                    "warning: not audited: the store is read-only here ({cause})"
                ));
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Record a failed command (best effort: the command's own error is what matters).
    /// After an `ok` this is a second event, saying what went wrong afterwards.
    pub fn failed(&self, exit: Exit) {
        let state = self.state.borrow();
        let (Some(store), Some(draft)) = (&state.store, &state.draft) else {
            return;
        };
        if let Err(e) = append(store, draft, outcome(exit)) {
            (self.say)(&format!("warning: the failure was not audited: {e}"));
        }
    }
}

/// Actions that only hand out a secret, changing nothing.
fn is_read(action: &str) -> bool {
    matches!(action, "get" | "exec" | "token" | "export")
}

/// Whether this process may create files in `dir`.
fn dir_writable(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(action: &'static str) -> Draft {
        Draft {
            action,
            agent: Some("bot".into()),
            credentials: ["a", "b"].into(),
            program: Some("mybot".into()),
            request: None,
        }
    }

    fn verify(bytes: &[u8]) -> Result<Scan> {
        scan(bytes, |_| Ok(()))
    }

    fn log_of(n: usize) -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..n {
            append(
                dir.path(),
                &draft(if i % 2 == 0 { "get" } else { "exec" }),
                "ok",
            )
            .unwrap();
        }
        let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        (dir, bytes)
    }

    fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn deleted_renumbered(all: &[Vec<u8>], index: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in all.iter().enumerate().filter(|(i, _)| *i != index) {
            let mut event: Event = serde_json::from_slice(l).unwrap();
            if i > index {
                event.seq -= 1;
            }
            out.extend(serde_json::to_vec(&event).unwrap());
            out.push(b'\n');
        }
        out
    }

    fn broken_line(bytes: &[u8]) -> u64 {
        match verify(bytes).unwrap().broken {
            Some(Error::AuditChain { line, .. }) => line,
            other => panic!("expected a break, got {other:?}"),
        }
    }

    proptest::proptest! {
        /// A name list is written exactly as the list of names it was made from.
        #[test]
        fn a_name_list_serializes_as_its_names(names in proptest::collection::vec(".{0,12}", 0..20)) {
            let list: NameList = names.iter().collect();
            proptest::prop_assert_eq!(list.len(), names.len());
            proptest::prop_assert_eq!(list.iter().collect::<Vec<_>>(), names.iter().map(String::as_str).collect::<Vec<_>>());
            proptest::prop_assert_eq!(
                serde_json::to_string(&list).unwrap(),
                serde_json::to_string(&names).unwrap()
            );
        }
    }

    #[test]
    fn appends_chain_and_verify() {
        let (_dir, bytes) = log_of(5);
        let all = lines(&bytes);
        assert_eq!(all.len(), 5);
        let first: Event = serde_json::from_slice(&all[0]).unwrap();
        assert_eq!((first.seq, first.prev.as_str()), (1, GENESIS));
        let second: Event = serde_json::from_slice(&all[1]).unwrap();
        assert_eq!(second.prev, sha256_hex(&all[0]));
        assert_eq!(second.credentials, ["a", "b"]);
        let scan = verify(&bytes).unwrap();
        assert_eq!(scan.lines, 5);
        assert!(scan.broken.is_none());
        assert_eq!(scan.head, sha256_hex(&all[4]));
        assert_eq!(verify(b"").unwrap().head, GENESIS);
    }

    #[test]
    fn edits_deletions_and_moves_are_named() {
        let (_dir, bytes) = log_of(6);
        let all = lines(&bytes);
        let edited: Vec<u8> = all
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                if i == 2 {
                    String::from_utf8(l.clone())
                        .unwrap()
                        .replace("\"get\"", "\"list\"")
                        .into_bytes()
                } else {
                    l.clone()
                }
            })
            .collect();
        assert_eq!(
            broken_line(&edited),
            3,
            "line 4 no longer carries the hash of line 3"
        );
        let deleted: Vec<u8> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .flat_map(|(_, l)| l.clone())
            .collect();
        assert_eq!(broken_line(&deleted), 3);
        let mut moved = all.clone();
        moved.swap(3, 4);
        assert_eq!(broken_line(&moved.concat()), 4);
        // A deletion hidden by renumbering still shows where the hash is missing.
        let renumbered: Vec<u8> = deleted_renumbered(&all, 2);
        assert_eq!(broken_line(&renumbered), 2);
        let truncated = &bytes[..bytes.len() - 5];
        assert_eq!(broken_line(truncated), 6);
        let err = verify(&deleted).unwrap().broken.unwrap().to_string();
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn the_last_line_is_checked_as_an_event_without_keeping_its_names() {
        let line = |credentials: &str| {
            format!(
                r#"{{"seq":4,"time":"t","action":"exec","outcome":"ok","agent":null,"credentials":{credentials},"program":"p","pid":1,"user":"u","prev":"x"}}"#
            )
        };
        for credentials in [
            "[]",
            r#"["a","b\u0041","c\"d"]"#,
            r#"["a",1]"#,
            r#""a""#,
            r#"[["a"]]"#,
            "null",
            r#"["a""#,
        ] {
            let text = line(credentials);
            let whole = serde_json::from_str::<Event>(&text);
            let names = serde_json::from_reader::<_, Event<Names>>(text.as_bytes());
            assert_eq!(whole.is_ok(), names.is_ok(), "{credentials}");
            if let (Ok(whole), Ok(names)) = (whole, names) {
                assert_eq!(whole.seq, names.seq);
            }
        }
        // The hash is the line's, as appending after it chains it.
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{}\n{}\n", line("[]"), line(r#"["a","b"]"#));
        std::fs::write(dir.path().join("log"), &text).unwrap();
        let file = File::open(dir.path().join("log")).unwrap();
        let last = last_line(&file, text.len() as u64).unwrap();
        assert_eq!(last.seq, 4);
        assert_eq!(
            last.hash,
            sha256_hex(format!("{}\n", line(r#"["a","b"]"#)).as_bytes())
        );
        assert!(!last.torn);
    }

    #[test]
    fn a_torn_last_line_is_closed_and_the_chain_goes_on() {
        let (dir, bytes) = log_of(3);
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let get = draft("get");
        let event = append(dir.path(), &get, "ok").unwrap();
        assert_eq!(event.seq, 4);
        let bytes = std::fs::read(&path).unwrap();
        let all = lines(&bytes);
        assert_eq!(all.len(), 4);
        assert_eq!(event.prev, sha256_hex(&all[2]));
        // The damaged line is reported; the one after it chains to it.
        assert_eq!(broken_line(&bytes), 3);
    }

    #[test]
    fn long_lines_are_found_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = draft("exec");
        big.credentials = (0..2000).map(|i| format!("credential-{i}")).collect();
        append(dir.path(), &big, "ok").unwrap();
        append(dir.path(), &big, "ok").unwrap();
        let get = draft("get");
        let event = append(dir.path(), &get, "denied").unwrap();
        assert_eq!(event.seq, 3);
        let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert!(verify(&bytes).unwrap().broken.is_none());
    }

    #[test]
    fn threads_appending_at_once_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..10 {
                        append(dir.path(), &draft("exec"), "ok").unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        let scan = verify(&bytes).unwrap();
        assert_eq!(scan.lines, 80);
        assert!(scan.broken.is_none(), "{:?}", scan.broken);
    }
}
