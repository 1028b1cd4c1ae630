//! What a new user trips over (issue 15): metadata edits and renames that keep the rotation
//! clock, exit codes and wording of common mistakes, prompts on the terminal when stdin is
//! a pipe, destructive commands without a terminal, did-you-mean hints, import/export
//! edge cases, scan's counts, small output, and the help text. Wording that is the point
//! is compared with files under tests/snapshots/ (`UPDATE_SNAPSHOTS=1` rewrites them; the
//! diff is then reviewed like code).

use crate::common;

use std::path::Path;

use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;

const PASS: &str = "correct horse battery staple";

/// Compare `actual` with tests/snapshots/NAME.txt, temp paths replaced by `[TMP]`.
fn snapshot(env: Option<&TestEnv>, name: &str, actual: &str) {
    let mut actual = actual.to_string();
    if let Some(env) = env {
        actual = actual.replace(&env.dir.path().display().to_string(), "[TMP]");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; run with UPDATE_SNAPSHOTS=1 and review it:\n{actual}",
            path.display()
        )
    });
    assert_eq!(
        expected, actual,
        "snapshot {name} differs (UPDATE_SNAPSHOTS=1 rewrites it)"
    );
}

/// Run `agentcred ARGS`; return (exit code, stdout, stderr).
fn run(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = env.cmd().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        stdout_of(&out),
        stderr_of(&out),
    )
}

