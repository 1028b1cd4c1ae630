//! Spawn mode (README, "Spawn mode"): run the program as a child when something must happen
//! after it ends (file credentials to remove) or while it runs (`--mask`).
//!
//! agentcred stays in front of the child, so it must pass on what would have reached the
//! child had it run directly:
//!
//! - **Signals.** SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH sent to
//!   agentcred are forwarded to the child. The one exception avoids delivering a signal
//!   twice: a signal the *kernel* generated (`si_code == SI_KERNEL`: Ctrl-C, Ctrl-\, a
//!   terminal hang-up or resize) went to the terminal's whole foreground process group, and
//!   a child without its own pseudo-terminal is in agentcred's process group, so it has its
//!   copy already and is not sent another. A signal sent by a process with kill(2) reached
//!   agentcred alone and is forwarded. (A signal sent to the whole group, `kill -TERM -PGID`,
//!   reaches both, and so the child twice; a shell's Ctrl-C does not.) A child on its own
//!   pseudo-terminal (below) is in its own session, so everything is forwarded to it, except
//!   a terminal resize, which is passed on by resizing its terminal (the kernel then
//!   signals it).
//! - **The exit status.** agentcred exits with the child's code, or 128+N when a signal N
//!   killed it, after cleaning up.
//! - **Terminals.** Without `--mask` the child's stdin, stdout and stderr are agentcred's
//!   own. With it, stdout and stderr go through [`crate::mask`]; when either is a terminal
//!   the child gets a pseudo-terminal there instead of a pipe, so it still sees a terminal
//!   (colors, progress bars, full-screen programs, window size) and its output is masked on
//!   its way to the real one. A sandboxed child gets a pseudo-terminal the same way (its
//!   output copied as it is, without `--mask`), so that nothing it leaves behind holds the
//!   real terminal (see `contain`). When stdin is that terminal too and agentcred is in the
//!   foreground, the real terminal is put in raw mode while the child runs (keys, Ctrl-C
//!   included, go to the child's terminal as typed) and restored afterwards; Ctrl-Z
//!   suspends the child and agentcred together (see [`relay_input`] and [`wait`]).
//!
//! Output left in a pipe when the child exits is relayed until end of file; when a
//! grandchild keeps the pipe open and stays silent for [`LINGER`], agentcred stops waiting.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use pty_process::blocking::{Pts, Pty};
use rustix::process::{
    Pid, Signal, WaitId, WaitIdOptions, getpgrp, getpid, kill_process, kill_process_group, waitid,
};
use rustix::termios::{
    LocalModes, OptionalActions, SpecialCodeIndex, Termios, isatty, tcgetattr, tcgetpgrp, tcsetattr,
};
use signal_hook::consts::signal::{
    SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::{Cause, Origin};
use zeroize::{Zeroize, Zeroizing};

use super::child::Child;
use super::contain::Contained;
use crate::error::{Error, Result};
use crate::mask::{Patterns, Piece, Redactor, Unready};
use crate::util::hardening::Saved;
use crate::util::scratch::Scratch;

/// The signals passed on to the child.
pub const FORWARDED: [i32; 7] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

/// How long output may stay silent after the child has exited before agentcred stops
/// waiting for the end of a pipe that a grandchild still holds.
pub const LINGER: Duration = Duration::from_millis(500);

/// Read size for masked streams: large enough that searching, not system calls, is the
/// cost, small enough to stay in cache.
const CHUNK: usize = 1024 * 1024;

/// Forwarded signals, caught from the moment this exists. Create it before writing
/// anything that must be cleaned up, so a SIGTERM cannot end agentcred in between: a signal
/// caught before the child starts is passed on as soon as it does.
/// In a sandboxed run SIGCHLD is caught too, to reap the orphans that
/// agentcred, their reaper, inherits ([`super::contain`]).
pub struct Signals {
    caught: SignalsInfo<WithOrigin>,
    contain: bool,
}

impl Signals {
    pub fn catch(contain: bool) -> Result<Signals> {
        let mut signals = FORWARDED.to_vec();
        if contain {
            signals.push(SIGCHLD);
        }
        SignalsInfo::<WithOrigin>::new(signals)
            .map(|caught| Signals { caught, contain })
            .map_err(|e| Error::io("cannot set up signal forwarding", e))
    }
}

/// The program to run.
pub struct Program<'a> {
    /// The file to run.
    pub program: &'a OsStr,
    /// Its `argv[0]`, as the user typed it; errors name this.
    pub argv0: &'a OsStr,
    pub args: &'a [OsString],
    pub env: Vec<(OsString, OsString)>,
}

