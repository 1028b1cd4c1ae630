//! `exec`: what the child gets, and that it really is the child (execve).

use crate::common;

use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;
use std::os::unix::process::ExitStatusExt;

fn store_with_two() -> TestEnv {
    let env = TestEnv::init();
    env.add("OPENAI_API_KEY", b"sk-one");
    env.cmd()
        .args(["add", "db", "--env", "DB_PASSWORD"])
        .write_stdin("pw two")
        .assert()
        .success();
    env
}

#[test]
fn injects_every_credential_by_default() {
    let env = store_with_two();
    env.cmd()
        .args([
            "exec",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$OPENAI_API_KEY\" \"$DB_PASSWORD\"",
        ])
        .assert()
        .success()
        .stdout("sk-one|pw two");
}

#[test]
fn only_narrows_and_unknown_is_not_found() {
    let env = store_with_two();
    env.cmd()
        .args([
            "exec",
            "--only",
            "db",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"${OPENAI_API_KEY-unset}\" \"$DB_PASSWORD\"",
        ])
        .assert()
        .success()
        .stdout("unset|pw two");
    env.cmd()
        .args(["exec", "--only", "nope", "--", "true"])
        .assert()
        .code(4);
}

#[test]
fn injected_override_inherited_and_unlock_variables_are_withheld() {
    let env = store_with_two();
    let text = env.identity_text();
    env.cmd()
        .args(["exec", "--", "sh", "-c", "printf '%s|%s|%s|%s' \"$OPENAI_API_KEY\" \"${AGENTCRED_IDENTITY-gone}\" \"${AGENTCRED_PASSPHRASE-gone}\" \"${AGENTCRED_IDENTITY_FILE-gone}\""])
        .env("OPENAI_API_KEY", "inherited")
        .env("AGENTCRED_IDENTITY", text)
        .env("AGENTCRED_PASSPHRASE", "p")
        .assert()
        .success()
        .stdout("sk-one|gone|gone|gone");
}

#[test]
fn clean_env_keeps_only_the_basics() {
    let env = store_with_two();
    let out = env
        .cmd()
        .args(["exec", "--clean-env", "--", "env"])
        .env("SOME_SETTING", "x")
        .env("TERM", "xterm")
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut keys: Vec<String> = stdout_of(&out)
        .lines()
        .filter_map(|l| l.split('=').next())
        .map(String::from)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "DB_PASSWORD",
            "HOME",
            "LANG",
            "OPENAI_API_KEY",
            "PATH",
            "TERM",
            "USER"
        ]
    );
}

