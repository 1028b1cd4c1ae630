//! The audit log: one chained line per secret read or change, exact under concurrency,
//! never a value, and `audit --verify` naming the line an edit, deletion or move broke.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;
use serde_json::Value;

const VALUE_A: &str = "sk-live-VALUE-A-7f3e9c";
const VALUE_B: &str = "pw-VALUE-B-0d41aa";

fn store() -> TestEnv {
    let env = TestEnv::init();
    env.add("a", VALUE_A.as_bytes());
    env.add("b", VALUE_B.as_bytes());
    env
}

fn log_path(env: &TestEnv) -> std::path::PathBuf {
    env.store.join("audit.jsonl")
}

fn events(env: &TestEnv) -> Vec<Value> {
    let out = env.cmd().args(["audit", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn actions(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verify(env: &TestEnv) -> (Option<i32>, String, String) {
    let out = env.cmd().args(["audit", "--verify"]).output().unwrap();
    (out.status.code(), stdout_of(&out), stderr_of(&out))
}

fn lines(env: &TestEnv) -> Vec<String> {
    fs::read_to_string(log_path(env))
        .unwrap()
        .split_inclusive('\n')
        .map(String::from)
        .collect()
}

#[test]
fn each_secret_read_or_change_writes_one_event() {
    let env = TestEnv::init();
    assert!(events(&env).is_empty());
    env.add("a", VALUE_A.as_bytes());
    let dotenv = env.dir.path().join("x.env");
    fs::write(&dotenv, format!("B={VALUE_B}\nC=three\n")).unwrap();
    env.cmd().arg("import").arg(&dotenv).assert().success();
    env.get("a");
    env.cmd().args(["export", "--only", "a"]).assert().success();
    env.cmd()
        .args(["exec", "--only", "a", "--", "true"])
        .assert()
        .success();
    for args in [
        &["agent", "add", "bot", "--allow", "a"][..],
        &["agent", "grant", "bot", "b"],
        &["agent", "revoke", "bot", "a"],
    ] {
        env.cmd().args(args).assert().success();
    }
    env.cmd()
        .args(["exec", "--agent", "bot", "--", "true"])
        .assert()
        .success();
    env.cmd().args(["rm", "c", "--yes"]).assert().success();
    env.cmd().args(["agent", "rm", "bot"]).assert().success();
    env.cmd()
        .args(["rotate", "a"])
        .write_stdin("a rotated")
        .assert()
        .success();
    // Reading metadata and the log itself is not a secret access.
    for args in [
        &["list"][..],
        &["show", "a"],
        &["agent", "list"],
        &["audit"],
        &["audit", "--verify"],
        &["due"],
    ] {
        env.cmd().args(args).assert().success();
    }
    let all = events(&env);
    let expected = [
        "add",
        "import",
        "get",
        "export",
        "exec",
        "agent-add",
        "agent-grant",
        "agent-revoke",
        "exec",
        "rm",
        "agent-rm",
        "rotate",
    ];
    assert_eq!(
        actions(&all),
        expected
            .iter()
            .map(|a| (a.to_string(), "ok".to_string()))
            .collect::<Vec<_>>()
    );
    for (i, event) in all.iter().enumerate() {
        assert_eq!(event["seq"], i as u64 + 1);
        assert!(
            event["user"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{}@", common::account()))
        );
        assert!(event["pid"].as_u64().unwrap() > 0);
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(event["prev"].as_str().unwrap().len(), 64);
    }
    assert_eq!(all[0]["prev"], "0".repeat(64));
    assert_eq!(all[1]["credentials"], serde_json::json!(["b", "c"]));
    assert_eq!(all[4]["program"], "true");
    assert_eq!(all[4]["agent"], Value::Null);
    assert_eq!(all[4]["credentials"], serde_json::json!(["a"]));
    assert_eq!(all[8]["agent"], "bot");
    assert_eq!(all[8]["credentials"], serde_json::json!(["b"]));
    assert_eq!(all[6]["credentials"], serde_json::json!(["b"]));
    let (code, out, _) = verify(&env);
    assert_eq!(code, Some(0));
    assert!(out.contains("12 events, chain intact"), "{out}");
    let mode = fs::metadata(log_path(&env)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn failed_and_denied_accesses_are_recorded_and_change_nothing_else() {
    let env = store();
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a"])
        .assert()
        .success();
    let before = env.snapshot();
    let logged = events(&env).len();
    env.cmd().args(["get", "nope"]).assert().code(4);
    env.cmd()
        .args(["exec", "--agent", "bot", "--only", "b", "--", "true"])
        .assert()
        .code(7);
    env.cmd()
        .args(["exec", "--agent", "ghost", "--", "true"])
        .assert()
        .code(4);
    // Someone without a key of this store.
    let stranger = TestEnv::init();
    env.cmd()
        .args(["get", "a"])
        .env("AGENTCRED_IDENTITY", stranger.identity_text())
        .assert()
        .code(5);
    assert_eq!(env.snapshot(), before, "the committed store is unchanged");
    let all = events(&env);
    let new: Vec<&Value> = all[logged..].iter().collect();
    assert_eq!(
        actions(&all[logged..]),
        [
            ("get", "not-found"),
            ("exec", "denied"),
            ("exec", "not-found"),
            ("get", "locked")
        ]
        .map(|(a, o)| (a.to_string(), o.to_string()))
    );
    assert_eq!(new[0]["credentials"], serde_json::json!(["nope"]));
    assert_eq!(new[1]["agent"], "bot");
    assert_eq!(new[1]["credentials"], serde_json::json!(["b"]));
    assert_eq!(new[2]["agent"], "ghost");
    assert_eq!(verify(&env).0, Some(0));
    // No store, no log: nothing is created where there is no store.
    let elsewhere = env.dir.path().join("not-a-store");
    fs::create_dir(&elsewhere).unwrap();
    env.cmd()
        .args(["get", "a"])
        .env("AGENTCRED_STORE", &elsewhere)
        .assert()
        .code(4);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn twenty_parallel_execs_make_twenty_intact_chained_lines() {
    let env = store();
    let before = events(&env).len();
    let children: Vec<_> = (0..20)
        .map(|_| {
            Command::new(TestEnv::bin())
                .args(["exec", "--only", "a", "--", "true"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap())
                .env("HOME", &env.home)
                .env("AGENTCRED_STORE", &env.store)
                .env("CI", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut pids = Vec::new();
    for child in children {
        pids.push(u64::from(child.id()));
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let (code, out, err) = verify(&env);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("{} events, chain intact", before + 20)),
        "{out}"
    );
    let all = events(&env);
    let execs: Vec<&Value> = all.iter().filter(|e| e["action"] == "exec").collect();
    assert_eq!(execs.len(), 20);
    let mut logged_pids: Vec<u64> = execs.iter().map(|e| e["pid"].as_u64().unwrap()).collect();
    logged_pids.sort();
    pids.sort();
    assert_eq!(logged_pids, pids, "one line per exec, from that exec");
    assert!(lines(&env).iter().all(|l| l.ends_with("}\n")));
}

/// A log of six events to tamper with.
fn six_events() -> TestEnv {
    let env = store();
    for _ in 0..4 {
        env.get("a");
    }
    assert_eq!(lines(&env).len(), 6);
    env
}

fn assert_broken_at(env: &TestEnv, line: usize, why: &str) {
    let (code, out, err) = verify(env);
    assert_eq!(code, Some(6), "{out}{err}");
    assert!(
        err.contains(&format!(
            "error: the audit log is broken at line {line}: {why}"
        )),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn verify_names_an_edited_line() {
    let env = six_events();
    let mut all = lines(&env);
    all[3] = all[3].replace("\"outcome\":\"ok\"", "\"outcome\":\"denied\"");
    fs::write(log_path(&env), all.concat()).unwrap();
    assert_broken_at(
        &env,
        4,
        "it was changed after it was written (line 5 does not carry its hash)",
    );
    // Writing goes on, and the break stays visible.
    env.get("a");
    assert_broken_at(&env, 4, "it was changed");
    env.cmd()
        .arg("audit")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: the audit log is broken at line 4",
        ));
}

#[test]
fn verify_names_a_deleted_line() {
    let env = six_events();
    let mut all = lines(&env);
    all.remove(2);
    fs::write(log_path(&env), all.concat()).unwrap();
    assert_broken_at(&env, 3, "its sequence number is 4, not 3");
}

#[test]
fn verify_names_a_reordered_line() {
    let env = six_events();
    let mut all = lines(&env);
    all.swap(3, 4);
    fs::write(log_path(&env), all.concat()).unwrap();
    assert_broken_at(&env, 4, "its sequence number is 5, not 4");
}

#[test]
fn the_chain_can_be_checked_by_hand_with_sha256sum() {
    let env = six_events();
    let all = lines(&env);
    // Line N's prev is `sed -n 'Mp' audit.jsonl | sha256sum` for M = N - 1: the line
    // before it, its newline included.
    for (i, line) in all.iter().enumerate().skip(1) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("sed -n '{i}p' audit.jsonl | sha256sum"))
            .current_dir(&env.store)
            .output()
            .unwrap();
        let hash = stdout_of(&out)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let next: Value = serde_json::from_str(line).unwrap();
        assert_eq!(next["prev"], hash, "line {}", i + 1);
    }
    let (_, out, _) = verify(&env);
    let head = Command::new("sh")
        .arg("-c")
        .arg("tail -n 1 audit.jsonl | sha256sum")
        .current_dir(&env.store)
        .output()
        .unwrap();
    let head = stdout_of(&head);
    assert!(
        out.trim_end()
            .ends_with(head.split_whitespace().next().unwrap()),
        "{out}"
    );
}

#[test]
fn no_value_is_ever_logged() {
    let env = store();
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a,b", "--clean-env"])
        .assert()
        .success();
    let runs: [(&[&str], i32); 7] = [
        (&["get", "a"], 0),
        (&["export", "--format", "json"], 0),
        (&["-v", "exec", "--agent", "bot", "--", "true"], 0),
        (&["exec", "--agent", "bot", "--only", "a", "--", "true"], 0),
        (&["exec", "--", "sh", "-c", "exit 3"], 3),
        (
            &["exec", "--agent", "bot", "--only", "nope", "--", "true"],
            7,
        ),
        (&["rm", "b", "--yes"], 0),
    ];
    for (args, code) in runs {
        env.cmd().args(args).assert().code(code);
    }
    env.cmd()
        .args(["add", "a", "--force"])
        .write_stdin("sk-NEW-VALUE-99")
        .assert()
        .success();
    let log = fs::read_to_string(log_path(&env)).unwrap();
    assert!(log.lines().count() >= 11, "{log}");
    for value in [VALUE_A, VALUE_B, "sk-NEW-VALUE-99"] {
        assert!(!log.contains(value), "{value} is in the log");
    }
    for args in [&["audit"][..], &["audit", "--json"]] {
        let out = env.cmd().args(args).output().unwrap();
        let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
        assert!(!text.contains(VALUE_A) && !text.contains(VALUE_B));
    }
}

#[test]
fn show_filters_by_date_and_agent() {
    let env = store();
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a"])
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--agent", "bot", "--", "true"])
        .assert()
        .success();
    env.get("b");
    let out = env.cmd().arg("audit").output().unwrap();
    assert!(out.status.success());
    let text = stdout_of(&out);
    let header = text.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "SEQ",
            "TIME",
            "ACTION",
            "OUTCOME",
            "AGENT",
            "PROGRAM",
            "CREDENTIALS",
            "USER",
            "PID"
        ]
    );
    assert_eq!(text.lines().count(), 6);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[2..7]
                == ["exec", "ok", "bot", "true", "a"]),
        "{text}"
    );
    let out = env
        .cmd()
        .args(["audit", "--agent", "bot", "--json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let picked: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(picked, ["agent-add", "exec"]);
    env.cmd()
        .args(["audit", "--since", "2999-01-01", "--json"])
        .assert()
        .success()
        .stdout("[]\n");
    env.cmd()
        .args(["audit", "--since", "2999-01-01"])
        .assert()
        .success()
        .stdout("")
        .stderr("no audit events match\n");
    let out = env
        .cmd()
        .args(["audit", "--since", "2000-01-01", "--json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5);
    env.cmd()
        .args(["audit", "--since", "yesterday"])
        .assert()
        .code(2);
    env.cmd()
        .args(["audit", "--verify", "--agent", "bot"])
        .assert()
        .code(2);
    let out = env
        .cmd()
        .args(["audit", "--verify", "--json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&json["intact"], &json["events"]),
        (&Value::Bool(true), &Value::from(5))
    );
}

#[test]
fn a_symlinked_log_is_refused() {
    let env = store();
    let target = env.dir.path().join("elsewhere.jsonl");
    fs::remove_file(log_path(&env)).unwrap();
    std::os::unix::fs::symlink(&target, log_path(&env)).unwrap();
    env.cmd()
        .args(["get", "a"])
        .assert()
        .code(6)
        .stdout("")
        .stderr(predicate::str::contains("audit.jsonl: it is a symlink"));
    assert!(!target.exists());
    env.cmd().args(["audit", "--verify"]).assert().code(6);
}
