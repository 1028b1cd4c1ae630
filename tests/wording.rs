//! What people read, as snapshots: every command's `--help` and the main error messages
//! (with their exit codes), so that a change of wording shows up in review like a change of
//! API. The snapshots are in tests/wording/; after an intended change, `cargo insta review`
//! (or `INSTA_UPDATE=always cargo test --test integration wording`) updates them.
//!
//! insta rather than trycmd: the help test walks the clap tree, so a new command gets a
//! snapshot without anyone writing a case file for it, and a missing snapshot fails in CI.

use crate::common;

use clap::CommandFactory;
use common::{TestEnv, stderr_of};

/// Snapshots in tests/wording/, named by case alone.
fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("wording");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// Every command path, groups (`agent`) as well as leaves (`agent add`).
fn command_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        out.push(path.clone());
        command_paths(sub, &path, out);
    }
}

#[test]
fn help_of_every_command() {
    let env = TestEnv::new();
    let mut paths = vec![Vec::new()];
    command_paths(&agentcred::cli::Cli::command(), &[], &mut paths);
    assert!(paths.len() > 20, "{paths:?}");
    for path in paths {
        // Without AGENTCRED_STORE: clap would show its value, a temp path.
        let out = env
            .cmd()
            .env_remove("AGENTCRED_STORE")
            .args(&path)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{path:?}: {}", stderr_of(&out));
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", path.join("-"))
        };
        let text = String::from_utf8(out.stdout).unwrap();
        settings().bind(|| insta::assert_snapshot!(name, text));
    }
}

/// The exit code and stderr of one run, with the temp dir's path replaced.
fn outcome(env: &TestEnv, args: &[&str], stdin: &str) -> String {
    let out = env.cmd().args(args).write_stdin(stdin).output().unwrap();
    let tmp = env.dir.path().to_string_lossy().into_owned();
    format!(
        "exit {}\n{}",
        out.status.code().map_or("none".into(), |c| c.to_string()),
        stderr_of(&out).replace(&tmp, "[TMP]")
    )
}

#[test]
fn main_error_messages() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("get-missing", &["get", "nope"], ""),
        ("get-bad-name", &["get", "Bad Name"], ""),
        ("add-exists", &["add", "a"], "v"),
        ("add-empty", &["add", "x"], ""),
        (
            "add-bad-period",
            &["add", "x", "--rotate-every", "90x"],
            "v",
        ),
        ("add-unknown-flag", &["add", "x", "--no-such-flag"], "v"),
        (
            "add-future-rotated-at",
            &["add", "x", "--rotated-at", "2999-01-01"],
            "v",
        ),
        ("rm-without-terminal", &["rm", "a"], ""),
        ("exec-unknown-option", &["exec", "--", "--bogus"], ""),
        (
            "exec-not-found",
            &["exec", "--", "no-such-program-for-agentcred"],
            "",
        ),
        (
            "exec-not-allowed",
            &["exec", "--agent", "bot", "--only", "b", "--", "true"],
            "",
        ),
        ("agent-missing", &["agent", "show", "nobody"], ""),
        ("rotate-no-value", &["rotate", "a"], ""),
    ];
    let env = TestEnv::init();
    env.add("a", b"v");
    env.add("b", b"w");
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a"])
        .assert()
        .success();
    settings().bind(|| {
        for (name, args, stdin) in cases {
            insta::assert_snapshot!(format!("error-{name}"), outcome(&env, args, stdin));
        }
        let empty = TestEnv::new();
        insta::assert_snapshot!("error-no-store", outcome(&empty, &["get", "a"], ""));
        insta::assert_snapshot!("error-init-twice", outcome(&env, &["init"], ""));
    });
}
