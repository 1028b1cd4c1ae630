//! `doctor`: every finding, its fix, its exit code, and `--reseal`.

use crate::common;

use common::{TestEnv, stderr_of, stdout_of};
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Run doctor --json: (exit code, findings as (check, level, message, fix)).
fn doctor(env: &TestEnv) -> (i32, Vec<(String, String, String, String)>) {
    let before = env.snapshot();
    let out = env.cmd().args(["doctor", "--json"]).output().unwrap();
    assert_eq!(env.snapshot(), before, "doctor changes nothing");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout_of(&out), stderr_of(&out)));
    let code = out.status.code().unwrap();
    assert_eq!(json["healthy"], code == 0, "healthy matches the exit code");
    let findings = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("check"), s("level"), s("message"), s("fix"))
        })
        .collect();
    (code, findings)
}

fn find<'a>(
    findings: &'a [(String, String, String, String)],
    check: &str,
    level: &str,
) -> Vec<&'a (String, String, String, String)> {
    findings
        .iter()
        .filter(|f| f.0 == check && f.1 == level)
        .collect()
}

fn healthy_store() -> TestEnv {
    let env = TestEnv::init();
    env.add("a", b"1");
    env.add("b", b"2");
    env
}

#[test]
fn a_healthy_store_is_all_ok_and_exits_0() {
    let env = healthy_store();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 0, "{findings:?}");
    for check in [
        "permissions",
        "identity",
        "store key",
        "manifest",
        "recipients",
        "secrets",
        "leftovers",
        "audit",
        "rotation",
    ] {
        assert_eq!(
            find(&findings, check, "ok").len(),
            1,
            "{check}: {findings:?}"
        );
    }
    let text = env.cmd().arg("doctor").output().unwrap();
    assert!(text.status.success());
    assert!(
        stdout_of(&text).lines().all(|l| l.starts_with("ok ")),
        "{}",
        stdout_of(&text)
    );
}

#[test]
fn a_missing_store_is_not_found() {
    let env = TestEnv::new();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 4);
    assert!(
        find(&findings, "store", "problem")[0]
            .3
            .contains("agentcred init")
    );
}

#[test]
fn open_permissions_and_symlinks_are_problems_with_the_chmod() {
    let env = healthy_store();
    fs::set_permissions(&env.store, fs::Permissions::from_mode(0o775)).unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 6);
    let problem = find(&findings, "permissions", "problem");
    assert!(problem[0].3.starts_with("chmod 700"), "{problem:?}");
    fs::set_permissions(&env.store, fs::Permissions::from_mode(0o700)).unwrap();

    let real = env.dir.path().join("elsewhere");
    fs::rename(env.secret_file("a"), &real).unwrap();
    std::os::unix::fs::symlink(&real, env.secret_file("a")).unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 6);
    assert!(
        find(&findings, "permissions", "problem")[0]
            .2
            .contains("symlink")
    );
}

#[test]
fn no_identity_is_exit_5_and_the_secrets_are_not_checked() {
    let env = healthy_store();
    fs::remove_file(env.identity_path()).unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 5);
    assert!(
        find(&findings, "identity", "problem")[0]
            .3
            .contains("AGENTCRED_IDENTITY")
    );
    assert_eq!(find(&findings, "secrets", "warning").len(), 1);
}

#[test]
fn a_hand_edit_is_named_and_reseal_accepts_it_after_confirmation() {
    let env = healthy_store();
    let path = env.manifest_path();
    let text = fs::read_to_string(&path)
        .unwrap()
        .replacen("env = \"A\"", "env = \"RENAMED\"", 1);
    fs::write(&path, text).unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 6);
    let problem = find(&findings, "manifest", "problem");
    assert!(
        problem[0].2.contains("credential a was changed"),
        "{problem:?}"
    );
    assert!(problem[0].3.contains("doctor --reseal"));

    let before = env.snapshot();
    let out = env.cmd().args(["doctor", "--reseal"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("credential a was changed"),
        "shows what changed first"
    );
    assert_eq!(env.snapshot(), before);

    env.cmd()
        .args(["doctor", "--reseal", "--yes"])
        .assert()
        .success();
    let (code, _) = doctor(&env);
    assert_eq!(code, 0);
    env.cmd()
        .args(["exec", "--only", "a", "--", "printenv", "RENAMED"])
        .assert()
        .success()
        .stdout("1\n");
    env.cmd()
        .args(["doctor", "--reseal", "--yes"])
        .assert()
        .success()
        .stderr(predicates::str::contains("nothing to reseal"));
}

