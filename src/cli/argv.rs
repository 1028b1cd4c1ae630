//! Secrets typed where an argument goes: `recipients add AGE-SECRET-KEY-1...`,
//! `recipients add "$(cat ~/.ssh/id_ed25519)"`, `add NAME VALUE`. They are recognized
//! before anything can repeat them (clap's own "unexpected argument" error quotes the
//! argument, twice), and never echoed.

use std::ffi::OsString;
use std::io::Write;

use crate::exit::Exit;
use crate::util::output::{looks_like_private_key, looks_secret};

pub const HINT: &str = "agentcred never takes a secret as an argument: pipe the value or use --from-file (a recipient is public: `agentcred identity --public` prints yours)";

/// The arguments agentcred itself reads: those before `--` (after it comes a program's
/// command line, which is not ours to judge).
fn own(args: &[OsString]) -> impl Iterator<Item = String> + '_ {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .map(|a| a.to_string_lossy().into_owned())
}

/// Refuse a private key anywhere among agentcred's own arguments, before parsing.
pub fn refuse_private_keys(args: &[OsString]) -> Option<Exit> {
    if own(args).any(|a| looks_like_private_key(&a)) {
        print_refusal("an argument is a private key (not repeated here)");
        return Some(Exit::Usage);
    }
    None
}

fn print_refusal(what: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {what}");
    let _ = writeln!(err, "hint: {HINT}");
}

/// Print a clap error without repeating an argument that may be a secret: a stray
/// positional (`add NAME VALUE`) is never shown; other errors are shown with anything
/// secret-looking blotted out.
pub fn print_clap_error(e: &clap::Error, args: &[OsString]) {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !e.use_stderr() {
        let _ = e.print();
        return;
    }
    if e.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
    {
        let flag_value = arg.split_once('=').map_or("", |(_, v)| v);
        if !arg.starts_with('-') || looks_secret(arg) || looks_secret(flag_value) {
            print_refusal("unexpected argument (not repeated here: it may be a secret value)");
            return;
        }
    }
    let secrets: Vec<String> = own(args).filter(|a| looks_secret(a)).collect();
    if secrets.is_empty() {
        let _ = e.print();
        return;
    }
    let mut text = e.to_string();
    for secret in &secrets {
        text = text.replace(secret.as_str(), "<redacted>");
    }
    let _ = write!(std::io::stderr().lock(), "{text}");
}

/// `message` with every secret-looking argument of this process blotted out: the last
/// line of defence for errors that quote what was typed.
pub fn scrub(message: &str) -> String {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut text = message.to_string();
    for secret in own(&args).filter(|a| looks_secret(a)) {
        text = text.replace(&secret, "<redacted>");
        text = text.replace(&crate::util::output::escape(&secret), "<redacted>");
    }
    text
}
