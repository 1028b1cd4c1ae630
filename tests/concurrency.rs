//! Parallel writers and writers killed at random moments.

use crate::common;

use common::{TestEnv, stderr_of};
use std::process::{Command, Stdio};

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
    let mut mid_write = 0;
    let mut previous = b"value-0".to_vec();
    // Kill times are steered towards the write, so that some kills land in it (proved by
    // what they leave behind) however fast or loaded the machine is.
    let mut timer = common::KillTimer::new(3_000);
    let mut round = 0u64;
    while round < 50 || (mid_write < 3 && round < 400) {
        round += 1;
        let new_value = format!("value-{round}");
        let before = common::mid_write_leftovers(&env.store);
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
        timer.wait();
        let _ = child.kill();
        let _ = child.wait();
        let cut_short = common::new_leftovers(&before, &common::mid_write_leftovers(&env.store));
        let value = env.get("k");
        assert!(
            value == previous || value == new_value.as_bytes(),
            "round {round}: got {:?}",
            String::from_utf8_lossy(&value)
        );
        let completed = value == new_value.as_bytes();
        if completed {
            seen_new += 1;
        }
        if cut_short {
            mid_write += 1;
        }
        timer.steer(completed, cut_short);
        previous = value;
        // The store must also still accept writes.
        if round.is_multiple_of(10) {
            env.cmd()
                .args(["add", &format!("extra-{round}")])
                .write_stdin("x")
                .assert()
                .success();
        }
    }
    eprintln!(
        "{round} rounds: {seen_new} adds completed before the kill, {mid_write} killed mid-write"
    );
    assert!(seen_new < round, "some kills landed before the commit");
    assert!(
        mid_write > 0,
        "no kill landed mid-write (no pending or temp file seen)"
    );
}
