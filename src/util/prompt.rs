//! Asking a person. Like age, ssh and gpg, a question goes to the terminal even when stdin
//! is a pipe (`printf %s "$KEY" | agentcred add k` with a passphrase identity): the data
//! comes on stdin, the answer from the keyboard through `/dev/tty`. Never in CI, never with
//! `--no-input`, never without a terminal: then the caller fails at once and says what to set.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};

use zeroize::Zeroizing;

/// Whether `CI` is set (to anything but empty, `false` or `0`).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The controlling terminal, when this process has one.
fn tty() -> Option<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
        .filter(|f| f.is_terminal())
}

/// Whether a person can be asked: no `--no-input`, not CI, and a terminal to ask on (stdin,
/// or the controlling terminal when stdin is a pipe).
pub fn may_prompt(no_input: bool) -> bool {
    !no_input && !in_ci() && (io::stdin().is_terminal() || tty().is_some())
}

/// Where to show a question: stderr when it is the terminal, else the terminal itself.
fn term() -> io::Result<dialoguer::console::Term> {
    if io::stderr().is_terminal() {
        return Ok(dialoguer::console::Term::stderr());
    }
    let tty = tty().ok_or_else(|| io::Error::other("there is no terminal to ask on"))?;
    let write = tty.try_clone()?;
    Ok(dialoguer::console::Term::read_write_pair(tty, write))
}

fn answer_error(e: dialoguer::Error) -> io::Error {
    match e {
        dialoguer::Error::IO(e) => e,
    }
}

/// A hidden line (a secret or passphrase). An empty answer is asked again, saying so;
/// with `confirm`, it is asked twice and must match. Three tries, as sudo gives: a
/// terminal that answers nothing (closed, or a script) must not loop forever.
pub fn hidden(prompt: &str, confirm: Option<&str>, what: &str) -> io::Result<Zeroizing<String>> {
    const TRIES: usize = 3;
    let term = term()?;
    for _ in 0..TRIES {
        let first = Zeroizing::new(
            dialoguer::Password::new()
                .with_prompt(prompt)
                .allow_empty_password(true)
                .interact_on(&term)
                .map_err(answer_error)?,
        );
        if first.is_empty() {
            let _ = term.write_line(&format!(
                "{what} is empty: type it (nothing is shown), or press Ctrl-C to stop"
            ));
            continue;
        }
        let Some(again) = confirm else {
            return Ok(first);
        };
        let second = Zeroizing::new(
            dialoguer::Password::new()
                .with_prompt(again)
                .allow_empty_password(true)
                .interact_on(&term)
                .map_err(answer_error)?,
        );
        if *first == *second {
            return Ok(first);
        }
        let _ = term.write_line("the two entries differ; once more");
    }
    Err(io::Error::other(format!(
        "{what} was not given after {TRIES} tries"
    )))
}

/// A yes/no question, answered with Enter (so a typed-ahead `y` is not lost, nor a
/// stray newline taken as the answer to the next question).
pub fn confirm(prompt: &str, default: bool) -> io::Result<bool> {
    let term = term()?;
    dialoguer::Confirm::new()
        .with_prompt(prompt)
        .default(default)
        .wait_for_newline(true)
        .interact_on(&term)
        .map_err(answer_error)
}
