//! Keep secrets out of core dumps while they are in memory: the soft core-size limit goes to
//! zero and, on Linux, the process is marked non-dumpable (which also keeps other processes
//! of the same user from reading its memory through /proc or ptrace).
//!
//! `exec` hands the child the user's own core limit back just before `execve` (or around
//! the spawn, in spawn mode), so the program it runs behaves as it would without agentcred.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The core limit as it was before [`protect`].
pub struct Saved(Rlimit);

pub fn protect() -> Saved {
    let before = getrlimit(Resource::Core);
    no_core(&before);
    #[cfg(target_os = "linux")]
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    Saved(before)
}

impl Saved {
    /// Restore the core limit for a program about to replace this process.
    pub fn restore(&self) {
        let _ = setrlimit(
            Resource::Core,
            Rlimit {
                current: self.0.current,
                maximum: self.0.maximum,
            },
        );
    }

    /// Run `spawn` with the user's core limit, so the child it starts inherits that limit,
    /// then set ours back to zero. `std::process::Command` offers no safe hook to change a
    /// limit in the child alone (`pre_exec` is unsafe, and this crate forbids unsafe), so
    /// this process has the user's limit for the moment of the spawn; on Linux it stays
    /// non-dumpable throughout, so no core of it can be written even then.
    pub fn while_restored<T>(&self, spawn: impl FnOnce() -> T) -> T {
        self.restore();
        let result = spawn();
        no_core(&self.0);
        result
    }
}

fn no_core(limit: &Rlimit) {
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: limit.maximum,
        },
    );
}
