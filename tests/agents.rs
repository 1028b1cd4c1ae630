//! Agents: managing them, exec's selection precedence, denial, program binding, and
//! tampering with an agent entry.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;

/// What the child prints: the three variables it may get, and its AGENTCRED_AGENT.
const REPORT: &str =
    "printf '%s|%s|%s|%s' \"${A-}\" \"${B-}\" \"${C-}\" \"${AGENTCRED_AGENT-none}\"";

/// A store with credentials a, b, c (values va, vb, vc) and agents `bot` (a, b) and
/// `mybot` (c), plus a program named `mybot` on a PATH of its own.
struct Fixture {
    env: TestEnv,
    bin: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let env = TestEnv::init();
        for (name, value) in [("a", "va"), ("b", "vb"), ("c", "vc")] {
            env.add(name, value.as_bytes());
        }
        let bin = env.dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        write_program(&bin.join("mybot"), REPORT);
        agent_add(&env, &["bot", "--allow", "a,b"]);
        agent_add(&env, &["mybot", "--allow", "c"]);
        Fixture { env, bin }
    }

    /// `PATH` with the fixture's bin first.
    fn path(&self, first: &[&Path]) -> std::ffi::OsString {
        let mut dirs: Vec<PathBuf> = first.iter().map(|p| p.to_path_buf()).collect();
        dirs.push(self.bin.clone());
        dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        std::env::join_paths(dirs).unwrap()
    }

    /// `agentcred [args]` with the fixture's PATH; returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str], agent_var: Option<&str>) -> (i32, String, String) {
        let mut cmd = self.env.cmd();
        cmd.env("PATH", self.path(&[])).args(args);
        if let Some(value) = agent_var {
            cmd.env("AGENTCRED_AGENT", value);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            stdout_of(&out),
            stderr_of(&out),
        )
    }
}