#[test]
fn a_hand_edited_recipients_file_is_a_problem_until_resealed() {
    let env = healthy_store();
    let teammate = TestEnv::init().recipient();
    let path = env.store.join("recipients.txt");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&format!("{teammate}\n"));
    fs::write(&path, text).unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 6);
    assert_eq!(find(&findings, "recipients", "problem").len(), 1);
    let out = env
        .cmd()
        .args(["doctor", "--reseal", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(&teammate),
        "lists who new values go to"
    );
    let (code, findings) = doctor(&env);
    assert_eq!(code, 0, "{findings:?}");
}

#[test]
fn a_damaged_secret_is_named() {
    let env = healthy_store();
    let mut bytes = fs::read(env.secret_file("b")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::write(env.secret_file("b"), bytes).unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 6);
    let problem = find(&findings, "secrets", "problem");
    assert_eq!(problem.len(), 1);
    assert!(problem[0].2.starts_with("b: "), "{problem:?}");
}

#[test]
fn a_swapped_store_key_is_a_problem() {
    let env = healthy_store();
    let other = TestEnv::new();
    other
        .cmd()
        .args(["init", "--recipient", &env.recipient()])
        .assert()
        .success();
    fs::copy(
        other.store.join("storekey.age"),
        env.store.join("storekey.age"),
    )
    .unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 6);
    assert_eq!(find(&findings, "store key", "problem").len(), 1);
}

#[test]
fn leftovers_and_orphans_are_warnings_with_fixes() {
    let env = healthy_store();
    fs::write(env.store.join("secrets/.tmp-abc"), b"x").unwrap();
    fs::write(env.store.join("secrets/ghost.age"), b"x").unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 0, "warnings keep a store healthy");
    let warnings = find(&findings, "leftovers", "warning");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.3.starts_with("rm ") && w.2.contains("ghost.age"))
    );
}

#[test]
fn a_broken_audit_chain_is_a_problem() {
    let env = healthy_store();
    env.get("a");
    let path = env.store.join("audit.jsonl");
    let text = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(1);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 6);
    assert_eq!(find(&findings, "audit", "problem").len(), 1);
}

#[test]
fn overdue_is_a_problem_and_due_soon_a_warning() {
    let env = TestEnv::init();
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 3)).to_string();
    env.cmd()
        .args(["add", "soon", "--due", &soon])
        .write_stdin("v")
        .assert()
        .success();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 0);
    assert!(find(&findings, "rotation", "warning")[0].2.contains("soon"));
    env.cmd()
        .args(["add", "late", "--rotated-at", "2020-01-01"])
        .write_stdin("v")
        .assert()
        .success();
    let (code, findings) = doctor(&env);
    assert_eq!(code, 3);
    assert!(find(&findings, "rotation", "problem")[0].2.contains("late"));
}

#[test]
fn file_credentials_left_by_a_killed_agentcred_are_a_problem() {
    let env = healthy_store();
    let run = env.dir.path().join("run");
    fs::create_dir(&run).unwrap();
    // The directory name records a pid that no longer exists (pid_max is far below this).
    let stale = run.join(format!("agentcred-999999999-1-{}", "0".repeat(16)));
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("sa"), b"{}").unwrap();
    let out = env
        .cmd()
        .args(["doctor", "--json"])
        .env("XDG_RUNTIME_DIR", &run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "leftovers" && f["level"] == "problem")
        .expect("a leftovers problem");
    assert!(finding["fix"].as_str().unwrap().starts_with("rm -r "));
}

/// doctor reads a sealed manifest in pieces and one it cannot read so (CRLF line ends)
/// whole: the findings are the same, a rollback among them.
#[test]
fn findings_are_the_same_from_a_manifest_read_in_pieces_or_whole() {
    let env = TestEnv::init();
    env.add("a", b"1");
    env.add("b", b"2");
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a"])
        .assert()
        .success();
    let older = fs::read_to_string(env.manifest_path()).unwrap();
    env.add("c", b"3");
    let streamed = doctor(&env);
    let text = fs::read_to_string(env.manifest_path()).unwrap();
    fs::write(env.manifest_path(), text.replace('\n', "\r\n")).unwrap();
    assert_eq!(doctor(&env), streamed);
    assert!(
        find(&streamed.1, "manifest", "ok")[0]
            .2
            .contains("3 credentials, 1 agent")
    );
    // An older generation: both reads report the rollback.
    fs::write(env.manifest_path(), &older).unwrap();
    let rolled_back = doctor(&env);
    assert_ne!(rolled_back.0, 0);
    let found = find(&rolled_back.1, "rollback", "problem");
    assert!(
        found[0].2.contains("older than generation"),
        "{rolled_back:?}"
    );
    fs::write(env.manifest_path(), older.replace('\n', "\r\n")).unwrap();
    assert_eq!(doctor(&env), rolled_back);
}

