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

/// The timeout column of our identity's key in /proc/keys (the kernel's own account of it:
/// `59m`, `expd`, `perm`), or None when the key is not there.
fn key_timeout(env: &TestEnv) -> Option<String> {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(std::fs::read(env.identity_path()).unwrap());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let description = format!("agentcred:identity:{}:", &hex[..32]);
    let keys = std::fs::read_to_string("/proc/keys").unwrap();
    keys.lines()
        .find(|line| line.split_whitespace().nth(8) == Some(description.as_str()))
        .and_then(|line| line.split_whitespace().nth(3).map(str::to_owned))
}

/// Seconds in a /proc/keys timeout such as `59m` or `2h`.
fn timeout_seconds(column: &str) -> Option<u64> {
    let (number, unit) = column.split_at(column.len().checked_sub(1)?);
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    Some(number.parse::<u64>().ok()? * scale)
}

#[test]
fn unlock_for_sets_the_kernel_timeout() {
    let env = passphrase_store();
    assert_eq!(get_without_passphrase(&env).status.code(), Some(5));
    env.cmd()
        .args(["unlock", "--for", "1h"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success()
        .stderr(predicate::str::contains("unlocked").and(predicate::str::contains("for 1h")));
    let out = get_without_passphrase(&env);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"v");
    // The kernel, not agentcred, forgets the identity: its key carries the timeout.
    let column = key_timeout(&env).expect("the unlocked identity's key is in /proc/keys");
    let seconds = timeout_seconds(&column)
        .unwrap_or_else(|| panic!("key has no timeout: {column:?} (perm would never expire)"));
    assert!((1..=3600).contains(&seconds), "timeout {column}");
    env.cmd().arg("lock").assert().success();
}

#[test]
fn an_expired_unlock_asks_for_the_passphrase_again() {
    let env = passphrase_store();
    env.cmd()
        .args(["unlock", "--for", "1s"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success()
        .stderr(predicate::str::contains("for 1s"));
    // Well past the timeout however slow the machine is: whether `get` worked inside the
    // second is the test above's business (with a timeout no load can outlast).
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
