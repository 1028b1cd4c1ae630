//! Keep secrets out of core dumps while they are in memory: the soft core-size limit goes to
//! zero and, on Linux, the process is marked non-dumpable (which also keeps other processes
//! of the same user from reading its memory through /proc or ptrace).
//!
//! `exec` hands the child the user's own core limit back just before `execve`, so the
//! program it runs behaves as it would without agentcred.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The core limit as it was before [`protect`].
pub struct Saved(Rlimit);

pub fn protect() -> Saved {
    let before = getrlimit(Resource::Core);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: before.maximum,
        },
    );
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
}