/// Which of agentcred's standard streams are terminals.
#[derive(Clone, Copy)]
struct Terminals {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl Terminals {
    fn detect() -> Self {
        Terminals {
            stdin: isatty(io::stdin()),
            stdout: isatty(io::stdout()),
            stderr: isatty(io::stderr()),
        }
    }

    /// The terminal the child's output is shown on: its size is the one to copy.
    fn output(self) -> Option<OwnedFd> {
        let fd = if self.stdout {
            io::stdout().as_fd().try_clone_to_owned()
        } else if self.stderr {
            io::stderr().as_fd().try_clone_to_owned()
        } else {
            return None;
        };
        fd.ok()
    }
}

/// Run the program, forwarding signals and (with `mask`) masking its output; return the
/// exit code agentcred should end with.
pub fn run(
    signals: Signals,
    command: Program<'_>,
    mask: Option<Unready>,
    core_limit: &Saved,
    verbose: bool,
) -> Result<i32> {
    let contained = if signals.contain {
        Some(Arc::new(Contained::start()?))
    } else {
        None
    };
    let terminals = Terminals::detect();
    // A sandboxed program gets a terminal of its own too: then nothing it leaves behind
    // holds the real one, where the user may type a passphrase while the run is suspended.
    let use_pty = (mask.is_some() || contained.is_some()) && (terminals.stdout || terminals.stderr);
    // Without masking, streams that are not terminals go to the program as they are.
    let other_output = || {
        if mask.is_some() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        }
    };
    let Program {
        program,
        argv0,
        args,
        env,
    } = command;
    let (child, pty) = if use_pty {
        let (pty, pts) = pty_process::blocking::open().map_err(|e| pty_error(&e))?;
        let screen = terminals.output();
        copy_terminal(terminals, screen.as_ref(), &pts, &pty);
        let mut cmd = pty_process::blocking::Command::new(program)
            .arg0(argv0)
            .args(args)
            .env_clear();
        // The command keeps its own copy of each variable: ours is wiped as it is handed
        // over, so that the environment is not held twice more (10,000 credentials: 1.3 MB).
        for (key, value) in env {
            cmd = cmd.env(key, &value);
            value.into_vec().zeroize();
        }
        if !terminals.stdin {
            cmd = cmd.stdin(Stdio::inherit());
        }
        if !terminals.stdout {
            cmd = cmd.stdout(other_output());
        }
        if !terminals.stderr {
            cmd = cmd.stderr(other_output());
        }
        let child = core_limit.while_restored(|| cmd.spawn(pts));
        let child = child.map_err(|e| match e {
            pty_process::Error::Io(e) => crate::exec::program::launch_error(argv0, e),
            other => pty_error(&other),
        })?;
        (Child::from_std(child), Some((Arc::new(pty), screen)))
    } else {
        // posix_spawn from one wiped copy of the environment (see `child`).
        let child = core_limit
            .while_restored(|| super::child::spawn(program, argv0, args, env, mask.is_some()));
        (
            child.map_err(|e| crate::exec::program::launch_error(argv0, e))?,
            None,
        )
    };
    // The child's copy of the environment is freed (and, without a terminal, wiped): the
    // search is made now (the program's output waits in its pipe or terminal meanwhile).
    let mask = mask.map(|unready| Arc::new(unready.finish()));
    let pid = child.pid;
    let exited = Arc::new(Mutex::new(false));
    let handle = signals.caught.handle();
    {
        let exited = Arc::clone(&exited);
        let resize = pty
            .as_ref()
            .and_then(|(pty, screen)| Some((Arc::clone(pty), screen.as_ref()?.try_clone().ok()?)));
        // Say what happens to each signal with -v, unless the terminal is in raw mode.
        let verbose = verbose && pty.is_none();
        let own_session = pty.is_some();
        let contained = contained.clone();
        thread::spawn(move || {
            forward(
                signals,
                pid,
                &exited,
                contained.as_deref(),
                own_session,
                resize,
                verbose,
            );
        });
    }
    let mut relays = Relays::default();
    let mut raw_mode = None;
    let patterns = mask.as_ref();
    let Child {
        pid: _,
        stdout,
        stderr,
    } = child;
    // Piped only to be masked.
    if let Some(out) = stdout {
        // A bigger pipe means fewer, larger reads (Linux lets anyone have 1 MiB).
        let _ = rustix::pipe::fcntl_setpipe_size(&out, 1 << 20);
        relays.start(
            File::from(out),
            io::stdout().as_fd().try_clone_to_owned(),
            patterns,
        );
    }
    if let Some(err) = stderr {
        relays.start(
            File::from(err),
            io::stderr().as_fd().try_clone_to_owned(),
            patterns,
        );
    }
    if let Some((pty, _)) = &pty {
        let screen = if terminals.stdout {
            io::stdout().as_fd().try_clone_to_owned()
        } else {
            io::stderr().as_fd().try_clone_to_owned()
        };
        relays.start(PtyReader(Arc::clone(pty)), screen, patterns);
        if terminals.stdin && in_foreground() {
            raw_mode = RawMode::enter();
            let pty = Arc::clone(pty);
            thread::spawn(move || relay_input(&pty));
        }
    }
    let status = wait(
        pid,
        &exited,
        relays,
        &mut raw_mode,
        contained.as_deref(),
        verbose,
    );
    drop(raw_mode);
    handle.close();
    Ok(exit_code(status?))
}

