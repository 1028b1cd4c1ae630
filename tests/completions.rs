//! Shell completion: every shell's script, loaded by the real shells, and a bash completion of
//! stored names driven through bash's own completion machinery.

use crate::common;

use common::{TestEnv, stderr_of, stdout_of};
use std::process::Command;

fn script(env: &TestEnv, shell: &str) -> String {
    let out = env.cmd().args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "{shell}: {}", stderr_of(&out));
    let text = stdout_of(&out);
    assert!(text.contains("AGENTCRED_COMPLETE"), "{shell}: {text}");
    text
}

/// PATH with the agentcred under test first, so scripts calling `agentcred` reach it.
fn path_with_bin() -> String {
    let dir = TestEnv::bin().parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn every_shell_gets_a_script() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        script(&env, shell);
    }
    env.cmd().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn scripts_load_in_bash_zsh_and_fish() {
    let env = TestEnv::new();
    let cases = [
        ("bash", "source \"$1\" && complete -p agentcred"),
        (
            "zsh",
            "autoload -U compinit && compinit -u && source \"$1\"",
        ),
        ("fish", "source $argv[1]; and complete -c agentcred"),
    ];
    for (shell, load) in cases {
        let file = env.dir.path().join(format!("completion.{shell}"));
        std::fs::write(&file, script(&env, shell)).unwrap();
        let mut cmd = Command::new(shell);
        cmd.env("HOME", &env.home).env("PATH", path_with_bin());
        let out = if shell == "fish" {
            cmd.arg("-c").arg(load).arg(&file).output()
        } else {
            cmd.arg("-c").arg(load).arg(shell).arg(&file).output()
        }
        .unwrap_or_else(|e| panic!("{shell} is not installed (scripts/test installs it): {e}"));
        assert!(
            out.status.success(),
            "{shell}: {}{}",
            stdout_of(&out),
            stderr_of(&out)
        );
        assert!(stderr_of(&out).is_empty(), "{shell}: {}", stderr_of(&out));
    }
}

/// Run bash's completion function for `words` (the last one is being completed) and return
/// COMPREPLY.
fn bash_complete(env: &TestEnv, words: &[&str], extra_env: &[(&str, &str)]) -> Vec<String> {
    let file = env.dir.path().join("completion.bash");
    std::fs::write(&file, script(env, "bash")).unwrap();
    let driver = r#"
source "$1"; shift
fn=$(complete -p agentcred | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
"$fn" agentcred "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(driver)
        .arg("bash")
        .arg(&file)
        .args(words)
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", path_with_bin())
        .env("AGENTCRED_STORE", &env.store);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    stdout_of(&out)
        .lines()
        .map(String::from)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completes_stored_names_through_its_own_machinery() {
    let env = TestEnv::init();
    for name in ["openai-api-key", "opsgenie.token", "zed"] {
        env.add(name, b"v");
    }
    env.cmd()
        .args(["agent", "add", "opsbot", "--allow", "zed"])
        .assert()
        .success();
    assert_eq!(
        bash_complete(&env, &["agentcred", "get", "op"], &[]),
        ["openai-api-key", "opsgenie.token"]
    );
    assert_eq!(bash_complete(&env, &["agentcred", "rm", "z"], &[]), ["zed"]);
    assert_eq!(
        bash_complete(
            &env,
            &["agentcred", "exec", "--only", "openai-api-key,z"],
            &[]
        ),
        ["openai-api-key,zed"]
    );
    assert_eq!(
        bash_complete(&env, &["agentcred", "exec", "--agent", "o"], &[]),
        ["opsbot"]
    );
    let subcommands = bash_complete(&env, &["agentcred", "ro"], &[]);
    assert_eq!(subcommands, ["rotate"]);
}

#[test]
fn completion_never_unlocks_or_decrypts() {
    let env = TestEnv::init();
    env.add("only-name", b"secret-value");
    // Take the identity away: names still complete, and nothing prompts or fails.
    std::fs::remove_file(env.identity_path()).unwrap();
    assert_eq!(
        bash_complete(&env, &["agentcred", "get", "on"], &[]),
        ["only-name"]
    );
    // Another store named on the command line is the one completed from.
    let other = TestEnv::init();
    other.add("elsewhere", b"v");
    let store = other.store.to_string_lossy().into_owned();
    assert_eq!(
        bash_complete(&env, &["agentcred", "--store", &store, "get", "el"], &[]),
        ["elsewhere"]
    );
}

#[test]
fn recipients_rm_completes_the_store_recipients() {
    let env = TestEnv::init();
    let own = env.recipient();
    let key = env.dir.path().join("id_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bob@laptop", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (Debian package openssh-client) is installed");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    env.cmd()
        .args(["recipients", "add", public.trim()])
        .assert()
        .success();
    let fingerprint = {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        stdout_of(&out).split(' ').nth(1).unwrap().to_string()
    };
    // Without an identity: recipients are public, nothing is unlocked.
    std::fs::remove_file(env.identity_path()).unwrap();
    assert_eq!(
        bash_complete(&env, &["agentcred", "recipients", "rm", "age1"], &[]),
        std::slice::from_ref(&own)
    );
    assert_eq!(
        bash_complete(&env, &["agentcred", "recipients", "rm", "SHA"], &[]),
        std::slice::from_ref(&fingerprint)
    );
    let all = bash_complete(&env, &["agentcred", "recipients", "rm", ""], &[]);
    assert!(all.contains(&own) && all.contains(&fingerprint), "{all:?}");
}
