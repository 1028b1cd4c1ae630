//! Tampering with a store: every case is refused with exit 6 and leaves the store as it was.

use crate::common;

use common::{TestEnv, stderr_of};
use predicates::prelude::*;
use std::fs;

/// Encrypt with the stock age CLI, as an attacker holding only the public recipient would.
fn age_encrypt(recipient: &str, plaintext: &[u8], out_path: &std::path::Path) {
    use std::io::Write;
    let mut child = std::process::Command::new("age")
        .args(["-a", "-r", recipient, "-o"])
        .arg(out_path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("the age CLI (Debian package age) is installed");
    child.stdin.take().unwrap().write_all(plaintext).unwrap();
    assert!(child.wait().unwrap().success());
}

fn store_id(env: &TestEnv) -> String {
    let manifest = fs::read_to_string(env.manifest_path()).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("store_id = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string()
}

/// `get` (and `exec`) refuse with exit 6 naming the problem, and change nothing.
fn assert_refused(env: &TestEnv, name: &str, expect: &str) {
    let before = env.snapshot();
    let out = env.cmd().args(["get", name]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(6),
        "get {name}: {}",
        stderr_of(&out)
    );
    assert!(stderr_of(&out).contains(expect), "{}", stderr_of(&out));
    assert_eq!(
        stderr_of(&out)
            .lines()
            .filter(|l| l.starts_with("error:"))
            .count(),
        1
    );
    assert!(out.stdout.is_empty());
    let marker = env.dir.path().join("started");
    env.cmd()
        .args(["exec", "--", "touch"])
        .arg(&marker)
        .assert()
        .code(6);
    assert!(!marker.exists(), "the program never starts");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn secret_file_copied_over_another_is_refused() {
    let env = TestEnv::init();
    env.add("a", b"value-a");
    env.add("b", b"value-b");
    fs::copy(env.secret_file("a"), env.secret_file("b")).unwrap();
    assert_refused(&env, "b", "secrets/b.age");
    assert_eq!(env.get("a"), b"value-a");
}

#[test]
fn secret_file_forged_with_the_public_recipient_is_refused() {
    let env = TestEnv::init();
    env.add("api", b"real");
    // The attacker knows the envelope format and the store id; only the key is missing.
    let forged = format!("agentcred-secret/v1 {} api\nattacker-value", store_id(&env));
    age_encrypt(&env.recipient(), forged.as_bytes(), &env.secret_file("api"));
    assert_refused(&env, "api", "does not match the manifest");
}

#[test]
fn truncated_and_bit_flipped_files_are_refused() {
    let env = TestEnv::init();
    env.add("t", b"value");
    let original = fs::read(env.secret_file("t")).unwrap();
    fs::write(env.secret_file("t"), &original[..original.len() / 2]).unwrap();
    assert_refused(&env, "t", "secrets/t.age");
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    fs::write(env.secret_file("t"), &flipped).unwrap();
    assert_refused(&env, "t", "secrets/t.age");
    fs::remove_file(env.secret_file("t")).unwrap();
    assert_refused(&env, "t", "missing");
}

#[test]
fn hand_edited_manifest_is_refused_naming_the_entry() {
    let env = TestEnv::init();
    env.add("a", b"1");
    env.add("b", b"2");
    let original = fs::read_to_string(env.manifest_path()).unwrap();
    let edited = original.replacen("env = \"B\"", "env = \"EVIL\"", 1);
    assert_ne!(edited, original);
    fs::write(env.manifest_path(), &edited).unwrap();
    assert_refused(&env, "a", "credential b was changed outside agentcred");
    // Writes are refused too: nothing is built on a manifest that was tampered with.
    let before = env.snapshot();
    env.cmd()
        .args(["add", "c"])
        .write_stdin("3")
        .assert()
        .code(6);
    assert_eq!(env.snapshot(), before);
    env.cmd()
        .arg("list")
        .assert()
        .code(6)
        .stderr(predicate::str::contains("credential b"));
    env.cmd().args(["exec", "--", "true"]).assert().code(6);

    // Even a comment added by hand breaks the seal: the seal covers the exact bytes.
    fs::write(env.manifest_path(), format!("{original}# note\n")).unwrap();
    env.cmd().args(["get", "a"]).assert().code(6);

    // An entry added by hand is named.
    let added = format!(
        "{original}\n[credentials.sneaky]\nenv = \"SNEAKY\"\nkind = \"secret\"\nbackend = \"age\"\ncreated_at = \"2026-01-01T00:00:00Z\"\nrotated_at = \"2026-01-01T00:00:00Z\"\n"
    );
    fs::write(env.manifest_path(), added).unwrap();
    env.cmd()
        .arg("list")
        .assert()
        .code(6)
        .stderr(predicate::str::contains(
            "sneaky was added outside agentcred",
        ));

    fs::write(env.manifest_path(), "not [valid toml").unwrap();
    env.cmd().args(["get", "a"]).assert().code(6);
}

#[test]
fn swapped_store_key_is_refused() {
    let env = TestEnv::init();
    env.add("a", b"1");
    let before = env.snapshot();
    // A key for another store is refused by its envelope.
    let forger = TestEnv::new();
    forger
        .cmd()
        .args(["init", "--recipient", &env.recipient()])
        .assert()
        .success();
    fs::copy(
        forger.store.join("storekey.age"),
        env.store.join("storekey.age"),
    )
    .unwrap();
    let out = env.cmd().args(["get", "a"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("storekey.age"),
        "{}",
        stderr_of(&out)
    );

    // A well-formed key for this store, forged with the public recipient, is refused because
    // this machine remembers the real key's fingerprint.
    let forged = format!(
        "agentcred-store-key/v1 {}\n{}\n",
        store_id(&env),
        "A".repeat(43) + "="
    );
    age_encrypt(
        &env.recipient(),
        forged.as_bytes(),
        &env.store.join("storekey.age"),
    );
    let out = env.cmd().args(["get", "a"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("store key changed"),
        "{}",
        stderr_of(&out)
    );
    let _ = before;
}

#[test]
fn store_key_pinned_by_fingerprint_on_a_fresh_machine() {
    let env = TestEnv::new();
    let out = env.cmd().arg("init").output().unwrap();
    let fingerprint = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Store key fingerprint: ")
                .map(|r| r.split(' ').next().unwrap().to_string())
        })
        .expect("init prints the fingerprint");
    env.add("a", b"1");
    let ci = TestEnv::new();
    ci.cmd()
        .args(["get", "a"])
        .env("AGENTCRED_STORE", &env.store)
        .env("AGENTCRED_IDENTITY", env.identity_text())
        .env("AGENTCRED_STORE_FINGERPRINT", &fingerprint)
        .assert()
        .success()
        .stdout("1");
    // A fresh machine (new HOME, so no memory of the store) with the same identity.
    let ci = TestEnv::new();
    ci.cmd()
        .args(["get", "a"])
        .env("AGENTCRED_STORE", &env.store)
        .env("AGENTCRED_IDENTITY", env.identity_text())
        .env(
            "AGENTCRED_STORE_FINGERPRINT",
            "00000000000000000000000000000000",
        )
        .assert()
        .code(6)
        .stderr(predicate::str::contains("AGENTCRED_STORE_FINGERPRINT"));
}

#[test]
fn recipients_file_edited_by_hand_is_refused_before_encrypting_to_it() {
    let env = TestEnv::init();
    env.add("a", b"1");
    let intruder = TestEnv::init().recipient();
    let path = env.store.join("recipients.txt");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&format!("{intruder}\n"));
    fs::write(&path, text).unwrap();
    let before = env.snapshot();
    env.cmd()
        .args(["add", "b"])
        .write_stdin("2")
        .assert()
        .code(6)
        .stderr(predicate::str::contains("recipients.txt"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn group_writable_store_is_refused_and_symlinked_files_are_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::init();
    env.add("a", b"1");
    fs::set_permissions(&env.store, fs::Permissions::from_mode(0o770)).unwrap();
    env.cmd().args(["get", "a"]).assert().code(6).stderr(
        predicate::str::contains("writable by group or others")
            .and(predicate::str::contains("chmod 700")),
    );
    fs::set_permissions(&env.store, fs::Permissions::from_mode(0o700)).unwrap();

    let elsewhere = env.dir.path().join("elsewhere.age");
    fs::rename(env.secret_file("a"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.secret_file("a")).unwrap();
    env.cmd().args(["get", "a"]).assert().failure();
}

#[test]
fn older_generation_warns() {
    let env = TestEnv::init();
    env.add("a", b"1");
    let old_manifest = fs::read(env.manifest_path()).unwrap();
    let old_secret = fs::read(env.secret_file("a")).unwrap();
    env.cmd()
        .args(["add", "a", "--force"])
        .write_stdin("2")
        .assert()
        .success();
    env.get("a");
    // Roll back both files together, as a `git checkout` of an old commit would.
    fs::write(env.manifest_path(), old_manifest).unwrap();
    fs::write(env.secret_file("a"), old_secret).unwrap();
    env.cmd()
        .args(["get", "a"])
        .assert()
        .success()
        .stdout("1")
        .stderr(predicate::str::contains(
            "warning: this store is at generation",
        ));
    // Reading an old checkout is fine; writing over a rollback is refused until accepted.
    let before = env.snapshot();
    env.cmd()
        .args(["add", "b"])
        .write_stdin("x")
        .assert()
        .code(6)
        .stderr(predicate::str::contains(
            "refusing to write over a rollback",
        ))
        .stderr(predicate::str::contains("doctor --trust"));
    assert_eq!(env.snapshot(), before);
    env.cmd().args(["doctor", "--trust"]).assert().code(2);
    env.cmd()
        .args(["doctor", "--trust", "--yes"])
        .assert()
        .success();
    env.cmd()
        .args(["add", "b"])
        .write_stdin("x")
        .assert()
        .success();
}

#[test]
fn a_whole_new_store_put_in_place_of_a_known_one_is_refused() {
    // An attacker with only the victim's public recipient makes a fresh store (new id, new
    // key) whose values and recipients they chose, and puts it where the victim's was.
    let victim = TestEnv::init();
    victim.add("openai-api-key", b"the-real-key");
    let attacker = TestEnv::new();
    attacker
        .cmd()
        .args(["init", "--recipient", &victim.recipient()])
        .assert()
        .success();
    attacker.add("openai-api-key", b"attacker-value");
    fs::remove_dir_all(&victim.store).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&attacker.store)
        .arg(&victim.store)
        .status()
        .unwrap();
    assert!(status.success());
    let out = victim
        .cmd()
        .args(["get", "openai-api-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr_of(&out).contains("another store"),
        "{}",
        stderr_of(&out)
    );
    assert!(stderr_of(&out).contains("doctor --trust"));
    victim
        .cmd()
        .args(["add", "new-key"])
        .write_stdin("secret")
        .assert()
        .code(6);
}

#[test]
fn crlf_line_ends_cannot_hide_an_agent_from_exec() {
    let env = TestEnv::init();
    env.add("a", b"allowed");
    env.add("b", b"forbidden");
    env.cmd()
        .args(["agent", "add", "printenv", "--allow", "a"])
        .assert()
        .success();
    let original = fs::read_to_string(env.manifest_path()).unwrap();
    let script = ["exec", "--", "printenv", "B"];
    // Only the agent's header line, then the whole file, in CRLF: the agent still applies.
    fs::write(
        env.manifest_path(),
        original.replace("[agents.printenv]\n", "[agents.printenv]\r\n"),
    )
    .unwrap();
    env.cmd().args(script).assert().code(1).stdout("");
    fs::write(env.manifest_path(), original.replace('\n', "\r\n")).unwrap();
    env.cmd().args(script).assert().code(1).stdout("");
    env.cmd()
        .args(["exec", "--", "printenv", "A"])
        .assert()
        .success()
        .stdout("allowed\n");
    // A lone carriage return is refused outright.
    fs::write(
        env.manifest_path(),
        original.replace("[agents.printenv]\n", "[agents.printenv]\r"),
    )
    .unwrap();
    env.cmd().args(script).assert().code(6);
}

#[test]
fn a_store_id_that_is_not_hex_is_refused_before_it_names_any_file() {
    let env = TestEnv::init();
    env.add("a", b"1");
    let text = fs::read_to_string(env.manifest_path()).unwrap();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("store_id = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let escape = env.dir.path().join("PWNED");
    let evil = format!("../../../../../../../../..{}", escape.display());
    fs::write(env.manifest_path(), text.replace(&id, &evil)).unwrap();
    env.cmd()
        .args(["get", "a"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("not 16 lowercase hex digits"));
    assert!(!env.dir.path().join("PWNED.json").exists());
}
