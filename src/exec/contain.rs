//! A sandboxed program's processes end with it.
//!
//! A program that leaves a process behind (`setsid sh -c '...' &`, a daemon) would keep
//! its sandbox's rights after agentcred has gone: it could read what the user types on
//! the same terminal later (a passphrase), or the file credentials of a later run, whose
//! directory did not exist when its sandbox was made. So in a sandboxed run agentcred
//! makes itself a *child subreaper* (`PR_SET_CHILD_SUBREAPER`) before it starts the
//! program ([`Contained::start`]): whatever the program's processes leave orphaned is
//! re-parented to agentcred, not to init, however it detached (a new session, a double
//! fork). When the program has exited and been reaped, agentcred ends every process still
//! below it ([`Contained::sweep`]), and only then lets the output relays finish and exits.
//!
//! The sweep freezes before it kills. Killing agentcred's children one layer at a time
//! loses to a tree that keeps forking (each kill frees a slot that a deeper process fills)
//! and hangs on a killed process that another one traces (its zombie is the tracer's to
//! see first). So every process below agentcred, found through each process's parent in
//! `/proc/PID/stat`, is stopped (SIGSTOP; a stopped process cannot fork), from the top
//! down and again until a pass finds none that still runs; then all of them are killed at
//! once (tracers with the traced), and reaped as they come to agentcred. No step waits on
//! one process, and the whole is bounded ([`SWEEP_LIMIT`]).
//!
//! Processes that were agentcred's children before the program started (`sidecar & exec
//! agentcred exec --sandbox ...`) are not the program's: they are left alone, never
//! signalled and never reaped (a reaped pid could be reused by a process that is not).
//!
//! While the program runs, orphans that exit are reaped as they do
//! ([`Contained::reap_orphans`], on SIGCHLD), so a long session does not collect zombies.
//! The program itself is only reaped by spawn mode (`exec::spawn`), once it has stopped forwarding
//! signals to it.
//!
//! What this cannot stop: a process that the program hands to another, unsandboxed
//! process of the user to run (which the sandbox's covers of the tmux, screen and systemd
//! sockets are for); on Landlock before ABI 6, which cannot keep the program from
//! signalling processes outside its sandbox, a program that stops or kills agentcred
//! itself; and a process that stays in uninterruptible sleep past [`SWEEP_LIMIT`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, getpid, kill_process, waitid};

use crate::error::{Error, Result};

/// How long [`Contained::sweep`] keeps at it before it gives up and says so.
pub const SWEEP_LIMIT: Duration = Duration::from_secs(10);

/// agentcred as the reaper of a sandboxed program's processes.
pub struct Contained {
    /// agentcred's children from before the program started, not the program's.
    inherited: BTreeSet<i32>,
}

/// What a sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Processes that were still running and were killed.
    pub killed: usize,
    /// Processes that had not ended when the sweep gave up (after [`SWEEP_LIMIT`]).
    pub left: usize,
}

impl Contained {
    /// Make agentcred the reaper of every process the program orphans. Before the program
    /// starts; a sandboxed program is not started when this fails.
    pub fn start() -> Result<Contained> {
        rustix::process::set_child_subreaper(Some(getpid())).map_err(|e| {
            Error::SandboxUnavailable {
                reason: format!("cannot make agentcred the reaper of the program's processes: {e}"),
                need: "prctl(PR_SET_CHILD_SUBREAPER) (Linux 3.4)".into(),
            }
        })?;
        Ok(Contained {
            inherited: children().iter().map(|p| raw(*p)).collect(),
        })
    }

    /// Reap the orphans that have exited, never `program` nor an inherited child.
    pub fn reap_orphans(&self, program: Pid) {
        for pid in children() {
            if pid != program && !self.inherited.contains(&raw(pid)) {
                let _ = waitid(
                    WaitId::Pid(pid),
                    WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
                );
            }
        }
    }

    /// End every process below agentcred but the inherited ones; the program has been
    /// reaped already. See the module docs.
    pub fn sweep(&self) -> Swept {
        let mut swept = Swept::default();
        // The common case, without reading all of /proc: nothing left. Every process
        // below agentcred descends from one of its children (orphans come to agentcred).
        if children().iter().all(|p| self.inherited.contains(&raw(*p))) {
            return swept;
        }
        let me = raw(getpid());
        let deadline = Instant::now() + SWEEP_LIMIT;
        // Those sent SIGSTOP: one in uninterruptible sleep (`D`) stops before it runs any
        // code of its own again, so it counts as frozen.
        let mut sent_stop: BTreeSet<i32> = BTreeSet::new();
        let mut killed: BTreeSet<i32> = BTreeSet::new();
        loop {
            let below = descendants(&processes(), me, &self.inherited);
            if below.is_empty() {
                return swept;
            }
            let late = Instant::now() > deadline;
            // Freeze, top down: a process that still runs may fork; stop it and look again.
            let running: Vec<i32> = below
                .iter()
                .filter(|(pid, state)| may_fork(*state, sent_stop.contains(pid)))
                .map(|(pid, _)| *pid)
                .collect();
            if running.is_empty() || late {
                // All frozen (or dead): none can fork, so none is missed; or out of time.
                // Kill them all (a zombie leader may still have running threads). Any
                // that a kill orphans or that slipped by are found on the next pass.
                for (pid, state) in &below {
                    if let Some(p) = Pid::from_raw(*pid)
                        && kill_process(p, Signal::KILL).is_ok()
                        && !gone(*state)
                    {
                        killed.insert(*pid);
                    }
                }
                swept.killed = killed.len();
                if late {
                    swept.left = below.iter().filter(|(_, s)| !gone(*s)).count();
                    return swept;
                }
            } else {
                for pid in running {
                    if let Some(p) = Pid::from_raw(pid) {
                        let _ = kill_process(p, Signal::STOP);
                        sent_stop.insert(pid);
                    }
                }
            }
            // Reap what has come to agentcred; the rest comes as its parents die.
            for pid in children() {
                if !self.inherited.contains(&raw(pid)) {
                    let _ = waitid(
                        WaitId::Pid(pid),
                        WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
                    );
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn raw(pid: Pid) -> i32 {
    pid.as_raw_nonzero().get()
}

/// A zombie or a dead process: nothing to stop or kill, only to reap.
fn gone(state: u8) -> bool {
    matches!(state, b'Z' | b'X' | b'x')
}

fn stopped(state: u8) -> bool {
    matches!(state, b'T' | b't')
}

/// Whether a process in `state` may still run code of its own, and so fork: not when it
/// is gone or stopped, nor when it sleeps uninterruptibly (`D`) with a SIGSTOP sent,
/// which it takes before it runs anything again.
fn may_fork(state: u8, sent_stop: bool) -> bool {
    let frozen = stopped(state) || state == b'D' && sent_stop;
    !gone(state) && !frozen
}

/// Every process: its parent and its state, from `/proc/PID/stat`.
fn processes() -> BTreeMap<i32, (i32, u8)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid: i32 = name.to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_stat(&stat)?))
        })
        .map(|(pid, (state, parent))| (pid, (parent, state)))
        .collect()
}

