//! `agentcred unlock --for DUR` and `lock`: the decrypted identity cached in the Linux
//! kernel keyring (the real one: these tests need the keyctl system calls, which CI has).
//! Each test's identity is new, and the cache is keyed by the identity file's hash, so
//! tests running side by side never see each other's cache.

use crate::common;

use common::{TestEnv, stderr_of};
use predicates::prelude::*;

const PASS: &str = "correct horse battery staple";

fn passphrase_store() -> TestEnv {
    let env = TestEnv::new();
    env.cmd()
        .args(["init", "--passphrase"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success();
    env.cmd()
        .args(["add", "k"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .write_stdin("v")
        .assert()
        .success();
    env
}

fn get_without_passphrase(env: &TestEnv) -> std::process::Output {
    env.cmd().args(["get", "k"]).output().unwrap()
}

#[test]
fn unlock_for_1s_works_then_expires() {
    let env = passphrase_store();
    assert_eq!(get_without_passphrase(&env).status.code(), Some(5));
    env.cmd()
        .args(["unlock", "--for", "1s"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success()
        .stderr(predicate::str::contains("unlocked").and(predicate::str::contains("for 1s")));
    let out = get_without_passphrase(&env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"v");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = get_without_passphrase(&env);
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("AGENTCRED_PASSPHRASE"));
}

#[test]
fn lock_forgets_it_at_once_and_twice_is_fine() {
    let env = passphrase_store();
    env.cmd()
        .args(["unlock", "--for", "10m"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success();
    // exec warns that the program could read the unlocked identity from the keyring.
    env.cmd()
        .args(["exec", "--", "true"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "unlocked in this login session's kernel keyring",
        ));
    env.cmd()
        .arg("lock")
        .assert()
        .success()
        .stderr(predicate::str::contains("locked"));
    env.cmd()
        .args(["exec", "--", "true"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success()
        .stderr(predicate::str::contains("kernel keyring").not());
    assert_eq!(get_without_passphrase(&env).status.code(), Some(5));
    env.cmd()
        .arg("lock")
        .assert()
        .success()
        .stderr(predicate::str::contains("was not unlocked"));
}

#[test]
fn unlock_refuses_a_wrong_passphrase_and_caches_nothing() {
    let env = passphrase_store();
    env.cmd()
        .args(["unlock", "--for", "10m"])
        .env("AGENTCRED_PASSPHRASE", "wrong")
        .assert()
        .code(5)
        .stderr(predicate::str::contains("wrong passphrase"));
    env.cmd()
        .args(["unlock", "--for", "10m"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("AGENTCRED_PASSPHRASE"));
    assert_eq!(get_without_passphrase(&env).status.code(), Some(5));
}

#[test]
fn a_changed_identity_file_never_meets_a_stale_cache() {
    let env = passphrase_store();
    env.cmd()
        .args(["unlock", "--for", "10m"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success();
    // Someone else's passphrase-protected identity in its place: not unlocked.
    let other = passphrase_store();
    std::fs::copy(other.identity_path(), env.identity_path()).unwrap();
    let out = get_without_passphrase(&env);
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("passphrase-protected"));
    other.cmd().arg("lock").assert().success();
    env.cmd().arg("lock").assert().success();
}

#[test]
fn unlock_without_a_passphrase_has_nothing_to_do_and_bad_durations_are_usage_errors() {
    let env = TestEnv::init();
    env.cmd()
        .args(["unlock", "--for", "15m"])
        .assert()
        .success()
        .stderr(predicate::str::contains("nothing to unlock"));
    for bad in ["0s", "15", "8d", "soon"] {
        env.cmd()
            .args(["unlock", "--for", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid duration"));
    }
}
