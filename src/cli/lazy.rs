//! Subcommands whose arguments clap adds only when they are parsed.
//!
//! Every run used to build the arguments of all thirty subcommands before parsing (about
//! 0.1 ms and a few dozen page faults of `exec`'s start-up, measured in
//! docs/performance.md). A [`Lazy`] subcommand hands its arguments to clap's
//! `Command::defer`, which adds them when that subcommand is the one on the command line.
//! Help, completion and manual pages list every subcommand with its summary, which is
//! part of the deferred arguments: for those, [`expand_all`] is left on and the tree is
//! built whole, as before.

use std::sync::atomic::{AtomicBool, Ordering};

use clap::{ArgMatches, Args, Command, FromArgMatches};

static EXPAND_ALL: AtomicBool = AtomicBool::new(true);

/// Whether the next tree built has every subcommand's arguments (the default) or only
/// the parsed one's.
pub fn expand_all(on: bool) {
    EXPAND_ALL.store(on, Ordering::Relaxed);
}

/// A subcommand's arguments `T`, deferred unless [`expand_all`] is on.
#[derive(Debug)]
pub struct Lazy<T>(pub T);

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: Command) -> Command {
        match EXPAND_ALL.load(Ordering::Relaxed) {
            true => T::augment_args(cmd),
            false => cmd.defer(T::augment_args),
        }
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        match EXPAND_ALL.load(Ordering::Relaxed) {
            true => T::augment_args_for_update(cmd),
            false => cmd.defer(T::augment_args_for_update),
        }
    }
}

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Lazy)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::expand_all;
    use crate::cli::{Cli, needs_whole_tree, parse, with_default_store};

    fn shown(parsed: Result<Cli, clap::Error>) -> String {
        match parsed {
            Ok(cli) => format!("{cli:?}"),
            Err(e) => format!("{:?} {}", e.kind(), e.render()),
        }
    }

    /// What clap makes of `args` with the whole tree built, as before `Lazy`.
    fn whole(args: &[&str]) -> String {
        expand_all(true);
        shown(
            with_default_store(Cli::command())
                .try_get_matches_from(args)
                .and_then(|m| Cli::from_arg_matches(&m)),
        )
    }

    /// What `main` makes of `args`.
    fn lazily(args: &[&str]) -> String {
        let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
        shown(parse(&args))
    }

    #[test]
    fn deferred_arguments_parse_as_the_whole_tree_does() {
        let cases: &[&[&str]] = &[
            &["agentcred", "exec", "--", "true"],
            &[
                "agentcred",
                "--store",
                "s",
                "-v",
                "exec",
                "--agent",
                "bot",
                "--mask",
                "--",
                "x",
                "-h",
            ],
            &["agentcred", "--store=s", "get", "name"],
            &["agentcred", "list", "--json", "--agent", "a"],
            &["agentcred", "agent", "add", "bot", "--allow", "a,b"],
            &["agentcred", "agent"],
            &["agentcred", "exec", "--bogus"],
            &["agentcred", "get"],
            &["agentcred", "get", "a", "b"],
            &["agentcred", "recipients", "ad"],
            &["agentcred", "export", "--format", "nope"],
            &[
                "agentcred",
                "edit",
                "x",
                "--rotate-every",
                "30d",
                "--no-input",
            ],
            // A typo as close to a global option as to the subcommand's own, and help
            // asked for inside a cluster of short flags: parsed again with the whole tree.
            &["agentcred", "add", "--s", "x"],
            &["agentcred", "init", "--i"],
            &["agentcred", "rotate", "--n"],
            &["agentcred", "doctor", "--t"],
            &["agentcred", "add", "-vh"],
            &["agentcred", "merge-driver", "-vh"],
            // A global option or the version after the subcommand: `exec` would take it
            // for its program's first word where the global options are not copied into
            // it, so these go to the whole tree at once.
            &["agentcred", "exec", "--store", "s", "--", "true"],
            &["agentcred", "exec", "-v", "--", "true"],
            &["agentcred", "exec", "--version"],
            &[
                "agentcred",
                "exec",
                "--no-input",
                "--agent",
                "bot",
                "--",
                "x",
            ],
            &["agentcred", "get", "name", "--store=s"],
            &["agentcred", "exec", "--no-input=false", "--", "true"],
            &["agentcred", "exec", "--verbose=1", "--", "x"],
            &["agentcred", "exec", "--version=1"],
            &["agentcred", "rm", "name", "-yv"],
        ];
        // A global option, or a short flag that may hold one, after the subcommand.
        let global_after = |args: &[&str]| {
            let mut rest = args.iter().skip(1);
            while let Some(word) = rest.next() {
                match *word {
                    "--store" => drop(rest.next()),
                    w if w.starts_with('-') => {}
                    _ => break,
                }
            }
            rest.take_while(|a| **a != "--").any(|a| {
                a.starts_with("--store")
                    || ["--no-input", "--verbose", "--version"]
                        .contains(&a.split('=').next().unwrap_or(a))
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains(['v', 'V']))
            })
        };
        // Deferred, `exec` has no arguments of its own until it is parsed.
        let own = |cmd: clap::Command| {
            cmd.find_subcommand("exec")
                .map_or(0, |exec| exec.get_arguments().count())
        };
        expand_all(false);
        assert_eq!(own(Cli::command()), 0);
        expand_all(true);
        assert!(own(Cli::command()) > 5);
        for args in cases {
            let whole_tree = needs_whole_tree(&args.iter().map(Into::into).collect::<Vec<_>>());
            assert_eq!(whole_tree, global_after(args), "{args:?}");
            assert_eq!(lazily(args), whole(args), "{args:?}");
        }
    }

    #[test]
    fn help_or_no_known_subcommand_builds_the_whole_tree() {
        for args in [
            &["agentcred"][..],
            &["agentcred", "-h", "exec"],
            &["agentcred", "--help"],
            &["agentcred", "-vh", "exec"],
            &["agentcred", "--version"],
            &["agentcred", "help", "exec"],
            &["agentcred", "exec", "--help"],
            &["agentcred", "agent", "help"],
            &["agentcred", "exce", "--", "true"],
            &["agentcred", "--store"],
            &["agentcred", "--bogus", "exec"],
        ] {
            let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            assert!(needs_whole_tree(&args), "{args:?}");
        }
    }
}
