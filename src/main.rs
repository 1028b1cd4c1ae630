//! The `agentcred` binary: everything happens in the library.
//!
//! On Linux with glibc the C `main` is this file's own (`no_main`) instead of Rust's
//! runtime start: that start reads `/proc/self/maps` (glibc's `pthread_getattr_np`, to
//! place the main thread's stack guard) and sets up an alternate signal stack, about
//! 0.1 ms of every command on the test VM, a tenth of what `exec` may add over `env`
//! (docs/performance.md). What that start does and agentcred needs is done here, as std
//! does it: standard descriptors that are closed are opened on `/dev/null` (so no file
//! opened later becomes stdout), SIGPIPE is ignored (a write to a closed pipe is an
//! error to report, not a kill), a panic exits with 101, and stdout is flushed at exit.
//! What is left out is the message on a stack overflow: the process still dies there
//! (SIGSEGV on the kernel's guard gap), only without saying so. Arguments need nothing:
//! std reads them from glibc's constructor arguments in either case.
//!
//! The two unsafe items below are the whole of the crate's unsafe code; the library
//! forbids it.
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu"), no_main)]

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(agentcred::cli::main())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the C runtime calls this by its name
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    open_closed_standard_descriptors();
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code of ours in a
    // handler; no other thread exists yet.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = std::panic::catch_unwind(agentcred::cli::main).unwrap_or(101);
    // Flushes stdout, as a return from Rust's `main` does.
    std::process::exit(code.into())
}

/// What std does before `main`: a closed descriptor 0, 1 or 2 is opened on `/dev/null`,
/// so that no file agentcred opens later becomes its stdin, stdout or stderr (a value
/// printed to a stdout that is the audit log). A file opened now takes the lowest free
/// number: while that is 0, 1 or 2, it filled a closed one and stays open; the first
/// above 2 is closed again. Where `/dev/null` cannot be opened (a bare chroot), the hole
/// is filled with a path-only descriptor of `/`, which can be neither read nor written
/// (std's stdout takes that as a closed stdout: what is printed goes nowhere); if not
/// even that opens, the process aborts, as std's start does.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn open_closed_standard_descriptors() {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::{AsRawFd, OwnedFd};
    let fill = || -> std::io::Result<OwnedFd> {
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null");
        match null {
            Ok(file) => Ok(file.into()),
            Err(_) => Ok(rustix::fs::open(
                "/",
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )?),
        }
    };
    loop {
        match fill() {
            Ok(fd) if fd.as_raw_fd() > 2 => return,
            Ok(fd) => {
                // Kept across `exec`, as std's is: the program run then has it too.
                let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty());
                std::mem::forget(fd);
            }
            // No descriptor free at all: 0, 1 and 2 are among those in use, or beyond
            // the limit, where no file can take them either.
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return,
            Err(_) => std::process::abort(),
        }
    }
}