fn write_program(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn agent_add(env: &TestEnv, args: &[&str]) {
    env.cmd()
        .args(["agent", "add"])
        .args(args)
        .assert()
        .success();
}

#[test]
fn add_list_show_and_their_errors() {
    let f = Fixture::new();
    let env = &f.env;
    env.cmd()
        .args(["agent", "list"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^bot\s+a,b\s+-\s+-$").unwrap())
        .stdout(predicate::str::is_match(r"(?m)^mybot\s+c\s+-\s+-$").unwrap());
    agent_add(
        env,
        &[
            "strict",
            "--allow",
            "a",
            "--clean-env",
            "--mask",
            "--deny-overdue",
        ],
    );
    let out = env
        .cmd()
        .args(["agent", "show", "strict", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "strict");
    assert_eq!(json["allow"], serde_json::json!(["a"]));
    assert_eq!(json["program"], serde_json::Value::Null);
    assert_eq!(
        (&json["clean_env"], &json["mask"], &json["deny_overdue"]),
        (&true.into(), &true.into(), &true.into())
    );
    assert_eq!(json["verified"], true);
    assert!(
        json["created_by"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}@", common::account()))
    );
    let list: serde_json::Value = serde_json::from_slice(
        &env.cmd()
            .args(["agent", "list", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let names: Vec<&str> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bot", "mybot", "strict"]);
    env.cmd()
        .args(["agent", "show", "strict"])
        .assert()
        .success()
        .stdout(predicate::str::contains("deny overdue:   yes"))
        .stdout(predicate::str::contains("program:        any"));

    let before = env.snapshot();
    env.cmd()
        .args(["agent", "add", "x", "--allow", "a,nope"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("credential nope not found"));
    env.cmd()
        .args(["agent", "add", "Bad/Name", "--allow", "a"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid agent name"));
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "c"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("agent bot already exists"))
        .stderr(predicate::str::contains("--force"));
    env.cmd()
        .args(["agent", "add", "x", "--allow", "a", "--pin-sha256"])
        .assert()
        .code(2);
    env.cmd()
        .args([
            "agent",
            "add",
            "x",
            "--allow",
            "a",
            "--program",
            "no-such-program-xyz",
        ])
        .assert()
        .code(4)
        .stderr(predicate::str::contains(
            "program no-such-program-xyz not found",
        ));
    env.cmd().args(["agent", "show", "nope"]).assert().code(4);
    env.cmd().args(["agent", "rm", "nope"]).assert().code(4);
    assert_eq!(env.snapshot(), before, "failures change nothing");

    agent_add(env, &["bot", "--allow", "c", "--force"]);
    let (code, out, _) = f.run(&["exec", "--agent", "bot", "--", "sh", "-c", REPORT], None);
    assert_eq!((code, out.as_str()), (0, "||vc|bot"));
}

#[test]
fn only_comes_before_the_agent_and_narrows_it() {
    let f = Fixture::new();
    let (code, out, err) = f.run(
        &[
            "-v", "exec", "--agent", "bot", "--only", "b", "--", "sh", "-c", REPORT,
        ],
        None,
    );
    assert_eq!((code, out.as_str()), (0, "|vb||bot"), "{err}");
    assert!(
        err.contains("--only chose the credentials, within agent bot (chosen by --agent)"),
        "{err}"
    );
    assert!(err.contains("injecting b as B"), "{err}");
}

#[test]
fn agent_flag_comes_before_the_variable() {
    let f = Fixture::new();
    let (code, out, err) = f.run(
        &["-v", "exec", "--agent", "bot", "--", "mybot"],
        Some("mybot"),
    );
    assert_eq!((code, out.as_str()), (0, "va|vb||bot"), "{err}");
    assert!(err.contains("agent bot (chosen by --agent)"), "{err}");
}

#[test]
fn the_variable_comes_before_the_program_name() {
    let f = Fixture::new();
    let (code, out, err) = f.run(&["-v", "exec", "--", "mybot"], Some("bot"));
    assert_eq!((code, out.as_str()), (0, "va|vb||bot"), "{err}");
    assert!(
        err.contains("agent bot (chosen by AGENTCRED_AGENT)"),
        "{err}"
    );
}

#[test]
fn the_program_name_comes_before_every_credential() {
    let f = Fixture::new();
    let (code, out, err) = f.run(&["-v", "exec", "--", "mybot"], None);
    assert_eq!((code, out.as_str()), (0, "||vc|mybot"), "{err}");
    assert!(
        err.contains("agent mybot (named like the program)") && err.contains("injecting c as C"),
        "{err}"
    );
    // By path too: the rule looks at the file name.
    let path = f.bin.join("mybot");
    let (code, out, _) = f.run(&["exec", "--", path.to_str().unwrap()], None);
    assert_eq!((code, out.as_str()), (0, "||vc|mybot"));
}

#[test]
fn without_an_agent_every_credential_and_no_agent_variable() {
    let f = Fixture::new();
    // An empty AGENTCRED_AGENT is unset, and never reaches the child.
    let (code, out, err) = f.run(&["-v", "exec", "--", "sh", "-c", REPORT], Some(""));
    assert_eq!((code, out.as_str()), (0, "va|vb|vc|none"), "{err}");
    assert!(
        err.contains(
            "every credential: no --only, no --agent, no AGENTCRED_AGENT, and no agent named sh"
        ),
        "{err}"
    );
    let (code, out, err) = f.run(
        &["-v", "exec", "--only", "c", "--", "sh", "-c", REPORT],
        None,
    );
    assert_eq!((code, out.as_str()), (0, "||vc|none"), "{err}");
    assert!(
        err.contains("--only chose the credentials (no agent applies)"),
        "{err}"
    );
}

#[test]
fn asking_an_agent_for_more_is_denied() {
    let f = Fixture::new();
    let marker = f.env.dir.path().join("started");
    let touch = format!("touch {}", marker.display());
    let (code, _, err) = f.run(
        &[
            "exec", "--agent", "bot", "--only", "a,c", "--", "sh", "-c", &touch,
        ],
        None,
    );
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("error: agent bot is not allowed credential c"),
        "{err}"
    );
    assert!(
        err.contains("hint: `agentcred agent grant bot c` allows it"),
        "{err}"
    );
    // The agent chosen by the program's name bounds --only as well.
    let (code, _, err) = f.run(&["exec", "--only", "a", "--", "mybot"], None);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("agent mybot is not allowed credential a"),
        "{err}"
    );
    let (code, _, err) = f.run(
        &["exec", "--only", "a", "--", "sh", "-c", &touch],
        Some("mybot"),
    );
    assert_eq!(code, 7, "{err}");
    assert!(!marker.exists(), "the program never started");
}

#[test]
fn an_unknown_agent_is_not_found() {
    let f = Fixture::new();
    let marker = f.env.dir.path().join("started");
    let touch = format!("touch {}", marker.display());
    let (code, _, err) = f.run(&["exec", "--agent", "nope", "--", "sh", "-c", &touch], None);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("error: agent nope not found"), "{err}");
    let (code, _, err) = f.run(&["exec", "--", "sh", "-c", &touch], Some("nope"));
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = f.run(&["exec", "--", "sh", "-c", &touch], Some("No Such"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AGENTCRED_AGENT"), "{err}");
    assert!(!marker.exists());
}

#[test]
fn grant_and_revoke_take_effect() {
    let f = Fixture::new();
    let env = &f.env;
    env.cmd()
        .args(["agent", "grant", "bot", "c"])
        .assert()
        .success()
        .stderr(predicate::str::contains("agent bot may receive a, b, c"));
    let (code, out, _) = f.run(&["exec", "--agent", "bot", "--", "sh", "-c", REPORT], None);
    assert_eq!((code, out.as_str()), (0, "va|vb|vc|bot"));
    env.cmd()
        .args(["agent", "revoke", "bot", "a", "c"])
        .assert()
        .success();
    let (code, out, _) = f.run(&["exec", "--agent", "bot", "--", "sh", "-c", REPORT], None);
    assert_eq!((code, out.as_str()), (0, "|vb||bot"));
    let (code, _, _) = f.run(
        &["exec", "--agent", "bot", "--only", "a", "--", "true"],
        None,
    );
    assert_eq!(code, 7);
    env.cmd()
        .args(["agent", "grant", "bot", "nope"])
        .assert()
        .code(4);
    env.cmd()
        .args(["agent", "grant", "nope", "a"])
        .assert()
        .code(4);
    env.cmd()
        .args(["agent", "revoke", "bot", "a"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "does not have a: nothing to change",
        ));
    env.cmd()
        .args(["agent", "revoke", "bot", "b"])
        .assert()
        .success()
        .stderr(predicate::str::contains("agent bot may receive nothing"));
    let (code, out, _) = f.run(&["exec", "--agent", "bot", "--", "sh", "-c", REPORT], None);
    assert_eq!((code, out.as_str()), (0, "|||bot"));
}

#[test]
fn agent_policy_clean_env_applies() {
    let f = Fixture::new();
    agent_add(&f.env, &["tidy", "--allow", "a", "--clean-env"]);
    let out = f
        .env
        .cmd()
        .args(["exec", "--agent", "tidy", "--", "env"])
        .env("SOME_SETTING", "x")
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
        ["A", "AGENTCRED_AGENT", "HOME", "LANG", "PATH", "USER"]
    );
}

#[test]
fn a_pinned_program_is_the_only_one_that_gets_the_credentials() {
    let f = Fixture::new();
    let env = &f.env;
    let real_dir = env.dir.path().join("real");
    let evil_dir = env.dir.path().join("evil");
    fs::create_dir(&real_dir).unwrap();
    fs::create_dir(&evil_dir).unwrap();
    write_program(&real_dir.join("pinbot"), REPORT);
    let marker = env.dir.path().join("evil-ran");
    write_program(
        &evil_dir.join("pinbot"),
        &format!("touch {}\n{REPORT}", marker.display()),
    );
    // Pinned by name through PATH: recorded as the absolute path.
    env.cmd()
        .args([
            "agent",
            "add",
            "pinbot",
            "--allow",
            "a",
            "--program",
            "pinbot",
        ])
        .env("PATH", f.path(&[&real_dir]))
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(
        &env.cmd()
            .args(["agent", "show", "pinbot", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let pinned = fs::canonicalize(real_dir.join("pinbot")).unwrap();
    assert_eq!(json["program"], pinned.to_str().unwrap());

    let run = |path: std::ffi::OsString, args: &[&str]| {
        let out = env.cmd().env("PATH", path).args(args).output().unwrap();
        (out.status.code(), stdout_of(&out), stderr_of(&out))
    };
    let (code, out, err) = run(f.path(&[&real_dir]), &["exec", "--", "pinbot"]);
    assert_eq!((code, out.as_str()), (Some(0), "va|||pinbot"), "{err}");
    // Another program with the same name earlier on PATH is refused, and never started.
    let (code, out, err) = run(f.path(&[&evil_dir, &real_dir]), &["exec", "--", "pinbot"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains(&format!(
            "agent pinbot may only run {}, not {}",
            pinned.display(),
            fs::canonicalize(evil_dir.join("pinbot")).unwrap().display()
        )),
        "{err}"
    );
    assert!(!marker.exists(), "the other program never ran");
    // So is any other program given the agent's credentials by name.
    let (code, _, err) = run(
        f.path(&[]),
        &["exec", "--agent", "pinbot", "--", "sh", "-c", REPORT],
    );
    assert_eq!(code, Some(7), "{err}");
    // The pinned program by its path works from any PATH.
    let (code, out, err) = run(
        f.path(&[&evil_dir]),
        &["exec", "--agent", "pinbot", "--", pinned.to_str().unwrap()],
    );
    assert_eq!((code, out.as_str()), (Some(0), "va|||pinbot"), "{err}");
    // A symlink to the pinned program resolves to it.
    let link_dir = env.dir.path().join("links");
    fs::create_dir(&link_dir).unwrap();
    std::os::unix::fs::symlink(&pinned, link_dir.join("pinbot")).unwrap();
    let (code, out, err) = run(f.path(&[&link_dir]), &["exec", "--", "pinbot"]);
    assert_eq!((code, out.as_str()), (Some(0), "va|||pinbot"), "{err}");
}

#[test]
fn a_pinned_sha256_refuses_a_changed_program() {
    let f = Fixture::new();
    let env = &f.env;
    let dir = env.dir.path().join("opt");
    fs::create_dir(&dir).unwrap();
    let program = dir.join("hashbot");
    write_program(&program, REPORT);
    env.cmd()
        .args([
            "agent",
            "add",
            "hashbot",
            "--allow",
            "b",
            "--pin-sha256",
            "--program",
        ])
        .arg(&program)
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--"])
        .arg(&program)
        .assert()
        .success()
        .stdout("|vb||hashbot");
    write_program(&program, &format!("echo changed\n{REPORT}"));
    env.cmd()
        .args(["exec", "--"])
        .arg(&program)
        .assert()
        .code(7)
        .stdout("")
        .stderr(predicate::str::contains("its sha256 changed"))
        .stderr(predicate::str::contains("--pin-sha256"));
    // Pinned again after a deliberate change, it runs.
    env.cmd()
        .args([
            "agent",
            "add",
            "hashbot",
            "--force",
            "--allow",
            "b",
            "--pin-sha256",
            "--program",
        ])
        .arg(&program)
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--"])
        .arg(&program)
        .assert()
        .success()
        .stdout("changed\n|vb||hashbot");
}

#[test]
fn a_hand_edit_granting_more_is_refused() {
    let f = Fixture::new();
    let env = &f.env;
    let text = fs::read_to_string(env.manifest_path()).unwrap();
    let edited = text.replace(
        "[agents.bot]\nallow = [\"a\", \"b\"]",
        "[agents.bot]\nallow = [\"a\", \"b\", \"c\"]",
    );
    assert_ne!(edited, text, "the fixture's layout changed");
    fs::write(env.manifest_path(), &edited).unwrap();
    let before = env.snapshot();
    let marker = env.dir.path().join("started");
    let touch = format!("touch {}", marker.display());
    let (code, out, err) = f.run(&["exec", "--agent", "bot", "--", "sh", "-c", &touch], None);
    assert_eq!(code, 6, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("the entry of agent bot was changed outside agentcred"),
        "{err}"
    );
    assert!(!marker.exists());
    // Every reader refuses it, not only exec.
    env.cmd()
        .args(["get", "a"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains("agent bot"));
    env.cmd()
        .args(["agent", "grant", "bot", "c"])
        .assert()
        .code(6);
    assert_eq!(env.snapshot(), before);
    // An agent added by hand is named too.
    fs::write(
        env.manifest_path(),
        format!("{text}\n[agents.sneaky]\nallow = [\"a\"]\ncreated_at = \"2026-01-01T00:00:00Z\"\ncreated_by = \"x@y\"\n"),
    )
    .unwrap();
    env.cmd()
        .args(["exec", "--agent", "sneaky", "--", "true"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains(
            "agent sneaky was added outside agentcred",
        ));
}

#[test]
fn removing_a_credential_removes_it_from_its_agents() {
    let f = Fixture::new();
    let env = &f.env;
    agent_add(env, &["other", "--allow", "a,c"]);
    env.cmd()
        .args(["rm", "a", "--yes"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "removed a from the agents that allowed it: bot, other",
        ));
    let (code, out, _) = f.run(&["exec", "--agent", "bot", "--", "sh", "-c", REPORT], None);
    assert_eq!((code, out.as_str()), (0, "|vb||bot"));
    env.cmd()
        .args(["agent", "show", "other"])
        .assert()
        .success()
        .stdout(predicate::str::contains("allow:          c\n"));
    // Removing an agent: `exec -- mybot` falls back to every credential.
    env.cmd()
        .args(["agent", "rm", "mybot"])
        .assert()
        .success()
        .stderr("deleted agent mybot\n");
    let (code, out, _) = f.run(&["exec", "--", "mybot"], None);
    assert_eq!((code, out.as_str()), (0, "|vb|vc|none"));
}

#[test]
fn list_and_export_take_an_agent() {
    let f = Fixture::new();
    let env = &f.env;
    let out = env
        .cmd()
        .args(["list", "--agent", "bot", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = json["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    env.cmd()
        .args(["export", "--agent", "bot"])
        .assert()
        .success()
        .stdout("A='va'\nB='vb'\n");
    env.cmd()
        .args(["export", "--agent", "bot", "--only", "b"])
        .assert()
        .success()
        .stdout("B='vb'\n");
    env.cmd()
        .args(["export", "--agent", "bot", "--only", "c"])
        .assert()
        .code(7)
        .stdout("");
    env.cmd()
        .args(["export", "--agent", "nope"])
        .assert()
        .code(4)
        .stdout("");
    env.cmd().args(["list", "--agent", "nope"]).assert().code(4);
}

#[test]
fn an_agents_deny_overdue_policy_refuses_an_overdue_credential() {
    let env = TestEnv::init();
    env.cmd()
        .args(["add", "old", "--rotated-at", "2020-01-01"])
        .write_stdin("v")
        .assert()
        .success();
    env.cmd()
        .args(["agent", "add", "strict", "--allow", "old", "--deny-overdue"])
        .assert()
        .success();
    env.cmd()
        .args(["agent", "add", "lenient", "--allow", "old"])
        .assert()
        .success();
    let marker = env.dir.path().join("started");
    env.cmd()
        .args(["exec", "--agent", "strict", "--", "touch"])
        .arg(&marker)
        .assert()
        .code(3)
        .stderr(predicates::str::contains("old"));
    assert!(!marker.exists(), "the program never starts");
    env.cmd()
        .args(["exec", "--agent", "lenient", "--", "touch"])
        .arg(&marker)
        .assert()
        .success()
        .stderr(predicates::str::contains("warning: old is overdue"));
    assert!(marker.exists());
}

#[test]
fn an_agents_mask_policy_masks_and_spawn_mode_keeps_agentcred_agent() {
    let env = TestEnv::init();
    env.add("api-key", b"sk-live-0123456789");
    let key_file = env.dir.path().join("key.json");
    std::fs::write(&key_file, b"{\"private\": true}").unwrap();
    env.cmd()
        .args([
            "add",
            "sa",
            "--kind",
            "file",
            "--env",
            "SA_FILE",
            "--from-file",
        ])
        .arg(&key_file)
        .assert()
        .success();
    env.cmd()
        .args(["agent", "add", "masked", "--allow", "api-key,sa", "--mask"])
        .assert()
        .success();
    let out = env
        .cmd()
        .args([
            "exec",
            "--agent",
            "masked",
            "--",
            "sh",
            "-c",
            "printf '%s|%s|' \"$API_KEY\" \"$AGENTCRED_AGENT\"; cat \"$SA_FILE\"",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<agentcred:api-key>|masked|<agentcred:sa>",
        "the agent's policy masks; the child still learns its agent"
    );
}
