//! Parallel writers and writers killed at random moments.

use crate::common;

use common::{TestEnv, stderr_of};
use std::process::{Command, Stdio};
use std::time::Duration;

fn raw_cmd(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(TestEnv::bin());
    cmd.args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("CI", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn thirty_two_parallel_adds_all_land() {
    let env = TestEnv::init();
    let children: Vec<_> = (0..32)
        .map(|i| {
            let mut child = raw_cmd(&env, &["add", &format!("key-{i}")])
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("value-{i}").as_bytes())
                .unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    for i in 0..32 {
        assert_eq!(
            env.get(&format!("key-{i}")),
            format!("value-{i}").as_bytes()
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&env.cmd().args(["list", "--json"]).output().unwrap().stdout)
            .unwrap();
    assert_eq!(json["credentials"].as_array().unwrap().len(), 32);
}

#[test]
fn sigkill_during_add_force_leaves_old_or_new_value() {
    let env = TestEnv::init();
    env.add("k", b"value-0");
    let mut seen_new = 0;
    let mut previous = b"value-0".to_vec();
    for round in 1..=50u64 {
        let new_value = format!("value-{round}");
        let mut child = raw_cmd(&env, &["add", "k", "--force"]).spawn().unwrap();
        {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(new_value.as_bytes())
                .unwrap();
        }
        // Spread the kill over the whole life of the process (a few milliseconds).
        std::thread::sleep(Duration::from_micros((round * 397) % 12_000));
        let _ = child.kill();
        let _ = child.wait();
        let value = env.get("k");
        assert!(
            value == previous || value == new_value.as_bytes(),
            "round {round}: got {:?}",
            String::from_utf8_lossy(&value)
        );
        if value == new_value.as_bytes() {
            seen_new += 1;
        }
        previous = value;
        // The store must also still accept writes.
        if round % 10 == 0 {
            env.cmd()
                .args(["add", &format!("extra-{round}")])
                .write_stdin("x")
                .assert()
                .success();
        }
    }
    eprintln!("{seen_new} of 50 adds completed before the kill");
    assert!(seen_new < 50, "some kills landed mid-write");
}
