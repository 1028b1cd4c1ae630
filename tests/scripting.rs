//! What scripts and people rely on: examples in every help, the documented JSON of every
//! read command, no colour off a terminal or under NO_COLOR.

use crate::common;

use clap::CommandFactory;
use common::{TestEnv, stderr_of};
use serde_json::Value;

/// Every subcommand path (`["agent", "add"]`, ...), the `help` pseudo-command excepted.
fn subcommand_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        if sub.has_subcommands() {
            subcommand_paths(sub, &path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_command_has_examples_in_its_help() {
    let env = TestEnv::new();
    let mut paths = Vec::new();
    subcommand_paths(&agentcred::cli::Cli::command(), &[], &mut paths);
    assert!(paths.len() >= 15, "{paths:?}");
    for path in paths {
        let out = env.cmd().args(&path).arg("--help").output().unwrap();
        assert!(out.status.success(), "{path:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Examples:"),
            "`agentcred {} --help` has no examples",
            path.join(" ")
        );
    }
}

fn json(env: &TestEnv, args: &[&str]) -> Value {
    let out = env.cmd().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn has_fields(value: &Value, fields: &[&str], what: &str) {
    for field in fields {
        assert!(value.get(field).is_some(), "{what} lacks {field}: {value}");
    }
}

const CREDENTIAL_FIELDS: &[&str] = &[
    "name",
    "env",
    "backend",
    "kind",
    "created_at",
    "rotated_at",
    "rotate_every",
    "due_at",
    "status",
];

fn is_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok() && s.ends_with('Z'))
}

#[test]
fn every_read_command_prints_its_documented_json() {
    let env = TestEnv::init();
    env.cmd()
        .args([
            "add",
            "api-key",
            "--description",
            "d",
            "--rotated-at",
            "2020-01-01",
        ])
        .write_stdin("v")
        .assert()
        .success();
    env.add("other", b"v");
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "api-key"])
        .assert()
        .success();
    env.get("other");

    let list = json(&env, &["list", "--json"]);
    has_fields(&list, &["verified", "credentials"], "list");
    for c in list["credentials"].as_array().unwrap() {
        has_fields(c, CREDENTIAL_FIELDS, "list entry");
        assert!(
            is_rfc3339(&c["created_at"])
                && is_rfc3339(&c["rotated_at"])
                && is_rfc3339(&c["due_at"])
        );
        assert!(["ok", "due-soon", "overdue", "never"].contains(&c["status"].as_str().unwrap()));
    }

    let show = json(&env, &["show", "api-key", "--json"]);
    has_fields(&show, CREDENTIAL_FIELDS, "show");
    has_fields(&show, &["verified", "history", "description"], "show");
    has_fields(
        &show["history"][0],
        &["at", "action", "by"],
        "history event",
    );

    let due = json(&env, &["due", "--json"]);
    has_fields(
        &due,
        &["verified", "window", "overdue", "due_soon", "credentials"],
        "due",
    );
    assert_eq!(due["overdue"], 1);
    has_fields(&due["credentials"][0], CREDENTIAL_FIELDS, "due entry");

    let agents = json(&env, &["agent", "list", "--json"]);
    has_fields(&agents, &["verified", "agents"], "agent list");
    let agent_fields = [
        "name",
        "allow",
        "program",
        "program_sha256",
        "clean_env",
        "mask",
        "deny_overdue",
        "created_at",
        "created_by",
    ];
    has_fields(&agents["agents"][0], &agent_fields, "agent list entry");
    let agent = json(&env, &["agent", "show", "bot", "--json"]);
    has_fields(&agent, &agent_fields, "agent show");
    has_fields(&agent, &["verified"], "agent show");

    let audit = json(&env, &["audit", "--json"]);
    let events = audit.as_array().unwrap();
    assert!(!events.is_empty());
    for event in events {
        has_fields(
            event,
            &[
                "seq",
                "time",
                "action",
                "outcome",
                "agent",
                "credentials",
                "program",
                "pid",
                "user",
                "prev",
            ],
            "audit event",
        );
    }
    let verify = json(&env, &["audit", "--verify", "--json"]);
    has_fields(&verify, &["intact", "events", "head"], "audit --verify");

    let recipients = json(&env, &["recipients", "list", "--json"]);
    has_fields(&recipients, &["verified", "recipients"], "recipients list");
    has_fields(
        &recipients["recipients"][0],
        &["recipient", "type", "short", "comment", "you"],
        "recipient",
    );
    let vault = json(&env, &["vault", "show", "--json"]);
    has_fields(
        &vault,
        &[
            "verified",
            "addr",
            "addr_from",
            "mount",
            "prefix",
            "namespace",
            "token_from",
            "credentials",
        ],
        "vault show",
    );

    // doctor exits 3 here (one credential is overdue) but still prints its document.
    let out = env.cmd().args(["doctor", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let doctor: Value = serde_json::from_slice(&out.stdout).unwrap();
    has_fields(&doctor, &["healthy", "store", "findings"], "doctor");
    for finding in doctor["findings"].as_array().unwrap() {
        has_fields(finding, &["check", "level", "message"], "doctor finding");
    }
}

#[test]
fn no_colour_off_a_terminal_and_none_under_no_color() {
    let env = TestEnv::init();
    env.cmd()
        .args(["add", "late", "--rotated-at", "2020-01-01"])
        .write_stdin("v")
        .assert()
        .success();
    for args in [
        &["list"][..],
        &["show", "late"],
        &["due"],
        &["doctor"],
        &["audit"],
        &["agent", "list"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert!(
            !out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b),
            "{args:?} printed an escape code"
        );
    }
    // On a terminal, doctor colours its levels, unless NO_COLOR is set.
    let on_terminal = |no_color: bool| {
        let mut cmd = std::process::Command::new(TestEnv::bin());
        cmd.arg("doctor")
            .env_clear()
            .env("HOME", &env.home)
            .env("AGENTCRED_STORE", &env.store)
            .env("TERM", "xterm");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
        session.exp_eof().unwrap()
    };
    assert!(on_terminal(false).contains('\x1b'), "colour on a terminal");
    assert!(
        !on_terminal(true).contains('\x1b'),
        "no colour with NO_COLOR"
    );
}