fn show_json(env: &TestEnv, name: &str) -> serde_json::Value {
    let out = env.cmd().args(["show", name, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn list_json(env: &TestEnv) -> serde_json::Value {
    let out = env.cmd().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn add_with(env: &TestEnv, args: &[&str], value: &str) -> String {
    let out = env
        .cmd()
        .arg("add")
        .args(args)
        .write_stdin(value)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    stderr_of(&out)
}

// 1. edit and rename ---------------------------------------------------------------------

#[test]
fn edit_changes_metadata_and_keeps_the_value_and_the_rotation_clock() {
    let env = TestEnv::init();
    add_with(&env, &["gh-token", "--rotated-at", "2025-01-01"], "ghp-1");
    let before = show_json(&env, "gh-token");
    assert_eq!(before["status"], "overdue");
    env.cmd().args(["due", "--check"]).assert().code(3);

    let (code, _, err) = run(
        &env,
        &[
            "edit",
            "gh-token",
            "--description",
            "deploy bot",
            "--env",
            "GITHUB_TOKEN",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("edited gh-token: env, description (injected as GITHUB_TOKEN, due "),
        "{err}"
    );
    let after = show_json(&env, "gh-token");
    assert_eq!(
        after["rotated_at"], before["rotated_at"],
        "the clock is untouched"
    );
    assert_eq!(after["status"], "overdue", "an overdue key stays overdue");
    assert_eq!(after["description"], "deploy bot");
    assert_eq!(after["env"], "GITHUB_TOKEN");
    env.cmd().args(["due", "--check"]).assert().code(3);
    assert_eq!(env.get("gh-token"), b"ghp-1");
    let history = after["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["action"], "edited");
    // exec injects the new variable.
    env.cmd()
        .args([
            "exec",
            "--only",
            "gh-token",
            "--",
            "sh",
            "-c",
            "printf %s \"$GITHUB_TOKEN\"",
        ])
        .assert()
        .success()
        .stdout("ghp-1");

    // A policy change moves the due date, from the same rotated_at.
    env.cmd()
        .args(["edit", "gh-token", "--no-rotation"])
        .assert()
        .success();
    assert_eq!(show_json(&env, "gh-token")["status"], "never");
    env.cmd()
        .args(["edit", "gh-token", "--description", ""])
        .assert()
        .success();
    assert!(show_json(&env, "gh-token")["description"].is_null());

    // Nothing to change, a bad variable, an unknown name: refused, store unchanged.
    let store = env.snapshot();
    let (code, _, err) = run(&env, &["edit", "gh-token"]);
    assert_eq!(code, 2);
    snapshot(None, "edit-nothing", &err);
    env.cmd()
        .args(["edit", "gh-token", "--env", "LD_PRELOAD"])
        .assert()
        .code(2);
    env.cmd()
        .args(["edit", "nope", "--description", "x"])
        .assert()
        .code(4);
    assert_eq!(env.snapshot(), store);
}

#[test]
fn rename_moves_value_history_and_grants() {
    let env = TestEnv::init();
    env.add("gh-token", b"ghp-2");
    env.add("other", b"o");
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "gh-token,other"])
        .assert()
        .success();
    let rotated_at = show_json(&env, "gh-token")["rotated_at"].clone();
    let (code, _, err) = run(&env, &["rename", "gh-token", "github-token"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "renamed gh-token to github-token (injected as GH_TOKEN)\nagent now allowed github-token instead of gh-token: bot\n"
    );
    assert_eq!(env.get("github-token"), b"ghp-2");
    env.cmd().args(["get", "gh-token"]).assert().code(4);
    assert!(
        !env.secret_file("gh-token").exists(),
        "the old file is gone"
    );
    assert!(env.secret_file("github-token").exists());
    let shown = show_json(&env, "github-token");
    assert_eq!(shown["rotated_at"], rotated_at, "renaming is not rotating");
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history[0]["action"], "created");
    assert_eq!(history.last().unwrap()["action"], "renamed");
    // The agent's grant followed; the program sees the same variable.
    env.cmd()
        .args([
            "exec",
            "--agent",
            "bot",
            "--",
            "sh",
            "-c",
            "printf %s \"$GH_TOKEN\"",
        ])
        .assert()
        .success()
        .stdout("ghp-2");
    env.cmd().args(["doctor"]).assert().success();

    // --env changes the variable too.
    env.cmd()
        .args(["rename", "github-token", "gh", "--env", "GITHUB_TOKEN"])
        .assert()
        .success();
    assert_eq!(show_json(&env, "gh")["env"], "GITHUB_TOKEN");

    // Onto an existing name, from a missing one: refused, nothing changed.
    let store = env.snapshot();
    env.cmd()
        .args(["rename", "gh", "other"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("credential other already exists"));
    env.cmd().args(["rename", "nope", "x"]).assert().code(4);
    env.cmd()
        .args(["rename", "gh", "Bad/Name"])
        .assert()
        .code(2);
    assert_eq!(env.snapshot(), store);
}

#[test]
fn add_force_with_the_same_value_keeps_the_rotation_date() {
    let env = TestEnv::init();
    add_with(&env, &["k", "--rotated-at", "2025-01-01"], "same");
    let rotated_at = show_json(&env, "k")["rotated_at"].clone();
    let err = add_with(&env, &["k", "--force", "--description", "fixed"], "same");
    assert!(
        err.contains(
            "keeps its rotation date 2025-01-01 (use `agentcred edit` to change metadata only)"
        ),
        "{err}"
    );
    let shown = show_json(&env, "k");
    assert_eq!(shown["rotated_at"], rotated_at);
    assert_eq!(
        shown["status"], "overdue",
        "still overdue: the key is the same"
    );
    env.cmd().args(["due", "--check"]).assert().code(3);
    // A new value is a rotation.
    add_with(&env, &["k", "--force"], "new");
    assert_eq!(show_json(&env, "k")["status"], "ok");
}

#[test]
fn the_rotated_at_date_stays_in_the_history_after_a_rotation() {
    let env = TestEnv::init();
    add_with(&env, &["k", "--rotated-at", "2025-01-01"], "v1");
    env.cmd()
        .args(["rotate", "k"])
        .write_stdin("v2")
        .assert()
        .success();
    let shown = show_json(&env, "k");
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history[0]["action"], "created");
    assert_eq!(
        history[0]["reason"],
        "last rotated 2025-01-01 (--rotated-at)"
    );
    assert_eq!(history[1]["action"], "rotated");
    assert_eq!(history.len(), 2);
    // import --rotated-at too.
    std::fs::write(env.dir.path().join("a.env"), "A_KEY=1\n").unwrap();
    env.cmd()
        .args(["import", "a.env", "--rotated-at", "2025-02-01"])
        .assert()
        .success();
    let history = show_json(&env, "a-key")["history"].clone();
    assert_eq!(history[0]["action"], "imported");
    assert_eq!(
        history[0]["reason"],
        "last rotated 2025-02-01 (--rotated-at)"
    );
}

// 3. exit codes and messages ---------------------------------------------------------------

#[test]
fn mistakes_get_the_documented_exit_code_and_one_clear_line() {
    let env = TestEnv::init();
    env.add("k", b"v");

    let out = env
        .cmd()
        .arg("list")
        .env("AGENTCRED_IDENTITY_FILE", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    snapshot(Some(&env), "identity-file-missing", &stderr_of(&out));

    std::fs::write(env.dir.path().join("afile"), "").unwrap();
    let out = env
        .cmd()
        .args(["--store", "afile", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    snapshot(Some(&env), "store-is-a-file", &stderr_of(&out));

    // A key that is not a recipient: the message says which identity was tried.
    let other = TestEnv::init();
    let out = env
        .cmd()
        .args(["get", "k"])
        .env("AGENTCRED_IDENTITY", other.identity_text())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    snapshot(Some(&env), "not-a-recipient", &stderr_of(&out));
    let out = env
        .cmd()
        .arg("list")
        .env("AGENTCRED_IDENTITY", other.identity_text())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr_of(&out).contains("is not encrypted to your identity (from $AGENTCRED_IDENTITY)"),
        "{}",
        stderr_of(&out)
    );

    // CI with empty stdin: how to give a value, not "the value is empty".
    let out = env.cmd().args(["add", "new"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    snapshot(Some(&env), "add-no-value", &stderr_of(&out));
}

// 4. destructive commands without a terminal ------------------------------------------------

#[test]
fn recipients_rm_without_a_terminal_needs_yes_like_rm() {
    let env = TestEnv::init();
    env.add("k", b"v");
    let bob = TestEnv::init().recipient();
    env.cmd()
        .args(["recipients", "add", &bob])
        .assert()
        .success();
    let store = env.snapshot();
    for args in [
        vec!["recipients", "rm", bob.as_str()],
        vec!["recipients", "rm", bob.as_str(), "--keep-due"],
    ] {
        let (code, _, err) = run(&env, &args);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.starts_with("error: refusing to remove recipient age1"),
            "{err}"
        );
        assert!(
            err.contains("without --yes: there is no terminal to confirm on"),
            "{err}"
        );
    }
    let (code, _, err) = run(&env, &["rm", "k"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: refusing to delete k without --yes: there is no terminal to confirm on\n"
    );
    assert_eq!(env.snapshot(), store, "nothing changed");
    env.cmd()
        .args(["recipients", "rm", &bob, "--keep-due", "--yes"])
        .assert()
        .success();
    assert_eq!(list_json(&env)["credentials"][0]["status"], "ok");
}

// 2. prompting on the terminal when stdin is a pipe ---------------------------------------

fn passphrase_store() -> TestEnv {
    let env = TestEnv::new();
    env.cmd()
        .args(["init", "--passphrase"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success();
    env
}

/// `sh -c SCRIPT` in a pseudo-terminal, CI unset, `$AGENTCRED` the binary.
fn on_a_terminal(env: &TestEnv, script: &str) -> rexpect::session::PtySession {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &env.home)
        .env("USER", "tester")
        .env("AGENTCRED_STORE", &env.store)
        .env("AGENTCRED", TestEnv::bin())
        .env("TERM", "dumb");
    rexpect::session::spawn_command(cmd, Some(30_000)).unwrap()
}

#[test]
fn a_piped_value_with_a_passphrase_identity_asks_for_the_passphrase_on_the_terminal() {
    let env = passphrase_store();
    let mut session = on_a_terminal(
        &env,
        "printf %s piped-value | \"$AGENTCRED\" add k; echo rc=$?",
    );
    session.exp_string("Passphrase for").unwrap();
    // An empty answer is asked again, saying why.
    session.send_line("").unwrap();
    session.exp_string("the passphrase is empty").unwrap();
    session.exp_string("Passphrase for").unwrap();
    session.send_line(PASS).unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("stored k as K"), "{rest:?}");
    assert!(rest.contains("rc=0"), "{rest:?}");
    assert!(!rest.contains(PASS), "not echoed: {rest:?}");
    env.cmd()
        .args(["get", "k"])
        .env("AGENTCRED_PASSPHRASE", PASS)
        .assert()
        .success()
        .stdout("piped-value");

    // Never with --no-input, never in CI: at once, exit 5, saying what to do.
    let mut session = on_a_terminal(
        &env,
        "printf %s v | \"$AGENTCRED\" --no-input add k2; echo rc=$?; printf %s v | CI=true \"$AGENTCRED\" add k3; echo rc=$?",
    );
    let rest = session.exp_eof().unwrap();
    assert_eq!(rest.matches("rc=5").count(), 2, "{rest:?}");
    assert!(!rest.contains("Passphrase for"), "{rest:?}");
    assert!(
        rest.contains("hint: run `agentcred unlock` at a terminal first"),
        "{rest:?}"
    );
    assert!(
        rest.contains("hint: set AGENTCRED_PASSPHRASE (CI never prompts)"),
        "{rest:?}"
    );
}

#[test]
fn the_value_prompt_re_asks_an_empty_answer_and_says_when_entries_differ() {
    let env = TestEnv::init();
    let mut session = on_a_terminal(&env, "\"$AGENTCRED\" add typed; echo rc=$?");
    session.exp_string("Value for typed").unwrap();
    session.send_line("").unwrap();
    session.exp_string("the value is empty: type it").unwrap();
    session.exp_string("Value for typed").unwrap();
    session.send_line("one").unwrap();
    session.exp_string("Again").unwrap();
    session.send_line("two").unwrap();
    session.exp_string("the two entries differ").unwrap();
    session.exp_string("Value for typed").unwrap();
    session.send_line("three").unwrap();
    session.exp_string("Again").unwrap();
    session.send_line("three").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("rc=0"), "{rest:?}");
    assert_eq!(env.get("typed"), b"three");
}

#[test]
fn no_identity_at_all_is_not_called_locked() {
    let env = TestEnv::init();
    env.add("k", b"v");
    std::fs::remove_file(env.identity_path()).unwrap();
    let (code, _, err) = run(&env, &["list"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("locked"), "{err}");
    assert!(err.contains("there is no identity here"), "{err}");
    let env = passphrase_store();
    let (code, _, err) = run(&env, &["list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("the identity is locked (run `agentcred unlock`"),
        "{err}"
    );
}

// 7. did you mean ------------------------------------------------------------------------

#[test]
fn did_you_mean() {
    let env = TestEnv::init();
    env.add("gh-token", b"v");
    let (code, _, err) = run(&env, &["get", "gh-tokn"]);
    assert_eq!(code, 4);
    snapshot(None, "get-typo", &err);
    let (code, _, err) = run(&env, &["get", "zzz"]);
    assert_eq!(code, 4);
    assert!(
        err.contains("hint: `agentcred list` shows the stored names"),
        "{err}"
    );

    for (typed, file) in [("set", "set"), ("run", "run"), ("delete", "delete")] {
        let (code, _, err) = run(&env, &[typed, "x"]);
        assert_eq!(code, 2);
        snapshot(None, &format!("subcommand-{file}"), &err);
    }
    let (code, _, err) = run(&env, &["exec", "--onyl", "gh-token", "--", "true"]);
    assert_eq!(code, 2);
    snapshot(None, "exec-onyl", &err);

    for args in [
        vec!["add", "foo", "--value", "s3cr3t-val"],
        vec!["add", "foo", "--value=s3cr3t-val"],
    ] {
        let (code, _, err) = run(&env, &args);
        assert_eq!(code, 2);
        assert!(!err.contains("s3cr3t"), "the value is not echoed: {err}");
        snapshot(None, "add-value-flag", &err);
    }
}

// 5. import and export ---------------------------------------------------------------------

#[test]
fn import_skips_empty_values_names_the_file_and_summarizes() {
    let env = TestEnv::init();
    let file = env.dir.path().join("app.env");
    std::fs::write(&file, "A_KEY=1\nEMPTY=\nlower_case=low\n").unwrap();
    let (code, _, err) = run(&env, &["import", "app.env"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "note: skipped 1 empty variable in app.env: EMPTY\nimported 2 credentials: a-key, lower_case\n"
    );
    // The name `list` shows works for get, and exec injects the same variable.
    let listed = list_json(&env);
    let names: Vec<&str> = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-key", "lower_case"]);
    assert_eq!(env.get("lower_case"), b"low");
    env.cmd()
        .args([
            "exec",
            "--only",
            "lower_case",
            "--",
            "sh",
            "-c",
            "printf %s \"$lower_case\"",
        ])
        .assert()
        .success()
        .stdout("low");

    // Errors name the file, the line and the variable.
    std::fs::write(&file, "B_KEY=1\nB_KEY=2\n").unwrap();
    env.cmd()
        .args(["import", "app.env"])
        .assert()
        .code(2)
        .stderr("error: app.env, line 2: B_KEY is defined twice\n");

    // Many names: a summary, not a thousand on a line.
    let text: String = (0..40).map(|i| format!("VAR_{i:03}=v{i}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let (code, _, err) = run(&env, &["import", "app.env"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "imported 40 credentials: var-000, var-001, var-002, var-003, var-004, var-005, var-006, var-007, and 32 more (`agentcred list` shows them)\n"
    );
    // The audit table stays narrow.
    let out = env.cmd().arg("audit").output().unwrap();
    assert!(out.status.success());
    let table = stdout_of(&out);
    let row = table.lines().rfind(|l| l.contains("import")).unwrap();
    assert!(row.contains(",+"), "{row}");
    assert!(row.len() < 160, "{} chars: {row}", row.len());
}

#[test]
fn export_skips_file_credentials_saying_why() {
    let env = TestEnv::init();
    env.add("api-key", b"k1");
    let key = env.dir.path().join("sa.json");
    std::fs::write(&key, "{\"key\": 1}").unwrap();
    env.cmd()
        .args(["add", "gcp", "--kind", "file", "--from-file"])
        .arg(&key)
        .assert()
        .success();
    let (code, out, err) = run(&env, &["export"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "API_KEY='k1'\n");
    assert_eq!(
        err,
        "note: skipped file credential gcp: exec gives programs a path to a private file; `agentcred get NAME > FILE` writes one\n"
    );
}

// 9. small output ------------------------------------------------------------------------

#[test]
fn small_output_things() {
    let env = TestEnv::init();
    // rm says what it did.
    env.add("gone", b"v");
    let (code, _, err) = run(&env, &["rm", "gone", "--yes"]);
    assert_eq!((code, err.as_str()), (0, "deleted gone\n"));
    // identity prints the recipient without --public.
    let (code, out, _) = run(&env, &["identity"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), env.recipient());
    assert!(out.starts_with("age1"));
    // No $USER: the history still names the user.
    env.cmd()
        .args(["add", "k"])
        .env_remove("USER")
        .write_stdin("v")
        .assert()
        .success();
    let by = show_json(&env, "k")["history"][0]["by"].clone();
    let by = by.as_str().unwrap();
    assert!(!by.starts_with("unknown@"), "{by}");
    assert!(!by.starts_with('@'), "{by}");
    // doctor counts in the singular.
    let (code, out, _) = run(&env, &["doctor"]);
    assert_eq!(code, 0);
    assert!(out.contains(", 1 credential, 0 agents"), "{out}");
    // An old --rotated-at says it is overdue already.
    let err = add_with(&env, &["old", "--rotated-at", "2025-01-01"], "v");
    assert!(
        err.contains("note: old is already overdue for rotation (due 2025-04-01); `agentcred rotate old` stores a new value"),
        "{err}"
    );
}

// 6. scan says what it searched and what .gitignore kept out -------------------------------

#[test]
fn scan_counts_files_and_names_what_was_ignored() {
    let env = TestEnv::init();
    env.add("api-key", b"sk-live-0123456789abcdef");
    let tree = env.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("logs")).unwrap();
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::write(tree.join(".gitignore"), ".env\nlogs/\n").unwrap();
    std::fs::write(tree.join("src/main.py"), "print('hi')\n").unwrap();
    std::fs::write(tree.join(".env"), "API_KEY=sk-live-0123456789abcdef\n").unwrap();
    std::fs::write(tree.join("logs/1.log"), "ok\n").unwrap();
    std::fs::write(tree.join("logs/2.log"), "sk-live-0123456789abcdef\n").unwrap();
    let out = env.cmd().args(["scan", "tree"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "");
    assert_eq!(
        stderr_of(&out),
        "nothing found: searched 2 files; not searched, ignored by .gitignore or the like: tree/.env, tree/logs/ (--no-ignore searches them)\n"
    );
    let out = env
        .cmd()
        .args(["scan", "--no-ignore", "tree"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout_of(&out),
        "tree/.env:1: api-key\ntree/logs/2.log:1: api-key\n"
    );
    assert!(
        stderr_of(&out)
            .starts_with("searched 5 files\nerror: stored values found in 2 places: api-key\n"),
        "{}",
        stderr_of(&out)
    );
}

// 8. help and man pages --------------------------------------------------------------------

#[test]
fn help_has_examples_environment_exit_status_and_separate_global_options() {
    let env = TestEnv::new();
    let (code, out, _) = run(&env, &["-h"]);
    assert_eq!(code, 0);
    snapshot(None, "help-short", &out);
    let (code, out, _) = run(&env, &["--help"]);
    assert_eq!(code, 0);
    for section in ["Examples:", "Environment:", "Exit status:"] {
        assert!(out.contains(section), "{out}");
    }
    for variable in [
        "AGENTCRED_IDENTITY ",
        "AGENTCRED_IDENTITY_FILE",
        "AGENTCRED_PASSPHRASE",
        "AGENTCRED_STORE ",
        "AGENTCRED_AGENT",
        "AGENTCRED_STORE_FINGERPRINT",
    ] {
        assert!(out.contains(variable), "{variable}: {out}");
    }
    // A subcommand's own options first, the global ones under their own heading; the
    // default store follows XDG_DATA_HOME; no `[env: X=]` for an unset variable.
    let out = env
        .cmd()
        .args(["rm", "--help"])
        .env_remove("AGENTCRED_STORE")
        .env("XDG_DATA_HOME", "/srv/data")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = stdout_of(&out);
    snapshot(None, "help-rm", &help);
    assert!(help.contains("[default: /srv/data/agentcred]"), "{help}");
    assert!(!help.contains("AGENTCRED_STORE="), "{help}");
    let (options, global) = help.split_once("Global options:").unwrap();
    assert!(
        options.contains("--yes") && !options.contains("--store"),
        "{help}"
    );
    assert!(
        global.contains("--store") && global.contains("--no-input"),
        "{help}"
    );
    // exec's synopsis shows the `--`.
    let (_, out, _) = run(&env, &["exec", "--help"]);
    assert!(
        out.contains("Usage: agentcred exec [OPTIONS] -- <CMD> [ARGS]..."),
        "{out}"
    );

    // The man pages (checked in; tests/generated.rs keeps them current).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let top = std::fs::read_to_string(root.join("man/agentcred.1")).unwrap();
    for section in [
        ".SH \"EXAMPLES\"",
        ".SH \"ENVIRONMENT\"",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(top.contains(section), "{section}");
    }
    let exec = std::fs::read_to_string(root.join("man/agentcred-exec.1")).unwrap();
    assert!(exec.contains("\\-\\- <CMD>"), "{exec}");
    for page in std::fs::read_dir(root.join("man")).unwrap() {
        let text = std::fs::read_to_string(page.unwrap().path()).unwrap();
        assert!(!text.contains(".SH EXTRA"));
        assert!(text.contains(".SH \"EXIT STATUS\""));
    }
}

// 10. README, scripts ----------------------------------------------------------------------

#[test]
fn readme_first_screen_answers_what_install_run_and_llm_agents() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let first_screen: String = readme.lines().take(45).collect::<Vec<_>>().join("\n");
    for answer in [
        "## Getting started",
        "cargo install --locked --path .",
        "agentcred add openai-api-key",
        "agentcred exec -- python3 bot.py",
        "[Give an LLM agent a key it cannot leak](#give-an-llm-agent-a-key-it-cannot-leak)",
    ] {
        assert!(first_screen.contains(answer), "{answer}");
    }
    assert!(!readme.contains("-- python bot"), "python3, not python");
    assert!(readme.contains("`bash-completion`"));
    assert!(readme.contains("sudo scripts/test"));
    // scripts/demo shows cargo's progress and says where the binary is.
    let demo = std::fs::read_to_string(root.join("scripts/demo")).unwrap();
    assert!(!demo.contains("--quiet"));
    assert!(demo.contains("built in $((SECONDS - started))s: $PWD/target/release/agentcred"));
    let test = std::fs::read_to_string(root.join("scripts/test")).unwrap();
    assert!(test.contains("must run as root"));
}

#[test]
fn bash_completion_loads_without_the_bash_completion_package() {
    let env = TestEnv::init();
    env.add("gh-token", b"v");
    // The README's line for a bash without bash-completion: a bare bash (--norc, no
    // /usr/share/bash-completion) that sources the script, then completes a name.
    let bin_dir = TestEnv::bin().parent().unwrap().to_path_buf();
    let script = "source <(agentcred completions bash) && complete -p agentcred >/dev/null && \
        COMP_WORDS=(agentcred get gh) COMP_CWORD=2 COMP_TYPE=9 && \
        _clap_complete_agentcred agentcred gh agentcred && printf '%s\\n' \"${COMPREPLY[@]}\"";
    let out = env
        .command("bash")
        .args(["--norc", "--noprofile", "-c", script])
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).trim(), "gh-token");
}

#[test]
fn on_a_terminal_rm_asks_and_says_what_it_did() {
    let env = TestEnv::init();
    env.add("k", b"v");
    let mut session = on_a_terminal(&env, "\"$AGENTCRED\" rm k; echo rc=$?");
    session.exp_string("Delete credential k?").unwrap();
    session.send_line("n").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(
        rest.contains("error: not deleted") && rest.contains("rc=1"),
        "{rest:?}"
    );
    assert_eq!(env.get("k"), b"v");
    // The question comes on the terminal also when stdin is a pipe.
    let mut session = on_a_terminal(&env, "true | \"$AGENTCRED\" rm k; echo rc=$?");
    session.exp_string("Delete credential k?").unwrap();
    session.send_line("y").unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(
        rest.contains("deleted k") && rest.contains("rc=0"),
        "{rest:?}"
    );
    env.cmd().args(["get", "k"]).assert().code(4);
}