#[test]
fn exit_status_and_signals_are_the_childs_own() {
    let env = store_with_two();
    env.cmd()
        .args(["exec", "--", "sh", "-c", "exit 42"])
        .assert()
        .code(42);
    // The process that dies of SIGTERM is the one we started: agentcred replaced itself.
    let out = env
        .cmd()
        .args(["exec", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(15), "{:?}", out.status);
}

#[test]
fn execve_keeps_the_pid() {
    let env = store_with_two();
    let child = std::process::Command::new(TestEnv::bin())
        .args(["exec", "--", "sh", "-c", "echo $$"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pid.to_string());
}

#[test]
fn missing_and_unexecutable_commands() {
    let env = store_with_two();
    env.cmd()
        .args(["exec", "--", "no-such-program-xyz"])
        .assert()
        .code(127)
        .stderr(predicate::str::contains(
            "no-such-program-xyz: command not found",
        ));
    let script = env.dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    env.cmd()
        .args(["exec", "--"])
        .arg(&script)
        .assert()
        .code(126)
        .stderr(predicate::str::contains("permission denied"));
}

#[test]
fn verbose_names_what_was_injected_never_values() {
    let env = store_with_two();
    let out = env
        .cmd()
        .args(["-v", "exec", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("openai-api-key as OPENAI_API_KEY") && err.contains("db as DB_PASSWORD"),
        "{err}"
    );
    assert!(!err.contains("sk-one") && !err.contains("pw two"));
}

#[test]
fn arguments_pass_through_untouched() {
    let env = store_with_two();
    env.cmd()
        .args(["exec", "--", "printf", "%s,", "--only", "-v", "a b"])
        .assert()
        .success()
        .stdout("--only,-v,a b,");
}

#[test]
fn two_credentials_for_one_variable_must_be_chosen_between() {
    let env = TestEnv::init();
    env.cmd()
        .args(["add", "openai-prod", "--env", "OPENAI_API_KEY"])
        .write_stdin("prod")
        .assert()
        .success();
    env.cmd()
        .args(["add", "openai-dev", "--env", "OPENAI_API_KEY"])
        .write_stdin("dev")
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("both injected as OPENAI_API_KEY"));
    // export too: one of the two would silently replace the other in its output.
    env.cmd()
        .args(["export"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("both injected as OPENAI_API_KEY"));
    // A name given twice is one credential, not two for one variable.
    env.cmd()
        .args(["export", "--only", "openai-dev,openai-dev"])
        .assert()
        .success()
        .stdout("OPENAI_API_KEY='dev'\n");
    env.cmd()
        .args([
            "exec",
            "--only",
            "openai-dev",
            "--",
            "printenv",
            "OPENAI_API_KEY",
        ])
        .assert()
        .success()
        .stdout("dev\n");
}

#[test]
fn a_mistyped_option_is_a_usage_error_not_a_missing_program() {
    let env = store_with_two();
    env.cmd()
        .args(["exec", "--mak", "--", "true"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown option --mak"));
}

#[test]
fn the_size_limit_counts_the_variable_name_too() {
    let env = TestEnv::init();
    // Fits alone, but not as LONG_VARIABLE_NAME=value plus its NUL.
    let value = vec![b'x'; 128 * 1024 - 2];
    let path = env.dir.path().join("v");
    std::fs::write(&path, &value).unwrap();
    env.cmd()
        .args(["add", "big", "--env", "LONG_VARIABLE_NAME", "--from-file"])
        .arg(&path)
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--", "true"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "value of big cannot be an environment variable",
        ));
}

#[test]
fn a_symlinked_store_directory_is_followed() {
    let env = store_with_two();
    let link = env.dir.path().join("store-link");
    std::os::unix::fs::symlink(&env.store, &link).unwrap();
    env.cmd()
        .args(["get", "db"])
        .env("AGENTCRED_STORE", &link)
        .assert()
        .success()
        .stdout("pw two");
}

/// exec runs the file it found along PATH (the kernel is not asked to search again), but
/// the program still sees CMD as typed in argv[0], in both modes and for a pinned agent.
#[test]
fn the_program_sees_its_name_as_typed() {
    let env = store_with_two();
    let argv0 = ["sh", "-c", "printf '%s' \"$0\""];
    for mode in [&[][..], &["--mask"][..]] {
        env.cmd()
            .arg("exec")
            .args(mode)
            .arg("--")
            .args(argv0)
            .assert()
            .success()
            .stdout("sh");
    }
    env.cmd()
        .args(["agent", "add", "shell", "--allow", "db", "--program", "sh"])
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--agent", "shell", "--"])
        .args(argv0)
        .assert()
        .success()
        .stdout("sh");
}

/// An empty PATH entry means the current directory, as for execvp.
#[test]
fn an_empty_path_entry_finds_programs_in_the_current_directory() {
    use std::os::unix::fs::PermissionsExt;
    let env = store_with_two();
    let tool = env.dir.path().join("localtool");
    std::fs::write(&tool, "#!/bin/sh\nprintf 'local:%s' \"${#DB_PASSWORD}\"\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(":{}", std::env::var("PATH").unwrap());
    for mode in [&[][..], &["--mask"][..]] {
        env.cmd()
            .env("PATH", &path)
            .arg("exec")
            .args(mode)
            .args(["--", "localtool"])
            .assert()
            .success()
            .stdout("local:6");
    }
    // Without the empty entry it is not found, as before.
    env.cmd()
        .args(["exec", "--", "localtool"])
        .assert()
        .code(127);
}

/// `exec` reads the manifest in pieces, keeping every credential in name order and
/// finding `--only`'s by that order; a manifest it cannot read so (CRLF line ends) is read
/// whole. Both give the child the same variables.
#[test]
fn every_credential_and_only_read_in_pieces_or_whole_inject_the_same() {
    let env = TestEnv::init();
    // Names whose order as strings is not the order they were added in.
    for (name, value) in [
        ("b", "2"),
        ("a0", "3"),
        ("a1.x", "4"),
        ("a-b", "5"),
        ("a", "1"),
    ] {
        env.add(name, value.as_bytes());
    }
    let every = ["exec", "--clean-env", "--", "env"];
    let only = ["exec", "--clean-env", "--only", "a0,a-b,b", "--", "env"];
    let injected = |args: &[&str]| {
        let out = env.cmd().args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let mut lines: Vec<String> = stdout_of(&out)
            .lines()
            .filter(|l| l.starts_with(['A', 'B']))
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let streamed = (injected(&every), injected(&only));
    assert_eq!(
        streamed.0,
        ["A0=3", "A1_X=4", "A=1", "A_B=5", "B=2"].map(String::from)
    );
    assert_eq!(streamed.1, ["A0=3", "A_B=5", "B=2"].map(String::from));
    let text = std::fs::read_to_string(env.manifest_path()).unwrap();
    std::fs::write(env.manifest_path(), text.replace('\n', "\r\n")).unwrap();
    assert_eq!((injected(&every), injected(&only)), streamed);
}
