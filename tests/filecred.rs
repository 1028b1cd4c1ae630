//! `--kind file`: the value in a private file for the program's lifetime, the variable
//! holding its path; removed after the program, after a signal, and after a SIGKILL.

use crate::common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;
use rustix::process::{Pid, Signal, kill_process};

/// A service-account-like JSON with a NUL byte and more than 128 KiB: neither could be an
/// environment variable.
fn key_file_bytes() -> Vec<u8> {
    let mut value = b"{\"type\": \"service_account\", \"private_key\": \"".to_vec();
    value.extend(std::iter::repeat_n(b'k', 200 * 1024));
    value.extend_from_slice(b"\\n\0\"}\n");
    value
}

/// A store with `gcp-sa` (kind file, GOOGLE_APPLICATION_CREDENTIALS) and `api-key`, and a
/// private runtime dir for file credentials.
fn setup() -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::init();
    let original = env.dir.path().join("sa.json");
    fs::write(&original, key_file_bytes()).unwrap();
    env.cmd()
        .args(["add", "gcp-sa", "--kind", "file", "--env"])
        .arg("GOOGLE_APPLICATION_CREDENTIALS")
        .arg("--from-file")
        .arg(&original)
        .assert()
        .success();
    env.add("api-key", b"sk-api-0123456789");
    let run = env.dir.path().join("run");
    fs::create_dir(&run).unwrap();
    fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    (env, run, original)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_program_gets_a_private_file_with_the_exact_bytes() {
    let (env, run, original) = setup();
    let out = env
        .cmd()
        .env("XDG_RUNTIME_DIR", &run)
        .env("ORIGINAL", &original)
        .args(["exec", "--", "sh", "-c"])
        .arg(r#"f=$GOOGLE_APPLICATION_CREDENTIALS; stat -c %a "$f" "${f%/*}"; cmp "$f" "$ORIGINAL" && echo same; echo "$f"; printf '%s\n' "$API_KEY"; exit 7"#)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr_of(&out));
    let text = stdout_of(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..3], ["600", "700", "same"], "{text}");
    let path = Path::new(lines[3]);
    assert!(path.starts_with(&run), "{text}");
    assert_eq!(path.file_name().unwrap(), "gcp-sa");
    let dir = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    assert!(dir.starts_with("agentcred-"), "{dir}");
    // Secrets still travel as variables alongside.
    assert_eq!(lines[4], "sk-api-0123456789");
    // Gone after the program exits.
    assert!(!path.exists());
    assert_eq!(entries(&run), Vec::<String>::new());
}

#[test]
fn without_a_runtime_dir_the_temp_dir_is_used() {
    let (env, _run, _) = setup();
    let tmp = env.dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let out = env
        .cmd()
        .env("TMPDIR", &tmp)
        .args(["exec", "--only", "gcp-sa", "--", "sh", "-c"])
        .arg(r#"echo "$GOOGLE_APPLICATION_CREDENTIALS""#)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).starts_with(tmp.to_str().unwrap()));
    assert_eq!(entries(&tmp), Vec::<String>::new());
}

/// Start `exec` with a program that prints its pid and the file's path, then sleeps.
fn start_sleeper(env: &TestEnv, run: &Path) -> (std::process::Child, u32, PathBuf) {
    let mut child = env
        .std_cmd()
        .env("XDG_RUNTIME_DIR", run)
        .args(["exec", "--only", "gcp-sa", "--", "sh", "-c"])
        .arg(r#"echo "$$ $GOOGLE_APPLICATION_CREDENTIALS"; exec sleep 30"#)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let (pid, path) = line.trim_end().split_once(' ').unwrap();
    let path = PathBuf::from(path);
    assert!(path.exists(), "{line}");
    (child, pid.parse().unwrap(), path)
}

fn signal(pid: u32, signal: Signal) {
    kill_process(Pid::from_raw(pid as i32).unwrap(), signal).unwrap();
}

#[test]
fn removed_when_agentcred_is_terminated() {
    let (env, run, _) = setup();
    let (agentcred, _, path) = start_sleeper(&env, &run);
    signal(agentcred.id(), Signal::TERM);
    let out = agentcred.wait_with_output().unwrap();
    // SIGTERM was passed on; the program died of it; agentcred says so the shell's way.
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr_of(&out));
    assert!(!path.exists());
    assert_eq!(entries(&run), Vec::<String>::new());
}

#[test]
fn a_killed_agentcreds_directory_is_removed_by_the_next_run() {
    let (env, run, _) = setup();
    let (mut agentcred, program, path) = start_sleeper(&env, &run);
    signal(agentcred.id(), Signal::KILL);
    agentcred.wait().unwrap();
    // Nobody cleaned up: the file outlives its agentcred.
    assert!(path.exists());
    signal(program, Signal::KILL);
    // A directory of another live process is left alone.
    let live = run.join(format!(
        "agentcred-{}-0-{}",
        std::process::id(),
        "0".repeat(16)
    ));
    fs::create_dir(&live).unwrap();
    env.cmd()
        .env("XDG_RUNTIME_DIR", &run)
        .args(["-v", "exec", "--only", "gcp-sa", "--", "true"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "removed 1 file-credential directory left by an agentcred that was killed",
        ));
    assert!(!path.exists());
    assert!(!path.parent().unwrap().exists());
    assert!(live.exists());
}

#[test]
fn a_value_that_cannot_be_a_variable_points_to_kind_file() {
    let env = TestEnv::init();
    let original = env.dir.path().join("blob");
    fs::write(&original, b"nul\0inside").unwrap();
    env.cmd()
        .args(["add", "blob", "--from-file"])
        .arg(&original)
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--", "true"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("value of blob cannot be an environment variable")
                .and(predicate::str::contains("--kind file")),
        );
}

#[test]
fn rotate_verify_gets_the_new_value_as_a_file() {
    let (env, run, _) = setup();
    let new = env.dir.path().join("new.json");
    fs::write(&new, b"{\"type\": \"service_account\", \"v\": 2}\0").unwrap();
    env.cmd()
        .env("XDG_RUNTIME_DIR", &run)
        .env("NEW", &new)
        .args(["rotate", "gcp-sa", "--from-file"])
        .arg(&new)
        .args([
            "--verify",
            r#"cmp "$GOOGLE_APPLICATION_CREDENTIALS" "$NEW""#,
        ])
        .assert()
        .success();
    assert_eq!(env.get("gcp-sa"), fs::read(&new).unwrap());
    assert_eq!(entries(&run), Vec::<String>::new());
    env.cmd()
        .args(["list", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""kind": "file""#));
}