/// `doctor --reseal` of an `age`-only store streams the manifest through its commit; one
/// that needs the whole manifest (here, a value an interrupted write left pending) takes
/// the other path. Both must write the same bytes and name the same edits.
#[test]
fn the_streamed_and_the_whole_manifest_reseals_write_the_same_store() {
    let env = healthy_store();
    for name in ["c", "d", "e"] {
        env.add(name, name.as_bytes());
    }
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a,b"])
        .assert()
        .success();
    let path = env.manifest_path();
    let text = fs::read_to_string(&path)
        .unwrap()
        .replacen("env = \"C\"", "env = \"SEE\"", 1)
        .replacen("rotate_every = \"90d\"", "rotate_every = \"30d\"", 1)
        .replacen("allow = [\"a\", \"b\"]", "allow = [\"a\", \"b\", \"e\"]", 1);
    fs::write(&path, text).unwrap();
    let saved = env.dir.path().join("saved");
    fs::create_dir(&saved).unwrap();
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        let _ = fs::remove_dir_all(to);
        let ok = std::process::Command::new("cp")
            .arg("-a")
            .args([from, to])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    copy(&env.store, &saved.join("store"));
    copy(&env.home, &saved.join("home"));
    let reseal = |stray: bool, expect: &str| {
        if stray {
            fs::write(env.store.join("secrets/zz.age.pending"), b"junk").unwrap();
        }
        let out = env
            .cmd()
            .args(["-v", "doctor", "--reseal", "--yes"])
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(doctor(&env).0, 0);
        let edits: Vec<String> = (stderr.lines())
            .filter(|l| l.starts_with("  - "))
            .map(str::to_string)
            .collect();
        (fs::read(&path).unwrap(), edits)
    };
    let streamed = reseal(
        false,
        "streamed through this change, one of its 5 credentials",
    );
    copy(&saved.join("store"), &env.store);
    copy(&saved.join("home"), &env.home);
    let whole = reseal(true, "an interrupted write left values pending");
    assert_eq!(streamed.1, whole.1);
    assert_eq!(
        streamed.1,
        [
            "  - the entry of credential c was changed outside agentcred",
            "  - the entry of agent bot was changed outside agentcred",
        ]
    );
    assert!(streamed.0 == whole.0, "the same manifest");
    env.cmd()
        .args(["exec", "--only", "c", "--", "printenv", "SEE"])
        .assert()
        .success()
        .stdout("c\n");
}

/// What the streamed reseal cannot take as it is goes to the whole-manifest path, which
/// keeps or refuses it as before: a credential's table written another valid way is kept,
/// a name agentcred does not write is refused with the store unchanged.
#[test]
fn a_reseal_of_edits_outside_agentcreds_layout_loses_nothing() {
    let env = healthy_store();
    let path = env.manifest_path();
    let text =
        fs::read_to_string(&path)
            .unwrap()
            .replacen("[credentials.b]", "[ credentials.b ]", 1);
    fs::write(&path, text).unwrap();
    let out = env
        .cmd()
        .args(["-v", "doctor", "--reseal", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("the whole manifest is read"));
    assert_eq!(env.get("b"), b"2");
    assert_eq!(doctor(&env).0, 0);

    for name in ["A_X", "\"Bad Name\""] {
        let env = healthy_store();
        let text = fs::read_to_string(env.manifest_path())
            .unwrap()
            .replace("[credentials.a]", &format!("[credentials.{name}]"))
            .replace(
                "[[credentials.a.history]]",
                &format!("[[credentials.{name}.history]]"),
            );
        fs::write(env.manifest_path(), &text).unwrap();
        let before = env.snapshot();
        let out = env
            .cmd()
            .args(["doctor", "--reseal", "--yes"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(6), "{name}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("invalid credential name"),
            "{name}: {}",
            stderr_of(&out)
        );
        assert_eq!(env.snapshot(), before, "{name}");
    }
}

/// A reseal changes no value: the value cache stays, and the next `exec` reads from it.
#[test]
fn a_reseal_keeps_the_value_cache() {
    let env = healthy_store();
    env.cmd().args(["exec", "--", "true"]).assert().success();
    let cache = env.store.join("cache/values");
    let cached = fs::read(&cache).unwrap();
    let path = env.manifest_path();
    let text = fs::read_to_string(&path).unwrap().replacen(
        "rotate_every = \"90d\"",
        "rotate_every = \"30d\"",
        1,
    );
    fs::write(&path, text).unwrap();
    env.cmd()
        .args(["doctor", "--reseal", "--yes"])
        .assert()
        .success();
    assert_eq!(fs::read(&cache).unwrap(), cached);
    let out = env
        .cmd()
        .args(["-v", "exec", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("2 of 2 age values from the cache"),
        "{}",
        stderr_of(&out)
    );
}
