//! Run a declared command for the `run` tool and capture what it prints.
//!
//! Unlike `exec`, whose child owns the terminal, this child's output goes to the model: its
//! stdin is `/dev/null` (never the JSON-RPC stream), stdout and stderr are pipes read
//! through the masking engine, each kept up to a cap (the rest is read and dropped, so
//! the child never blocks on a full pipe), and it runs in a process group of its own that
//! is killed when the time runs out.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::scratch::Scratch;
use rustix::process::{Pid, Signal, kill_process_group};

use crate::error::{Error, Result};
use crate::mask::{Patterns, Piece, Redactor};

/// The most of each stream handed to the model.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// How long a command may run.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// What a run produced, masked.
#[derive(Debug)]
pub struct Captured {
    /// The exit code, or `None` when a signal ended it.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
    pub timed_out: bool,
}

/// One stream, masked and capped.
struct Stream {
    kept: Vec<u8>,
    truncated: bool,
}

fn capture(mut source: impl Read, patterns: &Patterns, cap: usize) -> Stream {
    let labels: Vec<Vec<u8>> = patterns
        .labels()
        .iter()
        .map(|label| format!("<agentcred:{label}>").into_bytes())
        .collect();
    let mut stream = Stream {
        kept: Vec::new(),
        truncated: false,
    };
    let mut keep = |piece: Piece<'_>| -> std::result::Result<(), ()> {
        let bytes = match piece {
            Piece::Text(text) => text,
            Piece::Found { label, .. } => &labels[label],
        };
        let room = cap.saturating_sub(stream.kept.len());
        if bytes.len() > room {
            stream.truncated = true;
        }
        stream
            .kept
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        Ok(())
    };
    let mut redactor = Redactor::new(patterns);
    let mut buf = Scratch::new(64 * 1024);
    loop {
        match source.read(buf.space()) {
            Ok(0) => break,
            Ok(n) => {
                let _ = redactor.feed(buf.filled(n), &mut keep);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = redactor.finish(&mut keep);
    stream
}

/// Text for the model: the masked bytes, invalid UTF-8 replaced (masking came first, so
/// the replacement cannot uncover a value).
fn text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Run `program` (already checked against its pin) with `env` as its whole environment.
pub fn run(
    program: &OsStr,
    argv0: &OsStr,
    args: &[OsString],
    env: Vec<(OsString, OsString)>,
    patterns: &Patterns,
    timeout: Duration,
) -> Result<Captured> {
    let mut child = Command::new(program)
        .arg0(argv0)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| crate::exec::program::launch_error(argv0, e))?;
    let group = Pid::from_child(&child);
    let (sender, receiver) = mpsc::channel();
    std::thread::scope(|scope| -> Result<Captured> {
        for (index, pipe) in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .enumerate()
        {
            let sender = sender.clone();
            scope.spawn(move || {
                let stream = match pipe {
                    Some(pipe) => capture(pipe, patterns, MAX_OUTPUT),
                    None => Stream {
                        kept: Vec::new(),
                        truncated: false,
                    },
                };
                let _ = sender.send((index, stream));
            });
        }
        drop(sender);
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    timed_out = true;
                    let _ = kill_process_group(group, Signal::KILL);
                    break child
                        .wait()
                        .map_err(|e| Error::io("cannot wait for the command", e))?;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(Error::io("cannot wait for the command", e)),
            }
        };
        // Whatever the command left running in its group would hold the pipes open.
        let _ = kill_process_group(group, Signal::KILL);
        let mut streams: [Option<Stream>; 2] = [None, None];
        for (index, stream) in receiver.iter() {
            streams[index] = Some(stream);
        }
        let [stdout, stderr] = streams.map(|s| {
            s.unwrap_or(Stream {
                kept: Vec::new(),
                truncated: false,
            })
        });
        Ok(Captured {
            exit_code: status.code(),
            signal: status.signal(),
            truncated: stdout.truncated || stderr.truncated,
            stdout: text(stdout.kept),
            stderr: text(stderr.kept),
            timed_out,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(values: &[(&str, &[u8])]) -> Patterns {
        Patterns::build(values.iter().map(|(n, v)| (n.to_string(), *v)))
            .unwrap()
            .patterns
            .unwrap()
    }

    fn sh(script: &str, env: Vec<(OsString, OsString)>, timeout: Duration) -> Captured {
        run(
            OsStr::new("/bin/sh"),
            OsStr::new("sh"),
            &["-c".into(), script.into()],
            env,
            &patterns(&[("api-key", b"sk-live-0123456789")]),
            timeout,
        )
        .unwrap()
    }

    #[test]
    fn output_is_masked_capped_and_stdin_is_closed() {
        let env = vec![("KEY".into(), "sk-live-0123456789".into())];
        let out = sh(
            "printf 'key=%s\\n' \"$KEY\"; printf '%s' \"$KEY\" | base64 >&2; read x && echo read; exit 3",
            env,
            TIMEOUT,
        );
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout, "key=<agentcred:api-key>\n");
        assert_eq!(out.stderr, "<agentcred:api-key>\n");
        assert!(!out.truncated && !out.timed_out);
        let out = sh("head -c 200000 /dev/zero | tr '\\0' a", vec![], TIMEOUT);
        assert_eq!(out.stdout.len(), MAX_OUTPUT);
        assert!(out.truncated);
    }

    #[test]
    fn a_command_that_runs_too_long_is_killed_with_its_children() {
        let out = sh(
            "sleep 30 & echo started; wait",
            vec![],
            Duration::from_millis(300),
        );
        assert!(out.timed_out);
        assert_eq!(out.signal, Some(9));
        assert_eq!(out.stdout, "started\n");
    }
}
