//! `scan`: where stored values appear in a tree, by file, line and name, never the value.

use crate::common;

use std::fs;
use std::path::Path;

use base64::Engine;
use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;

const API_KEY: &str = "sk-live-4f9a8b7c6d5e";
const DB_PASSWORD: &str = "p@ss w/rd:42!xyz";

fn store() -> TestEnv {
    let env = TestEnv::init();
    env.add("api-key", API_KEY.as_bytes());
    env.add("db-password", DB_PASSWORD.as_bytes());
    env.add("pin", b"1234");
    env
}

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// A project with leaks in nested, hidden, encoded, ignored and binary files.
fn tree(env: &TestEnv) -> std::path::PathBuf {
    let root = env.dir.path().join("project");
    let b64 = base64::engine::general_purpose::STANDARD;
    write(&root, ".gitignore", b"ignored/\n*.log\n");
    write(
        &root,
        "README.md",
        b"nothing to see\n1234 is not looked for\n",
    );
    write(
        &root,
        "src/deep/nested/config.py",
        format!("# config\nimport os\nKEY = \"{API_KEY}\"\n").as_bytes(),
    );
    // An HTTP Basic header: base64 of "user:VALUE", the value at an odd offset.
    write(
        &root,
        ".env",
        format!(
            "A=1\nAUTH=Basic {}\n",
            b64.encode(format!("bot:{DB_PASSWORD}"))
        )
        .as_bytes(),
    );
    // Percent-encoded in a connection URL.
    write(
        &root,
        "deploy/db.yaml",
        b"url: postgres://bot:p%40ss%20w%2Frd%3A42%21xyz@db/app\n",
    );
    write(&root, "ignored/leak.txt", API_KEY.as_bytes());
    write(&root, "debug.log", API_KEY.as_bytes());
    let mut binary = b"\x7fELF\0\0".to_vec();
    binary.extend_from_slice(API_KEY.as_bytes());
    write(&root, "bin/tool", &binary);
    root
}

fn assert_no_values(out: &std::process::Output) {
    for text in [stdout_of(out), stderr_of(out)] {
        assert!(
            !text.contains(API_KEY) && !text.contains(DB_PASSWORD) && !text.contains("p%40ss"),
            "a value was printed: {text}"
        );
    }
}

#[test]
fn reports_every_place_by_file_line_and_name() {
    let env = store();
    let root = tree(&env);
    let out = env
        .cmd()
        .current_dir(&root)
        .args(["scan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out),
        ".env:2: db-password\ndeploy/db.yaml:1: db-password\nsrc/deep/nested/config.py:3: api-key\n"
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("error: stored values found in 3 places: api-key, db-password"),
        "{err}"
    );
    assert!(err.contains("not looking for pin"), "{err}");
    assert_no_values(&out);
}

#[test]
fn ignored_and_binary_files_and_explicit_paths() {
    let env = store();
    let root = tree(&env);
    // --no-ignore finds the ignored copies too; binary files stay skipped.
    let out = env
        .cmd()
        .current_dir(&root)
        .args(["-v", "scan", "--no-ignore"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout_of(&out);
    assert!(
        text.contains("ignored/leak.txt:1: api-key") && text.contains("debug.log:1: api-key"),
        "{text}"
    );
    assert!(!text.contains("bin/tool"), "{text}");
    assert!(stderr_of(&out).contains("skipping binary file bin/tool"));
    assert_no_values(&out);
    // A path given by name is searched even when ignored; paths are shown as given.
    env.cmd()
        .args(["scan"])
        .arg(root.join("debug.log"))
        .arg(root.join("README.md"))
        .assert()
        .code(1)
        .stdout(format!("{}:1: api-key\n", root.join("debug.log").display()));
}

#[test]
fn clean_trees_and_stdin() {
    let env = store();
    let clean = env.dir.path().join("clean");
    write(&clean, "a/b.txt", b"sk-live-4f9a8b7c6d5 (one short)\n");
    env.cmd()
        .args(["scan"])
        .arg(&clean)
        .assert()
        .code(0)
        .stdout("");
    env.cmd()
        .args(["scan", "-"])
        .write_stdin(format!("log line\ntoken={API_KEY}&x=1\n"))
        .assert()
        .code(1)
        .stdout("<stdin>:2: api-key\n");
    env.cmd()
        .args(["scan", "no-such-dir"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot scan no-such-dir"));
}

#[test]
fn json_output() {
    let env = store();
    let root = tree(&env);
    let out = env
        .cmd()
        .current_dir(&root)
        .args(["scan", "--json", "src"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["findings"],
        serde_json::json!([{"path": "src/deep/nested/config.py", "line": 3, "name": "api-key"}])
    );
    assert_eq!(json["files_scanned"], 1);
    assert_eq!(json["marked_compromised"], serde_json::json!([]));
}

#[test]
fn mark_compromised_makes_them_due_now_with_the_reason() {
    let env = store();
    let root = tree(&env);
    env.cmd().args(["due", "--check"]).assert().code(0);
    let out = env
        .cmd()
        .current_dir(&root)
        .args(["scan", "--mark-compromised", "src"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("marked due now: api-key") && err.contains("they are marked due now"),
        "{err}"
    );
    env.cmd().args(["due", "--check"]).assert().code(3).stdout(
        predicate::str::contains("api-key").and(predicate::str::contains("db-password").not()),
    );
    let show = env.cmd().args(["show", "api-key"]).output().unwrap();
    let text = stdout_of(&show);
    assert!(text.contains("status:       overdue"), "{text}");
    assert!(
        text.contains("compromised")
            && text.contains("(found by scan in src/deep/nested/config.py:3)"),
        "{text}"
    );
    let json = env
        .cmd()
        .args(["show", "api-key", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let last = json["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "compromised");
    assert_eq!(
        last["reason"],
        "found by scan in src/deep/nested/config.py:3"
    );
    // The manifest records where, never what.
    let manifest = fs::read_to_string(env.manifest_path()).unwrap();
    assert!(!manifest.contains(API_KEY));
    // Rotating clears the one-off due date.
    env.cmd()
        .args(["rotate", "api-key"])
        .write_stdin("sk-live-rotated-000001")
        .assert()
        .success();
    env.cmd().args(["due", "--check"]).assert().code(0);
}
