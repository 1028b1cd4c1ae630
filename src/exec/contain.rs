//! A sandboxed program's processes end with it.
//!
//! A program that leaves a process behind (`setsid sh -c '...' &`, a daemon) would keep
//! its sandbox's rights after agentcred has gone: it could read what the user types on
//! the same terminal later (a passphrase), or the file credentials of a later run, whose
//! directory did not exist when its sandbox was made. So in a sandboxed run agentcred
//! makes itself a *child subreaper* (`PR_SET_CHILD_SUBREAPER`) before it starts the
//! program: whatever the program's processes leave orphaned is re-parented to agentcred,
//! not to init, however it detached (a new session, a double fork). When the program
//! exits, agentcred kills every process still below it ([`sweep`]), and only then lets the
//! output relays finish and exits itself.
//!
//! While the program runs, orphans that exit are reaped as they do ([`reap_orphans`], on
//! SIGCHLD), so a long session does not collect zombies. The program itself is never
//! reaped here: its pid stays its own until [`super::spawn`] has stopped forwarding
//! signals to it.
//!
//! Children are found through `/proc/self/task/TID/children`, or, on a kernel built
//! without it, by reading every process's parent from `/proc/PID/stat`.
//!
//! What this cannot stop: a process that the program hands to another, unsandboxed
//! process of the user to run (which the sandbox's covers of the tmux, screen and systemd
//! sockets are for), and a process that dies only slowly from SIGKILL (in uninterruptible
//! sleep), which agentcred waits for.

use std::io;

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, getpid, kill_process, waitid};

use crate::error::{Error, Result};

/// Make agentcred the reaper of every process the program orphans. Before the program
/// starts; a sandboxed program is not started when this fails.
pub fn start() -> Result<()> {
    rustix::process::set_child_subreaper(Some(getpid())).map_err(|e| Error::SandboxUnavailable {
        reason: format!("cannot make agentcred the reaper of the program's processes: {e}"),
        need: "prctl(PR_SET_CHILD_SUBREAPER) (Linux 3.4)".into(),
    })
}

/// Reap the orphans that have exited, never `program`.
pub fn reap_orphans(program: Pid) {
    for pid in children().into_iter().filter(|&p| p != program) {
        let _ = waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
        );
    }
}

/// Kill and reap every process below agentcred but `program` (which has exited and is
/// reaped by its owner). Each round kills agentcred's children; their own children are
/// re-parented to agentcred as they die, and go in the next round.
pub fn sweep(program: Pid) -> usize {
    let mut killed = 0;
    loop {
        let left: Vec<Pid> = children().into_iter().filter(|&p| p != program).collect();
        if left.is_empty() {
            return killed;
        }
        for &pid in &left {
            if kill_process(pid, Signal::KILL).is_ok() {
                killed += 1;
            }
        }
        for &pid in &left {
            while let Err(rustix::io::Errno::INTR) = waitid(WaitId::Pid(pid), WaitIdOptions::EXITED)
            {
            }
        }
    }
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
    let me = getpid().as_raw_nonzero().get();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid = parse_pid(name.to_str()?)?;
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).ok()?;
            (parent_in_stat(&stat)? == me).then_some(pid)
        })
        .collect()
}

fn parse_pid(text: &str) -> Option<Pid> {
    Pid::from_raw(text.parse().ok()?)
}

/// The parent pid in a `/proc/PID/stat` line: `PID (COMM) STATE PPID ...`, where COMM
/// may hold spaces and parentheses, so the fields are counted from the last `)`.
fn parent_in_stat(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_after_the_last_parenthesis() {
        assert_eq!(parent_in_stat("42 (sh) S 7 42 42 0"), Some(7));
        assert_eq!(parent_in_stat("42 (a) b) (c) R 9 1 1"), Some(9));
        assert_eq!(parent_in_stat("42 (x"), None);
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