/// The processes below `root` (with their states), parents before their children,
/// leaving out `skip` (the inherited children) and everything below them.
fn descendants(
    table: &BTreeMap<i32, (i32, u8)>,
    root: i32,
    skip: &BTreeSet<i32>,
) -> Vec<(i32, u8)> {
    let mut by_parent: BTreeMap<i32, Vec<(i32, u8)>> = BTreeMap::new();
    for (&pid, &(parent, state)) in table {
        by_parent.entry(parent).or_default().push((pid, state));
    }
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([root]);
    while let Some(parent) = queue.pop_front() {
        for &(pid, state) in by_parent.get(&parent).into_iter().flatten() {
            if pid == root || (parent == root && skip.contains(&pid)) {
                continue;
            }
            out.push((pid, state));
            queue.push_back(pid);
        }
    }
    out
}

/// agentcred's children, zombies included.
fn children() -> Vec<Pid> {
    from_task_files().unwrap_or_else(|_| from_stat_files())
}

/// `/proc/self/task/TID/children` of every thread (an orphan is re-parented to any of
/// them). An error when the kernel has no such files.
fn from_task_files() -> io::Result<Vec<Pid>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let text = std::fs::read_to_string(task?.path().join("children"))?;
        out.extend(text.split_ascii_whitespace().filter_map(parse_pid));
    }
    out.sort_by_key(|p| p.as_raw_nonzero());
    out.dedup();
    Ok(out)
}

/// Every process whose parent is agentcred, from `/proc/PID/stat`.
fn from_stat_files() -> Vec<Pid> {
    let me = raw(getpid());
    processes()
        .into_iter()
        .filter(|(_, (parent, _))| *parent == me)
        .filter_map(|(pid, _)| Pid::from_raw(pid))
        .collect()
}

fn parse_pid(text: &str) -> Option<Pid> {
    Pid::from_raw(text.parse().ok()?)
}

/// The state and parent pid in a `/proc/PID/stat` line: `PID (COMM) STATE PPID ...`,
/// where COMM may hold spaces and parentheses, so the fields are counted from the last
/// `)`.
fn parse_stat(stat: &str) -> Option<(u8, i32)> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    Some((state, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_after_the_last_parenthesis() {
        assert_eq!(parse_stat("42 (sh) S 7 42 42 0"), Some((b'S', 7)));
        assert_eq!(parse_stat("42 (a) b) (c) T 9 1 1"), Some((b'T', 9)));
        assert_eq!(parse_stat("42 (x"), None);
    }

    #[test]
    fn which_processes_may_still_fork() {
        for state in [b'R', b'S', b'D', b'I'] {
            assert!(may_fork(state, false), "{}", state as char);
        }
        assert!(may_fork(b'S', true), "a SIGSTOP sent is not yet taken");
        assert!(!may_fork(b'D', true));
        for state in [b'T', b't', b'Z', b'X'] {
            assert!(!may_fork(state, false), "{}", state as char);
        }
    }

    #[test]
    fn descendants_come_parents_first_and_skip_inherited_subtrees() {
        // 1 is agentcred; 2 inherited (with child 5); 3 the program's orphan, with 4
        // below it and 6 below 4; 7 someone else's.
        let table: BTreeMap<i32, (i32, u8)> = [
            (2, (1, b'S')),
            (3, (1, b'R')),
            (4, (3, b'S')),
            (5, (2, b'S')),
            (6, (4, b'Z')),
            (7, (99, b'S')),
        ]
        .into_iter()
        .collect();
        let skip = BTreeSet::from([2]);
        let got = descendants(&table, 1, &skip);
        assert_eq!(got, vec![(3, b'R'), (4, b'S'), (6, b'Z')]);
    }

    #[test]
    fn both_ways_find_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = Pid::from_child(&child);
        let stat = from_stat_files();
        let tasks = from_task_files();
        let _ = child.kill();
        let _ = child.wait();
        assert!(stat.contains(&pid), "{stat:?}");
        // The task files exist on every kernel CI runs on.
        assert!(tasks.unwrap().contains(&pid));
    }
}