/// Wait for the child to exit and stop forwarding signals to it; only then reap it (so its
/// pid cannot be reused while a signal is on its way). In a sandboxed run, end what it
/// left behind ([`Contained::sweep`]); then let the relays finish.
///
/// With the real terminal in raw mode, Ctrl-Z reaches the child's terminal and stops the
/// child, not agentcred; so when the child stops, agentcred gives the terminal back and
/// stops itself, and when the shell continues it (`fg`), takes the terminal again and
/// continues the child, as `sudo` does with its pseudo-terminal.
fn wait(
    pid: Pid,
    exited: &Mutex<bool>,
    relays: Relays,
    raw_mode: &mut Option<RawMode>,
    contained: Option<&Contained>,
    verbose: bool,
) -> Result<ExitStatus> {
    let mut options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
    if raw_mode.is_some() {
        options |= WaitIdOptions::STOPPED;
    }
    loop {
        match waitid(WaitId::Pid(pid), options) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("cannot wait for the program", e.into())),
            Ok(Some(status)) if status.stopped() => {
                // Take the stop report, so the next wait waits.
                let _ = waitid(
                    WaitId::Pid(pid),
                    WaitIdOptions::STOPPED | WaitIdOptions::NOHANG,
                );
                *raw_mode = None;
                let _ = kill_process(getpid(), Signal::TSTP);
                // Continued: in the foreground again (`fg`), or in the background (`bg`).
                if in_foreground() {
                    *raw_mode = RawMode::enter();
                }
                // Its whole process group: what it runs in the foreground (`sh -c 'sleep
                // 100'`) was stopped with it and must go on with it.
                let _ = kill_process_group(pid, Signal::CONT);
                let _ = kill_process(pid, Signal::CONT);
            }
            Ok(_) => break,
        }
    }
    *exited.lock().unwrap_or_else(PoisonError::into_inner) = true;
    // Nothing is sent to the program any more (the flag above, under its lock): reap it,
    // then end what it left behind, before its output is waited for (a process left
    // holding a pipe would otherwise hold the relays for `LINGER`).
    let status = super::child::reap(pid).map_err(|e| Error::io("cannot wait for the program", e));
    if let Some(contained) = contained {
        let swept = contained.sweep();
        if verbose && swept.killed > 0 {
            eprintln!(
                "agentcred: ended {} process{} the sandboxed program left behind",
                swept.killed,
                if swept.killed == 1 { "" } else { "es" }
            );
        }
        if swept.left > 0 {
            eprintln!(
                "warning: {} process{} the sandboxed program left behind did not end within {} s",
                swept.left,
                if swept.left == 1 { "" } else { "es" },
                super::contain::SWEEP_LIMIT.as_secs()
            );
        }
    }
    relays.finish();
    status
}

