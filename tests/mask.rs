//! `exec --mask`: injected values (and their encoded forms) replaced in the program's output,
//! however it is written, promptly, and with a terminal still a terminal.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;

const KEY: &str = "sk-proj-Zx81Qw7Lm2";
const KEY_MASK: &str = "<agentcred:openai-api-key>";

fn store() -> TestEnv {
    let env = TestEnv::init();
    env.add("openai-api-key", KEY.as_bytes());
    env.add("pin", b"42");
    env.add("other", b"not-injected-value");
    env
}

fn masked(env: &TestEnv, script: &str) -> std::process::Output {
    env.cmd()
        .args([
            "exec",
            "--mask",
            "--only",
            "openai-api-key,pin",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap()
}

#[test]
fn stdout_and_stderr_are_masked_and_the_exit_code_kept() {
    let env = store();
    let out = masked(
        &env,
        r#"echo "key=$OPENAI_API_KEY."; echo "warn: $OPENAI_API_KEY" >&2; echo not-injected-value; exit 7"#,
    );
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        stdout_of(&out),
        format!("key={KEY_MASK}.\nnot-injected-value\n")
    );
    assert_eq!(stderr_of(&out), format!("warn: {KEY_MASK}\n"));
}

#[test]
fn a_value_written_one_byte_at_a_time() {
    let env = store();
    // One printf per character, with pauses: every byte is its own write and read.
    let out = masked(
        &env,
        r#"v=$OPENAI_API_KEY; printf 'start '; while [ -n "$v" ]; do rest=${v#?}; printf %s "${v%"$rest"}"; v=$rest; sleep 0.01; done; echo ' end'"#,
    );
    assert!(out.status.success());
    assert_eq!(stdout_of(&out), format!("start {KEY_MASK} end\n"));
}

#[test]
fn encoded_forms_are_masked() {
    let env = store();
    let b64 = base64::engine::general_purpose::STANDARD;
    let basic = b64.encode(format!("user:{KEY}"));
    let out = masked(
        &env,
        &format!(
            r#"printf %s "$OPENAI_API_KEY" | base64; printf %s "$OPENAI_API_KEY" | base64 | tr '+/' '-_' | tr -d '='; echo "Authorization: Basic {basic}""#
        ),
    );
    assert!(out.status.success());
    let text = stdout_of(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], KEY_MASK, "{text}");
    assert_eq!(lines[1], KEY_MASK, "{text}");
    // Inside a longer base64 text only the characters made of the value's bits are masked.
    assert!(
        lines[2].starts_with("Authorization: Basic dXNlcj") && lines[2].contains(KEY_MASK),
        "{text}"
    );
    assert!(!text.contains(KEY) && !text.contains(&b64.encode(KEY)));
}

#[test]
fn percent_encoded_values_are_masked() {
    let env = TestEnv::init();
    env.add("db", b"p@ss w/rd:42!");
    let out = env
        .cmd()
        .args(["exec", "--mask", "--", "sh", "-c"])
        .arg("echo 'postgres://u:p%40ss%20w%2Frd%3A42%21@h' 'form=p%40ss+w%2Frd%3A42%21' 'js=p%40ss%20w%2Frd%3A42!'")
        .output()
        .unwrap();
    assert_eq!(
        stdout_of(&out),
        "postgres://u:<agentcred:db>@h form=<agentcred:db> js=<agentcred:db>\n"
    );
}

#[test]
fn short_values_are_not_masked_and_verbose_says_so() {
    let env = store();
    env.cmd()
        .args(["-v", "exec", "--mask", "--only", "pin", "--", "sh", "-c"])
        .arg(r#"echo "pin $PIN""#)
        .assert()
        .success()
        .stdout("pin 42\n")
        .stderr(predicate::str::contains(
            "not masking pin: its value is shorter than 8 bytes",
        ));
}

/// Read a line from a child's stdout on another thread, so a test can time out.
fn next_line(reader: &mpsc::Receiver<String>) -> String {
    reader
        .recv_timeout(Duration::from_secs(20))
        .expect("output did not arrive while the program was still running")
}

#[test]
fn output_is_passed_on_before_the_program_ends() {
    let env = store();
    let mut child = env
        .std_cmd()
        .args(["exec", "--mask", "--", "sh", "-c"])
        // A line, then a partial line that cannot start a value, then wait for input.
        .arg(r#"echo "ready $OPENAI_API_KEY"; printf 'progress 50%%|'; read x; echo "done $x""#)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 {
            seen.push(byte[0]);
            if byte[0] == b'\n' || byte[0] == b'|' {
                let _ = tx.send(String::from_utf8_lossy(&seen).into_owned());
                seen.clear();
            }
        }
    });
    assert_eq!(next_line(&rx), format!("ready {KEY_MASK}\n"));
    assert_eq!(next_line(&rx), "progress 50%|");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(next_line(&rx), "done go\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_closed_reader_downstream_ends_the_program_as_it_would_without_agentcred() {
    let env = store();
    let mut child = env
        .std_cmd()
        .args(["exec", "--mask", "--", "sh", "-c", "yes y"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "y\n");
    // The reader is gone: `yes` gets its broken pipe (SIGPIPE: 128 + 13).
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(141));
}

