//! Shell completion: static for commands and flags, dynamic for credential and agent names.
//!
//! The shell scripts (`agentcred completions SHELL`, also checked in under `completions/`)
//! call back into `agentcred` with `AGENTCRED_COMPLETE=SHELL` set, and clap_complete's engine
//! answers from the same `clap::Command` as the parser. Names come from the manifest's table
//! headers alone: completing never unlocks an identity, decrypts, or prompts.
//!
//! Completers are attached here, by subcommand path and argument id, rather than on each
//! `Args` struct, so one table shows what completes to what.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::Command;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

/// The environment variable that switches the binary into completion mode.
pub const ENV_COMPLETE: &str = "AGENTCRED_COMPLETE";

/// Arguments whose values are credential names (comma-separated lists complete per item).
const CREDENTIAL_ARGS: &[(&[&str], &str)] = &[
    (&["get"], "name"),
    (&["show"], "name"),
    (&["rm"], "name"),
    (&["edit"], "name"),
    (&["rename"], "old"),
    (&["rotate"], "name"),
    (&["token"], "name"),
    (&["login"], "name"),
    (&["add"], "name"),
    (&["exec"], "only"),
    (&["export"], "only"),
    (&["agent", "add"], "allow"),
    (&["agent", "grant"], "credentials"),
    (&["agent", "revoke"], "credentials"),
];

/// Arguments whose values are agent names.
const AGENT_ARGS: &[(&[&str], &str)] = &[
    (&["exec"], "agent"),
    (&["export"], "agent"),
    (&["list"], "agent"),
    (&["audit"], "agent"),
    (&["agent", "show"], "name"),
    (&["agent", "rm"], "name"),
    (&["agent", "grant"], "name"),
    (&["agent", "revoke"], "name"),
    (&["agent", "command", "add"], "agent"),
    (&["agent", "command", "rm"], "agent"),
    (&["mcp"], "agent"),
];

/// The parser's command (`cli`, given by the caller so that this module need not know the
/// parser) with value completers attached.
pub fn command(cli: Command) -> Command {
    let mut cmd = cli;
    // `recipients rm`: the store's recipients, an SSH key by its fingerprint (no spaces).
    cmd = attach(cmd, &["recipients", "rm"], "recipient", || {
        ArgValueCompleter::new(recipients)
    });
    for (path, arg) in CREDENTIAL_ARGS {
        cmd = attach(cmd, path, arg, || {
            ArgValueCompleter::new(|current: &OsStr| names(current, "credentials"))
        });
    }
    for (path, arg) in AGENT_ARGS {
        cmd = attach(cmd, path, arg, || {
            ArgValueCompleter::new(|current: &OsStr| names(current, "agents"))
        });
    }
    cmd
}

/// Attach a completer to `path`'s argument `arg`, when both exist.
fn attach(
    cmd: Command,
    path: &[&str],
    arg: &str,
    completer: impl Fn() -> ArgValueCompleter + Copy,
) -> Command {
    match path.split_first() {
        None => {
            if cmd.get_arguments().any(|a| a.get_id() == arg) {
                cmd.mut_arg(arg, |a| a.add(completer()))
            } else {
                cmd
            }
        }
        Some((first, rest)) => {
            if cmd.find_subcommand(first).is_some() {
                let first = first.to_string();
                cmd.mut_subcommand(first, |sub| attach(sub, rest, arg, completer))
            } else {
                cmd
            }
        }
    }
}

/// Candidates for the word being completed: names from the manifest's `[TABLE.NAME]`
/// headers. In a comma-separated list, the part after the last comma is completed.
fn names(current: &OsStr, table: &str) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let (done, partial) = match current.rfind(',') {
        Some(i) => (&current[..=i], &current[i + 1..]),
        None => ("", current.as_ref()),
    };
    let Ok(text) = std::fs::read_to_string(store_dir().join(crate::manifest::FILE_NAME)) else {
        return Vec::new();
    };
    crate::manifest::table_names(&text, table)
        .into_iter()
        .filter(|name| name.starts_with(partial))
        .map(|name| CompletionCandidate::new(format!("{done}{name}")))
        .collect()
}

/// Candidates for `recipients rm`, read from `recipients.txt` (public keys, nothing to
/// unlock): an age recipient as it is, an SSH key as its `SHA256:` fingerprint, with the
/// key's comment as help.
fn recipients(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let path = store_dir().join(crate::store::RECIPIENTS);
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(lines) = crate::crypto::recipient::parse_file(&text) else {
        return Vec::new();
    };
    lines
        .into_iter()
        .filter_map(|line| {
            let (value, help) = match &line.recipient {
                crate::crypto::recipient::Recipient::X25519(r) => (r.to_string(), None),
                ssh => {
                    let short = ssh.short();
                    let fingerprint = short.rsplit(' ').next()?.to_string();
                    let help = match &line.comment {
                        Some(c) => format!("{} {}", ssh.kind(), crate::util::output::escape(c)),
                        None => ssh.kind().to_string(),
                    };
                    (fingerprint, Some(help))
                }
            };
            value
                .starts_with(current.as_ref())
                .then(|| CompletionCandidate::new(value).help(help.map(Into::into)))
        })
        .collect()
}

/// The store the command line being completed names (`--store DIR`), else
/// `AGENTCRED_STORE`, else the default.
fn store_dir() -> PathBuf {
    let args: Vec<_> = std::env::args_os().collect();
    for (i, arg) in args.iter().enumerate() {
        if arg == "--store" {
            if let Some(dir) = args.get(i + 1) {
                return PathBuf::from(dir);
            }
        } else if let Some(dir) = arg.to_str().and_then(|a| a.strip_prefix("--store=")) {
            return PathBuf::from(dir);
        }
    }
    if let Some(dir) = std::env::var_os("AGENTCRED_STORE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    directories::ProjectDirs::from("", "", "agentcred")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_default()
}

/// Answer a completion request when the shell asked for one; returns only otherwise.
pub fn complete_if_asked(cli: fn() -> Command) {
    clap_complete::CompleteEnv::with_factory(move || command(cli()))
        .var(ENV_COMPLETE)
        .complete();
}

/// The shells `completions` can write a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

impl Shell {
    pub const ALL: [Shell; 5] = [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Powershell,
        Shell::Elvish,
    ];

    /// The file name under `completions/` (as each shell looks for it).
    pub fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "agentcred.bash",
            Shell::Zsh => "_agentcred",
            Shell::Fish => "agentcred.fish",
            Shell::Powershell => "_agentcred.ps1",
            Shell::Elvish => "agentcred.elv",
        }
    }

    /// The registration script: it calls `agentcred` (found on PATH) to complete.
    pub fn script(self) -> Vec<u8> {
        let completer: &dyn EnvCompleter = match self {
            Shell::Bash => &Bash,
            Shell::Zsh => &Zsh,
            Shell::Fish => &Fish,
            Shell::Powershell => &Powershell,
            Shell::Elvish => &Elvish,
        };
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = completer.write_registration(
            ENV_COMPLETE,
            "agentcred",
            "agentcred",
            "agentcred",
            &mut out,
        );
        out
    }
}
