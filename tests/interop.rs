//! A stock `age` (not our code) decrypts the store with the user's identity.

use crate::common;

use common::TestEnv;
use std::process::Command;

#[test]
fn stock_age_decrypts_a_secret_file_and_the_envelope_is_as_documented() {
    let env = TestEnv::init();
    env.add("api-key", b"sk-interop");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(env.identity_path())
        .arg(env.secret_file("api-key"))
        .output()
        .expect("the age CLI (Debian package age) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = std::fs::read_to_string(env.manifest_path()).unwrap();
    let store_id = manifest
        .lines()
        .find_map(|l| l.strip_prefix("store_id = \""))
        .unwrap()
        .trim_end_matches('"');
    assert_eq!(
        out.stdout,
        format!("agentcred-secret/v1 {store_id} api-key\nsk-interop").as_bytes()
    );
}

#[test]
fn stock_age_identity_file_is_accepted() {
    // An identity made by age-keygen works as AGENTCRED_IDENTITY_FILE.
    let env = TestEnv::new();
    let key = env.dir.path().join("key.txt");
    let status = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(status.status.success());
    env.cmd()
        .arg("init")
        .env("AGENTCRED_IDENTITY_FILE", &key)
        .assert()
        .success();
    env.cmd()
        .args(["add", "k"])
        .env("AGENTCRED_IDENTITY_FILE", &key)
        .write_stdin("v")
        .assert()
        .success();
    assert!(
        !env.identity_path().exists(),
        "no second identity was created"
    );
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(env.secret_file("k"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.ends_with(b"\nv"));
}