/// The exit code for a child's status: its own code, or 128+N when signal N killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn pty_error(e: &pty_process::Error) -> Error {
    Error::io(
        "cannot open a pseudo-terminal for the program",
        io::Error::other(e.to_string()),
    )
}

/// Whether agentcred's process group is its terminal's foreground group (a background
/// job must not touch the terminal's settings).
fn in_foreground() -> bool {
    tcgetpgrp(io::stdin()).is_ok_and(|pgrp| pgrp == getpgrp())
}

/// Give the child's terminal the settings of the real one (line discipline, special keys)
/// and its size.
fn copy_terminal(terminals: Terminals, screen: Option<&OwnedFd>, pts: &Pts, pty: &Pty) {
    let settings = if terminals.stdin {
        tcgetattr(io::stdin())
    } else if let Some(screen) = screen {
        tcgetattr(screen)
    } else {
        return;
    };
    if let Ok(settings) = settings {
        let _ = tcsetattr(pts, OptionalActions::Now, &settings);
    }
    if let Some(screen) = screen {
        copy_size(screen.as_fd(), pty);
    }
}

fn copy_size(screen: BorrowedFd<'_>, pty: &Pty) {
    if let Ok(size) = rustix::termios::tcgetwinsize(screen) {
        let _ = rustix::termios::tcsetwinsize(pty, size);
    }
}

/// Pass signals on until the child has exited (see the module docs for the rule).
fn forward(
    mut signals: Signals,
    pid: Pid,
    exited: &Mutex<bool>,
    contained: Option<&Contained>,
    own_session: bool,
    resize: Option<(Arc<Pty>, OwnedFd)>,
    verbose: bool,
) {
    for Origin { signal, cause, .. } in signals.caught.forever() {
        if signal == SIGCHLD {
            // Under the lock, and only until the program has exited: from then on
            // `contain::sweep` owns the orphans, and a pid reaped here behind its back
            // could be reused by a process it then kills.
            let exited = exited.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(contained) = contained
                && !*exited
            {
                contained.reap_orphans(pid);
            }
            continue;
        }
        let from_kernel = cause == Cause::Kernel;
        if signal == SIGWINCH
            && let Some((pty, screen)) = &resize
        {
            copy_size(screen.as_fd(), pty);
        }
        let name = signal_name(signal);
        // The kernel signalled the terminal's foreground group: a child in our group has
        // it already; a child on its own terminal gets a resize from that terminal.
        if from_kernel && (!own_session || signal == SIGWINCH) {
            if verbose {
                eprintln!(
                    "agentcred: {name} came from the terminal, which sent it to the program too"
                );
            }
            continue;
        }
        let exited = exited.lock().unwrap_or_else(PoisonError::into_inner);
        if !*exited && let Some(signal) = Signal::from_named_raw(signal) {
            let sent = kill_process(pid, signal);
            if verbose && sent.is_ok() {
                eprintln!("agentcred: passed {name} on to the program");
            }
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        SIGQUIT => "SIGQUIT",
        SIGUSR1 => "SIGUSR1",
        SIGUSR2 => "SIGUSR2",
        SIGWINCH => "SIGWINCH",
        _ => "a signal",
    }
}

/// The real terminal in raw mode, restored on drop.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let saved = tcgetattr(io::stdin()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(io::stdin(), OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// Keys from the real terminal to the child's, unchanged (they are not output), except
/// the suspend key (Ctrl-Z) while the child's terminal generates signals.
///
/// The child leads its own session (it must, to own its terminal), so its process group
/// is orphaned in POSIX terms, and the kernel ignores terminal stop signals (SIGTSTP)
/// sent to it: Ctrl-Z would do nothing. So agentcred does what the terminal would have
/// done, with SIGSTOP, which is never ignored; [`wait`] then suspends agentcred too. A
/// full-screen program reads its keys raw and gets Ctrl-Z as a key, as it would anyway.
fn relay_input(pty: &Pty) {
    let mut buf = Zeroizing::new(vec![0u8; 4096]);
    let mut stdin = io::stdin().lock();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut keys = &buf[..n];
        while let Some(at) = suspend_key(pty).and_then(|key| memchr::memchr(key, keys)) {
            if (&*pty).write_all(&keys[..at]).is_err() {
                return;
            }
            if let Ok(group) = tcgetpgrp(pty) {
                let _ = kill_process_group(group, Signal::STOP);
            }
            keys = &keys[at + 1..];
        }
        if (&*pty).write_all(keys).is_err() {
            return;
        }
    }
}