/// `sh -c SCRIPT` run in a pseudo-terminal (rexpect), with TERM set and CI unset.
fn on_a_terminal(env: &TestEnv, script: &str) -> rexpect::session::PtySession {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("AGENTCRED", TestEnv::bin())
        .env("TERM", "xterm-256color");
    rexpect::session::spawn_command(cmd, Some(30_000)).unwrap()
}

#[test]
fn on_a_terminal_the_program_still_has_one_and_colors_survive() {
    let env = store();
    let mut session = on_a_terminal(
        &env,
        r#"stty rows 33 cols 101; before=$(stty -g); "$AGENTCRED" exec --mask --only openai-api-key -- sh -c 'test -t 1 && echo stdout-is-a-terminal; test -t 2 && echo stderr-is-a-terminal; test -t 0 && echo stdin-is-a-terminal; stty size; printf "\033[31m%s\033[0m\n" "$OPENAI_API_KEY"; exit 3'; code=$?; [ "$before" = "$(stty -g)" ] && echo terminal-restored; echo "exit=$code""#,
    );
    session.exp_string("stdout-is-a-terminal").unwrap();
    session.exp_string("stderr-is-a-terminal").unwrap();
    session.exp_string("stdin-is-a-terminal").unwrap();
    session.exp_string("33 101").unwrap();
    session
        .exp_string(&format!("\x1b[31m{KEY_MASK}\x1b[0m"))
        .unwrap();
    session.exp_string("terminal-restored").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("exit=3"), "{rest:?}");
    assert!(!rest.contains(KEY), "{rest:?}");
}

#[test]
fn on_a_terminal_keys_reach_the_program_and_multiline_values_are_masked() {
    let env = TestEnv::init();
    let pem = env.dir.path().join("key.pem");
    std::fs::write(
        &pem,
        "-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----\n",
    )
    .unwrap();
    env.cmd()
        .args(["add", "tls-key", "--kind", "file", "--from-file"])
        .arg(&pem)
        .assert()
        .success();
    let mut session = on_a_terminal(
        &env,
        r#""$AGENTCRED" exec --mask -- sh -c 'cat "$TLS_KEY"; trap "echo got-ctrl-c; exit 9" INT; echo ready; read line; echo "typed $line"; while :; do sleep 0.1; done'; echo "exit=$?""#,
    );
    // The pty turns \n into \r\n: the value is still found.
    session.exp_string("<agentcred:tls-key>").unwrap();
    session.exp_string("ready").unwrap();
    session.send_line("hello").unwrap();
    session.exp_string("typed hello").unwrap();
    session.send_control('c').unwrap();
    session.exp_string("got-ctrl-c").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("exit=9"), "{rest:?}");
    assert!(!rest.contains("AAAABBBBCCCC"), "{rest:?}");
}

#[test]
fn on_a_terminal_ctrl_z_suspends_agentcred_and_fg_resumes_both() {
    let env = store();
    let mut cmd = std::process::Command::new("bash");
    // `set -m`: job control, as in an interactive shell.
    cmd.arg("-c")
        .arg(r#"set -m; "$AGENTCRED" exec --mask --only openai-api-key -- sh -c 'echo ready; read line; echo "got $line $OPENAI_API_KEY"'; echo "suspended=$?"; fg; echo "exit=$?""#)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("AGENTCRED", TestEnv::bin())
        .env("TERM", "xterm-256color");
    let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    session.exp_string("ready").unwrap();
    session.send_control('z').unwrap();
    // The shell got its terminal back: agentcred stopped (128 + SIGTSTP).
    session.exp_string("suspended=148").unwrap();
    session.send_line("hello").unwrap();
    session
        .exp_string(&format!("got hello {KEY_MASK}"))
        .unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("exit=0"), "{rest:?}");
}

/// Past about a hundred values the forms are looked up by their first bytes instead of
/// compiled (`mask/keyed.rs`): with 300 keys that all start `sk-proj-`, each is still
/// found as itself, base64-encoded and written one byte at a time, and text that only
/// starts like one passes.
#[test]
fn with_hundreds_of_keys_alike_each_is_still_masked() {
    let env = TestEnv::init();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut pairs = String::new();
    for i in 1..=300 {
        let tail: String = (0..24)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                    [(seed % 62) as usize] as char
            })
            .collect();
        pairs.push_str(&format!("KEY_{i}=sk-proj-{tail}\n"));
    }
    env.cmd()
        .args(["import", "-"])
        .write_stdin(pairs)
        .assert()
        .success();
    let out = env
        .cmd()
        .args(["exec", "--mask", "--", "sh", "-c"])
        .arg(concat!(
            r#"echo "a $KEY_7 b"; printf %s "$KEY_250" | base64; "#,
            r#"v=$KEY_123; while [ -n "$v" ]; do rest=${v#?}; printf %s "${v%"$rest"}"; v=$rest; sleep 0.01; done; echo ' end'; "#,
            r#"echo 'sk-proj-ABC is not one'; printf %s "$KEY_300" | base64 | tr '+/' '-_' | tr -d '='"#,
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out),
        "a <agentcred:key-7> b\n<agentcred:key-250>\n<agentcred:key-123> end\nsk-proj-ABC is not one\n<agentcred:key-300>\n"
    );
}
