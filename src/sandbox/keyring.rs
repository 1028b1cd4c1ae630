//! A seccomp filter: no kernel keyring, no typing into the terminal.
//!
//! - `keyctl`, `add_key` and `request_key` fail with EPERM. The unlock cache
//!   ([`crate::crypto::unlock_cache`]) is a key in the session keyring, or, for a process without a
//!   login session, in the per-user session keyring; a fresh session keyring would hide the
//!   first but not the second, which any process of the user may open by its special ID
//!   (`@us`, and `@u` likewise). No keyring at all hides both, whatever the kernel or the
//!   login setup. (Joining a new session keyring also needs a raw `keyctl` call, which
//!   this crate, free of `unsafe`, cannot make.)
//! - `ioctl(TIOCSTI)` (and `TIOCLINUX`, its console cousin) fails with EPERM: it pushes
//!   bytes into the terminal's input queue, so a sandboxed program could type
//!   `agentcred get other-key` for the shell to run after it ends. Kernels from 6.2 may
//!   switch TIOCSTI off (`dev.tty.legacy_tiocsti`), many still have it on.
//!
//! Everything else is allowed. The filter is inherited by every descendant and cannot be
//! removed. A system call made through another architecture's entry (a 32-bit program on
//! a 64-bit kernel) ends the process, the filter's only way to be sure of its numbers.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// `ioctl` requests that inject terminal input.
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

/// x32 system calls on x86_64 carry this bit and have their own numbers for some calls.
#[cfg(target_arch = "x86_64")]
const X32: i64 = 0x4000_0000;

fn arch() -> io::Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| io::Error::other(e.to_string()))
}

/// Whether a filter can be built for this architecture (the kernel's seccomp is checked
/// when it is installed).
pub fn available() -> bool {
    arch().is_ok()
}

fn filter() -> io::Result<BpfProgram> {
    let invalid = |e: seccompiler::BackendError| io::Error::other(e.to_string());
    let ioctl_rule = |request: u64| {
        SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(invalid)
    };
    let ioctl_rules = vec![ioctl_rule(TIOCSTI)?, ioctl_rule(TIOCLINUX)?];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in [libc::SYS_keyctl, libc::SYS_add_key, libc::SYS_request_key] {
        rules.insert(call, Vec::new());
        #[cfg(target_arch = "x86_64")]
        rules.insert(call | X32, Vec::new());
    }
    rules.insert(libc::SYS_ioctl, ioctl_rules.clone());
    // x32's ioctl is number 514, not 16.
    #[cfg(target_arch = "x86_64")]
    rules.insert(514 | X32, ioctl_rules);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .map_err(invalid)?;
    BpfProgram::try_from(filter).map_err(invalid)
}

/// Install the filter on this process (it sets no-new-privs, as seccomp requires).
pub fn deny() -> io::Result<()> {
    let program = filter()?;
    seccompiler::apply_filter(&program).map_err(|e| io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_filter_builds_here() {
        assert!(super::available());
        assert!(!super::filter().unwrap().is_empty());
    }
}