/// The child's terminal's suspend key, when it has one and generates signals.
fn suspend_key(pty: &Pty) -> Option<u8> {
    let settings = tcgetattr(pty).ok()?;
    let key = settings.special_codes[SpecialCodeIndex::VSUSP];
    (settings.local_modes.contains(LocalModes::ISIG) && key != 0).then_some(key)
}

struct PtyReader(Arc<Pty>);

impl Read for PtyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (&*self.0).read(buf) {
            // Linux reports the other side closed (the child and everything it started
            // have exited) as EIO.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => Ok(0),
            other => other,
        }
    }
}

/// The threads copying masked output, and how to tell whether they are still busy.
#[derive(Default)]
struct Relays {
    running: usize,
    done: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
    progress: Arc<Progress>,
}

#[derive(Default)]
struct Progress {
    /// Reads and writes done, to tell silence from slow progress.
    events: AtomicU64,
    /// Relays blocked writing (a slow reader downstream is progress, not silence).
    writing: AtomicUsize,
}

impl Relays {
    fn start(
        &mut self,
        source: impl Read + Send + 'static,
        sink: io::Result<OwnedFd>,
        patterns: Option<&Arc<Patterns>>,
    ) {
        let Ok(sink) = sink else {
            return;
        };
        let (done, _) = self.done.get_or_insert_with(mpsc::channel);
        let done = done.clone();
        let patterns = patterns.cloned();
        let progress = Arc::clone(&self.progress);
        self.running += 1;
        thread::spawn(move || {
            let _ = relay(source, File::from(sink), patterns.as_deref(), &progress);
            let _ = done.send(());
        });
    }

    /// Wait for every relay to reach end of file, or for [`LINGER`] of silence.
    fn finish(mut self) {
        let Some((sender, done)) = self.done.take() else {
            return;
        };
        drop(sender);
        let progress = &self.progress;
        let mut last = progress.events.load(Ordering::Relaxed);
        let mut quiet_since = Instant::now();
        while self.running > 0 {
            match done.recv_timeout(Duration::from_millis(50)) {
                Ok(()) => self.running -= 1,
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    let now = progress.events.load(Ordering::Relaxed);
                    if now != last || progress.writing.load(Ordering::Relaxed) > 0 {
                        last = now;
                        quiet_since = Instant::now();
                    } else if quiet_since.elapsed() >= LINGER {
                        return;
                    }
                }
            }
        }
    }
}

/// Copy `source` to `sink`, masking every value (with `patterns`). A write error (a
/// closed pipe downstream) ends the copy and closes `source`, so the child sees its own
/// broken pipe.
fn relay(
    source: impl Read,
    mut sink: File,
    patterns: Option<&Patterns>,
    progress: &Progress,
) -> io::Result<()> {
    let Some(patterns) = patterns else {
        return pump(source, progress, |chunk| sink.write_all(chunk));
    };
    // Made when needed: with 10,000 values, one per label would be 1 MB per relay.
    let mut replacement = Vec::new();
    let mut write = |piece: Piece<'_>| -> io::Result<()> {
        match piece {
            Piece::Text(text) => sink.write_all(text),
            Piece::Found { label, .. } => {
                replacement.clear();
                write!(replacement, "<agentcred:{}>", &patterns.labels()[label])?;
                sink.write_all(&replacement)
            }
        }
    };
    let mut redactor = Redactor::new(patterns);
    pump(source, progress, |chunk| redactor.feed(chunk, &mut write))?;
    redactor.finish(&mut write)
}

/// Read `source` to its end, handing each chunk to `each`, and count both for
/// [`Relays::finish`] (a relay blocked writing is progress, not silence).
fn pump(
    mut source: impl Read,
    progress: &Progress,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = Scratch::new(CHUNK);
    loop {
        let n = match source.read(buf.space()) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        progress.events.fetch_add(1, Ordering::Relaxed);
        progress.writing.fetch_add(1, Ordering::Relaxed);
        let written = each(buf.filled(n));
        progress.writing.fetch_sub(1, Ordering::Relaxed);
        progress.events.fetch_add(1, Ordering::Relaxed);
        written?;
    }
}
