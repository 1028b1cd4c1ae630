//! Where the identity comes from, passphrases, and never hanging without a terminal.

use crate::common;

use common::{TestEnv, stderr_of};
use predicates::prelude::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const PASS: &str = "correct horse battery staple";

fn passphrase_store() -> TestEnv {
    let env = TestEnv::new();
    env.cmd()
        .args(["init", "--passphrase"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success();
    let text = env.identity_text();
    assert!(
        text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
        "identity is encrypted"
    );
    env.cmd()
        .args(["add", "k"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .write_stdin("v")
        .assert()
        .success();
    env
}

#[test]
fn passphrase_identity_works_with_the_variable_and_fails_fast_without() {
    let env = passphrase_store();
    env.cmd()
        .args(["get", "k"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success()
        .stdout("v");
    let before = env.snapshot();
    let started = Instant::now();
    env.cmd().args(["get", "k"]).assert().code(5).stderr(
        predicate::str::contains("passphrase-protected")
            .and(predicate::str::contains("AGENTCRED_PASSPHRASE")),
    );
    assert!(started.elapsed() < Duration::from_secs(10), "fails at once");
    // Not CI, but no terminal (setsid: no controlling terminal either, even when the
    // tests run from one) and --no-input: still no prompt.
    env.command("setsid")
        .args([
            TestEnv::bin().as_os_str(),
            "--no-input".as_ref(),
            "get".as_ref(),
            "k".as_ref(),
        ])
        .env_remove("CI")
        .assert()
        .code(5);
    env.command("setsid")
        .args([TestEnv::bin().as_os_str(), "get".as_ref(), "k".as_ref()])
        .env_remove("CI")
        .assert()
        .code(5);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn wrong_passphrase_is_exit_5_and_changes_nothing() {
    let env = passphrase_store();
    let before = env.snapshot();
    env.cmd()
        .args(["add", "k2"])
        .env("AGENTCRED_PASSPHRASE", "wrong")
        .write_stdin("v2")
        .assert()
        .code(5)
        .stderr(predicate::str::contains("wrong passphrase"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn list_works_locked_but_says_it_is_unverified() {
    let env = passphrase_store();
    let out = env.cmd().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verified"], false);
    assert!(stderr_of(&out).contains("integrity not verified"));
}

#[test]
fn wrong_identity_is_exit_5_and_changes_nothing() {
    let env = TestEnv::init();
    env.add("k", b"v");
    let before = env.snapshot();
    let stranger = TestEnv::init();
    for args in [
        &["get", "k"][..],
        &["add", "k2"],
        &["exec", "--", "true"],
        &["list"],
    ] {
        let out = env
            .cmd()
            .args(args)
            .env("AGENTCRED_IDENTITY", stranger.identity_text())
            .write_stdin("v")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("not encrypted to your identity"),
            "{}",
            stderr_of(&out)
        );
        assert!(stderr_of(&out).contains("hint: ask a store member"));
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn identity_sources_in_order() {
    let env = TestEnv::init();
    env.add("k", b"v");
    let text = env.identity_text();
    let moved = env.dir.path().join("moved-identity.txt");
    fs::rename(env.identity_path(), &moved).unwrap();
    env.cmd().args(["get", "k"]).assert().code(5).stderr(
        predicate::str::contains("no identity found")
            .and(predicate::str::contains("AGENTCRED_IDENTITY")),
    );
    env.cmd()
        .args(["get", "k"])
        .env("AGENTCRED_IDENTITY", &text)
        .assert()
        .success()
        .stdout("v");
    env.cmd()
        .args(["get", "k"])
        .env("AGENTCRED_IDENTITY_FILE", &moved)
        .assert()
        .success()
        .stdout("v");
    // The text variable wins over the file variable.
    env.cmd()
        .args(["get", "k"])
        .env("AGENTCRED_IDENTITY", &text)
        .env("AGENTCRED_IDENTITY_FILE", "/nonexistent")
        .assert()
        .success();
    // Garbage in the variable: exit 5, and the message never echoes it.
    let out = env
        .cmd()
        .args(["get", "k"])
        .env("AGENTCRED_IDENTITY", "AGE-SECRET-KEY-1GARBAGE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(!stderr_of(&out).contains("GARBAGE"));
}

#[test]
fn identity_file_readable_by_others_is_refused_with_the_chmod() {
    let env = TestEnv::init();
    env.add("k", b"v");
    fs::set_permissions(env.identity_path(), fs::Permissions::from_mode(0o644)).unwrap();
    env.cmd()
        .args(["get", "k"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("readable by group or others"))
        .stderr(predicate::str::contains(format!(
            "hint: chmod 600 {}",
            env.identity_path().display()
        )));
}

#[test]
fn passphrase_prompt_on_a_terminal() {
    let env = passphrase_store();
    let mut cmd = std::process::Command::new(TestEnv::bin());
    cmd.args(["get", "k"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("TERM", "dumb");
    let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    session.exp_string("Passphrase for").unwrap();
    session.send_line(PASS).unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains('v'), "{rest:?}");
    assert!(
        !rest.contains(PASS),
        "the passphrase is not echoed: {rest:?}"
    );
}

#[test]
fn add_prompts_hidden_with_confirmation_on_a_terminal() {
    let env = TestEnv::init();
    let mut cmd = std::process::Command::new(TestEnv::bin());
    cmd.args(["add", "typed"])
        .env_clear()
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("TERM", "dumb");
    let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    session.exp_string("Value for typed").unwrap();
    session.send_line("typed-secret").unwrap();
    session.exp_string("Again").unwrap();
    session.send_line("typed-secret").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(!rest.contains("typed-secret"), "not echoed: {rest:?}");
    assert_eq!(env.get("typed"), b"typed-secret");
}
