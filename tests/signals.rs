//! Spawn mode (file credentials, `--mask`): signals reach the program once, and agentcred
//! ends with the program's status.

use crate::common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of};
use rustix::process::{Pid, Signal, kill_process};

/// A store with a file credential (so `exec` spawns) and a secret.
fn store() -> TestEnv {
    let env = TestEnv::init();
    let key = env.dir.path().join("key.json");
    fs::write(&key, "{\"k\": 1}").unwrap();
    env.cmd()
        .args(["add", "key-file", "--kind", "file", "--from-file"])
        .arg(&key)
        .assert()
        .success();
    env.add("api-key", b"sk-signals-0123456789");
    env
}

fn wait_for(path: &Path, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(wanted) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{wanted} never arrived: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The program traps every forwarded signal, writing its name to a log, until told to stop.
const TRAPPER: &str = r#"for s in INT TERM HUP QUIT USR1 USR2 WINCH; do trap "echo $s >> $LOG" $s; done
echo ready
while [ ! -e "$STOP" ]; do sleep 0.02; done
exit 42"#;

fn every_signal_reaches_the_program(extra: &[&str]) {
    let env = store();
    let log = env.dir.path().join("signals.log");
    let stop = env.dir.path().join("stop");
    let mut agentcred = env
        .std_cmd()
        .env("LOG", &log)
        .env("STOP", &stop)
        .arg("exec")
        .args(extra)
        .args(["--", "sh", "-c", TRAPPER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(agentcred.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let pid = Pid::from_raw(agentcred.id() as i32).unwrap();
    let signals = [
        (Signal::INT, "INT"),
        (Signal::TERM, "TERM"),
        (Signal::HUP, "HUP"),
        (Signal::QUIT, "QUIT"),
        (Signal::USR1, "USR1"),
        (Signal::USR2, "USR2"),
        (Signal::WINCH, "WINCH"),
    ];
    for (signal, name) in signals {
        kill_process(pid, signal).unwrap();
        wait_for(&log, name);
    }
    fs::write(&stop, "").unwrap();
    let out = agentcred.wait_with_output().unwrap();
    // agentcred survived them all and ends with the program's own status.
    assert_eq!(out.status.code(), Some(42), "{}", stderr_of(&out));
    let names: Vec<String> = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        names,
        ["INT", "TERM", "HUP", "QUIT", "USR1", "USR2", "WINCH"]
    );
}

#[test]
fn every_forwarded_signal_reaches_the_program_with_a_file_credential() {
    every_signal_reaches_the_program(&[]);
}

#[test]
fn every_forwarded_signal_reaches_the_program_under_mask() {
    every_signal_reaches_the_program(&["--mask", "--only", "api-key"]);
}

#[test]
fn exit_status_is_the_programs_or_128_plus_the_signal() {
    let env = store();
    for (script, code) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -KILL $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
        ("kill -USR1 $$", 128 + 10),
    ] {
        for extra in [&[][..], &["--mask"][..]] {
            env.cmd()
                .arg("exec")
                .args(extra)
                .args(["--", "sh", "-c", script])
                .assert()
                .code(code);
        }
    }
    // Not found and not executable keep env(1)'s codes in spawn mode too.
    env.cmd()
        .args(["exec", "--mask", "--", "no-such-program-xyz"])
        .assert()
        .code(127);
}

#[test]
fn a_terminated_agentcred_passes_it_on_and_exits_like_the_program() {
    let env = store();
    let mut agentcred = env
        .std_cmd()
        .args([
            "exec",
            "--mask",
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 30",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(agentcred.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    kill_process(Pid::from_raw(agentcred.id() as i32).unwrap(), Signal::TERM).unwrap();
    let status = agentcred.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
}

#[test]
fn ctrl_c_on_the_terminal_reaches_the_program_once() {
    // No --mask: the program shares agentcred's terminal and process group, so the
    // terminal's SIGINT reaches both; agentcred must not send a second one.
    let env = store();
    let log = env.dir.path().join("ints.log");
    let mut cmd = std::process::Command::new(TestEnv::bin());
    cmd.args(["-v", "exec", "--", "sh", "-c"])
        .arg(r#"trap 'echo INT >> "$LOG"' INT; echo ready; while [ ! -e "$LOG.stop" ]; do sleep 0.02; done; echo finished"#)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("LOG", &log)
        .env("TERM", "dumb");
    let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    session.exp_string("ready").unwrap();
    session.send_control('c').unwrap();
    session
        .exp_string("SIGINT came from the terminal, which sent it to the program too")
        .unwrap();
    wait_for(&log, "INT");
    // Time for a second one to arrive, were it sent.
    std::thread::sleep(Duration::from_millis(300));
    fs::write(log.with_extension("log.stop"), "").unwrap();
    session.exp_string("finished").unwrap();
    session.exp_eof().unwrap();
    assert_eq!(fs::read_to_string(&log).unwrap(), "INT\n");
}
