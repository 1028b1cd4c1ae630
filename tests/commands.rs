//! Every everyday command end to end, with its exit codes.

use crate::common;

use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn init_creates_a_private_store_and_identity() {
    let env = TestEnv::new();
    env.cmd()
        .arg("init")
        .assert()
        .success()
        .stdout(predicate::str::contains("Created store").and(predicate::str::contains("age1")));
    for (path, mode) in [
        (env.store.clone(), 0o700),
        (env.store.join("secrets"), 0o700),
        (env.store.join("agentcred.toml"), 0o600),
        (env.store.join("recipients.txt"), 0o600),
        (env.store.join("storekey.age"), 0o600),
        (env.identity_path(), 0o600),
    ] {
        let actual = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(actual, mode, "{}", path.display());
    }
    let gitignore = fs::read_to_string(env.store.join(".gitignore")).unwrap();
    assert!(gitignore.contains("/cache/") && gitignore.contains("/audit.jsonl"));
    let recipients = fs::read_to_string(env.store.join("recipients.txt")).unwrap();
    assert!(recipients.contains(&env.recipient()));
}

#[test]
fn init_twice_fails_and_changes_nothing() {
    let env = TestEnv::init();
    let before = env.snapshot();
    env.cmd()
        .arg("init")
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: a store already exists"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn init_with_a_umask_of_077_or_000_still_makes_0700_and_0600() {
    for umask in ["000", "077"] {
        let env = TestEnv::new();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" init",))
            .arg(TestEnv::bin())
            .env_clear()
            .env("HOME", &env.home)
            .env("AGENTCRED_STORE", &env.store)
            .env("CI", "true")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(
            fs::metadata(&env.store).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(env.manifest_path())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
}

#[test]
fn init_with_extra_recipient_and_bad_recipient() {
    let env = TestEnv::new();
    env.cmd()
        .args(["init", "--recipient", "not-a-recipient"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid recipient"));
    assert!(!env.store.exists());
    let other = TestEnv::init();
    let theirs = other.recipient();
    env.cmd()
        .args(["init", "--recipient", &theirs])
        .assert()
        .success();
    let recipients = fs::read_to_string(env.store.join("recipients.txt")).unwrap();
    assert!(recipients.contains(&theirs));
}

#[test]
fn add_get_round_trip_and_env_name_normalization() {
    let env = TestEnv::init();
    env.add("OPENAI_API_KEY", b"sk-123\n");
    assert_eq!(
        env.get("openai-api-key"),
        b"sk-123",
        "one trailing newline stripped"
    );
    assert_eq!(env.get("OPENAI_API_KEY"), b"sk-123");
    let list = env.cmd().args(["list", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(json["credentials"][0]["name"], "openai-api-key");
    assert_eq!(json["credentials"][0]["env"], "OPENAI_API_KEY");
    assert_eq!(json["verified"], true);
}

#[test]
fn add_existing_needs_force() {
    let env = TestEnv::init();
    env.add("tok", b"one");
    let before = env.snapshot();
    env.cmd()
        .args(["add", "tok"])
        .write_stdin("two")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"))
        .stderr(predicate::str::contains("hint: use --force"));
    assert_eq!(env.snapshot(), before);
    env.cmd()
        .args(["add", "tok", "--force"])
        .write_stdin("two")
        .assert()
        .success();
    assert_eq!(env.get("tok"), b"two");
    let show = env.cmd().args(["show", "tok", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let actions: Vec<_> = json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, ["created", "replaced"]);
}

#[test]
fn add_from_file_keeps_bytes_exactly() {
    let env = TestEnv::init();
    let value: Vec<u8> = b"  leading spaces\nand a trailing newline\n\n".to_vec();
    let path = env.dir.path().join("value.bin");
    fs::write(&path, &value).unwrap();
    env.cmd()
        .args(["add", "f", "--from-file"])
        .arg(&path)
        .assert()
        .success();
    assert_eq!(env.get("f"), value);
}

#[test]
fn add_refuses_empty_value_and_bad_flags() {
    let env = TestEnv::init();
    let before = env.snapshot();
    env.cmd()
        .args(["add", "x"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("empty"));
    env.cmd()
        .args(["add", "x", "--rotate-every", "90x"])
        .write_stdin("v")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid duration 90x: the unit must be h, d, w, mo or y",
        ));
    env.cmd()
        .args(["add", "x", "--due", "someday"])
        .write_stdin("v")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid date someday: expected a date like 2027-01-31",
        ));
    env.cmd()
        .args(["add", "x", "--no-such-flag"])
        .write_stdin("v")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unexpected argument '--no-such-flag' found",
        ));
    env.cmd()
        .args(["add", "x", "--description", "two\nlines"])
        .write_stdin("v")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid description two\\u{a}lines: it must be one line",
        ));
    env.cmd()
        .args(["add", "x", "--rotate-every", "30d", "--no-rotation"])
        .write_stdin("v")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the argument '--rotate-every <DUR>' cannot be used with '--no-rotation'",
        ));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn get_missing_is_not_found() {
    let env = TestEnv::init();
    env.cmd()
        .args(["get", "nope"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("credential nope not found"));
}

#[test]
fn missing_store_is_not_found_with_hint() {
    let env = TestEnv::new();
    env.cmd().args(["list"]).assert().code(4).stderr(
        predicate::str::contains("no store at")
            .and(predicate::str::contains("hint: run `agentcred init`")),
    );
}

#[test]
fn list_and_show_have_metadata_never_values() {
    let env = TestEnv::init();
    env.cmd()
        .args([
            "add",
            "gh-token",
            "--env",
            "GITHUB_TOKEN",
            "--rotate-every",
            "30d",
            "--description",
            "bot PAT",
        ])
        .write_stdin("ghp_supersecretvalue")
        .assert()
        .success();
    env.cmd()
        .args(["add", "forever", "--no-rotation"])
        .write_stdin("v2-supersecret")
        .assert()
        .success();
    let list = env.cmd().arg("list").output().unwrap();
    let text = stdout_of(&list);
    assert!(text.starts_with("NAME"), "{text}");
    // Relative ages are floored to whole days: a second boundary crossed between `add`
    // and `list` makes it 29d.
    assert!(
        text.contains("gh-token")
            && text.contains("GITHUB_TOKEN")
            && (text.contains("in 30d") || text.contains("in 29d")),
        "{text}"
    );
    assert!(!text.contains("supersecret"));
    let show = env.cmd().args(["show", "gh-token"]).output().unwrap();
    let text = stdout_of(&show);
    assert!(
        text.contains("description:  bot PAT") && text.contains("rotate every: 30d"),
        "{text}"
    );
    assert!(!text.contains("supersecret"));
    let json: serde_json::Value = serde_json::from_slice(
        &env.cmd()
            .args(["show", "forever", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["status"], "never");
    assert_eq!(json["due_at"], serde_json::Value::Null);
    for field in [
        "name",
        "env",
        "backend",
        "kind",
        "created_at",
        "rotated_at",
        "rotate_every",
        "due_at",
        "status",
        "history",
    ] {
        assert!(json.get(field).is_some(), "show --json lacks {field}");
    }
    let manifest = fs::read_to_string(env.manifest_path()).unwrap();
    assert!(!manifest.contains("supersecret"));
    env.cmd().args(["show", "nope"]).assert().code(4);
}

/// `list` reads the manifest in pieces, keeping a few bytes of each credential: it prints
/// what the whole-file read prints (a CRLF checkout takes that path, a locked store too),
/// and nothing at all from a manifest changed anywhere, even after the credentials.
#[test]
fn list_prints_the_same_by_every_path_and_nothing_from_a_changed_manifest() {
    let env = TestEnv::init();
    let at = ["--rotated-at", "2026-01-01"];
    for (name, flags) in [
        ("a-plain", &[][..]),
        (
            "b-described",
            &[
                "--description",
                "it's \"quoted\" [credentials.x]",
                "--rotate-every",
                "30d",
            ],
        ),
        ("c-due", &["--due", "2030-01-31"]),
        ("d-never", &["--no-rotation", "--kind", "file"]),
    ] {
        env.cmd()
            .args(["add", name])
            .args(at)
            .args(flags)
            .write_stdin("v")
            .assert()
            .success();
    }
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "b-described,d-never"])
        .assert()
        .success();
    let runs: [&[&str]; 4] = [
        &["list"],
        &["list", "--json"],
        &["list", "--agent", "bot"],
        &["list", "--agent", "bot", "--json"],
    ];
    let outputs = || -> Vec<(Option<i32>, String, String)> {
        runs.iter()
            .map(|args| {
                let out = env.cmd().args(*args).output().unwrap();
                (out.status.code(), stdout_of(&out), stderr_of(&out))
            })
            .collect()
    };
    let listed = outputs();
    for (code, _, stderr) in &listed {
        assert_eq!((*code, stderr.as_str()), (Some(0), ""));
    }
    let table = &listed[0].1;
    assert_eq!(table.lines().count(), 5, "{table}");
    assert!(
        table.contains("2030-01-31") && table.contains("never"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&listed[1].1).unwrap();
    assert_eq!(json["verified"], true);
    assert_eq!(
        json["credentials"][1]["description"],
        "it's \"quoted\" [credentials.x]"
    );
    assert_eq!(json["credentials"][1]["rotate_every"], "30d");
    let mine: Vec<&str> = listed[2].1.lines().skip(1).map(|l| &l[..11]).collect();
    assert_eq!(mine, ["b-described", "d-never    "]);
    let json: serde_json::Value = serde_json::from_str(&listed[3].1).unwrap();
    assert_eq!(json["credentials"].as_array().unwrap().len(), 2);

    // CRLF line ends are read whole, and print the same.
    let original = fs::read_to_string(env.manifest_path()).unwrap();
    fs::write(env.manifest_path(), original.replace('\n', "\r\n")).unwrap();
    assert_eq!(outputs(), listed);
    fs::write(env.manifest_path(), &original).unwrap();
    assert_eq!(outputs(), listed);

    // Without the identity: unverified, the same rows.
    let hidden = env.home.join("identity.txt");
    fs::rename(env.identity_path(), &hidden).unwrap();
    let locked = outputs();
    // Unverified and read whole (CRLF), the same again; the note is printed once.
    fs::write(env.manifest_path(), original.replace('\n', "\r\n")).unwrap();
    assert_eq!(outputs(), locked);
    fs::write(env.manifest_path(), &original).unwrap();
    fs::rename(&hidden, env.identity_path()).unwrap();
    assert_eq!(locked[0].2.matches("integrity not verified").count(), 1);
    assert_eq!(locked[0].1, listed[0].1);
    assert!(
        locked[0].2.contains("integrity not verified"),
        "{}",
        locked[0].2
    );
    assert_eq!(
        listed[1]
            .1
            .replacen("\"verified\": true", "\"verified\": false", 1),
        locked[1].1
    );

    // A changed byte in the first or last credential, or in the agent after them all.
    for (from, to) in [
        ("env = \"A_PLAIN\"", "env = \"A_PLAIX\""),
        ("env = \"D_NEVER\"", "env = \"D_NEVEX\""),
        ("allow = [", "allow = [\"a-plain\", "),
    ] {
        let changed = original.replacen(from, to, 1);
        assert_ne!(changed, original);
        fs::write(env.manifest_path(), &changed).unwrap();
        assert_refused(&runs, outputs());
    }
    fs::write(env.manifest_path(), &original).unwrap();
    assert_eq!(outputs(), listed);
}

/// Every run refused as a changed manifest: exit 6, nothing on stdout, an `error:` line.
fn assert_refused(
    runs: &[&[&str]],
    outputs: impl IntoIterator<Item = (Option<i32>, String, String)>,
) {
    for (args, (code, stdout, stderr)) in runs.iter().zip(outputs) {
        assert_eq!((code, stdout.as_str()), (Some(6), ""), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

/// `show` keeps only its credential's section of the manifest and `due` only what is
/// due, but both check the seal over every byte: a change anywhere refuses them.
#[test]
fn show_and_due_refuse_a_manifest_changed_outside_what_they_keep() {
    let env = TestEnv::init();
    // Rotated on a fixed day: relative times ("in 90d") then hold for the test's length.
    for (name, value) in [("first", "one"), ("last", "two")] {
        env.cmd()
            .args(["add", name, "--rotated-at", "2026-01-01"])
            .write_stdin(value)
            .assert()
            .success();
    }
    let runs: [&[&str]; 3] = [
        &["show", "first"],
        &["show", "first", "--json"],
        &["due", "--within", "1000d", "--json"],
    ];
    let outputs = || {
        runs.map(|args| {
            let out = env.cmd().args(args).output().unwrap();
            (out.status.code(), stdout_of(&out), stderr_of(&out))
        })
    };
    let good = outputs();
    for (args, (code, stdout, stderr)) in runs.iter().zip(&good) {
        assert_eq!(*code, Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains("first"), "{args:?}: {stdout}");
    }
    assert!(good[1].1.contains("\"history\""), "{}", good[1].1);
    assert!(good[2].1.contains("\"last\""), "{}", good[2].1);
    // Without the identity: unverified, the same (and a note on stderr).
    let hidden = env.home.join("identity.txt");
    fs::rename(env.identity_path(), &hidden).unwrap();
    let locked = outputs();
    fs::rename(&hidden, env.identity_path()).unwrap();
    for ((args, (code, stdout, stderr)), (_, good, _)) in runs.iter().zip(&locked).zip(&good) {
        assert_eq!(*code, Some(0), "{args:?}: {stderr}");
        assert!(
            stderr.contains("integrity not verified"),
            "{args:?}: {stderr}"
        );
        assert_eq!(
            stdout,
            &good.replacen("\"verified\": true", "\"verified\": false", 1),
            "{args:?}"
        );
    }
    let original = fs::read_to_string(env.manifest_path()).unwrap();
    let changed = original.replacen("env = \"LAST\"", "env = \"LASX\"", 1);
    assert_ne!(changed, original);
    fs::write(env.manifest_path(), &changed).unwrap();
    assert_refused(&runs, outputs());
    fs::write(env.manifest_path(), &original).unwrap();
    assert_eq!(outputs(), good);
}

#[test]
fn rotated_at_and_due_drive_status() {
    let env = TestEnv::init();
    env.cmd()
        .args(["add", "old", "--rotated-at", "2020-01-01"])
        .write_stdin("v")
        .assert()
        .success();
    env.cmd()
        .args(["add", "soon", "--due"])
        .arg((jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 3)).to_string())
        .write_stdin("v")
        .assert()
        .success();
    let json: serde_json::Value =
        serde_json::from_slice(&env.cmd().args(["list", "--json"]).output().unwrap().stdout)
            .unwrap();
    let status = |name: &str| {
        json["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("old"), "overdue");
    assert_eq!(status("soon"), "due-soon");
    env.cmd()
        .args(["add", "future", "--rotated-at", "2999-01-01"])
        .write_stdin("v")
        .assert()
        .code(2);
}

#[test]
fn rm_deletes_value_and_metadata() {
    let env = TestEnv::init();
    env.add("a", b"1");
    env.add("b", b"2");
    env.cmd()
        .args(["rm", "a"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("without --yes"));
    assert!(env.secret_file("a").exists());
    env.cmd().args(["rm", "a", "--yes"]).assert().success();
    assert!(!env.secret_file("a").exists());
    env.cmd().args(["get", "a"]).assert().code(4);
    assert_eq!(env.get("b"), b"2");
    env.cmd().args(["rm", "a", "--yes"]).assert().code(4);
}

#[test]
fn import_dotenv_then_export_in_every_format() {
    let env = TestEnv::init();
    let dotenv = "# keys\nexport OPENAI_API_KEY=sk-abc\nDB_PASSWORD=\"p@ss w\\\"rd\\n2\"\nLITERAL='$HOME stays'\n";
    let path = env.dir.path().join(".env");
    fs::write(&path, dotenv).unwrap();
    env.cmd()
        .arg("import")
        .arg(&path)
        .assert()
        .success()
        .stderr(predicate::str::contains("imported 3 credentials"));
    assert_eq!(env.get("db-password"), b"p@ss w\"rd\n2");
    assert_eq!(env.get("literal"), b"$HOME stays");

    let json = env
        .cmd()
        .args(["export", "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["OPENAI_API_KEY"], "sk-abc");
    assert_eq!(json["DB_PASSWORD"], "p@ss w\"rd\n2");

    // Shell format: eval it in a real shell and compare.
    let shell = env
        .cmd()
        .args(["export", "--format", "shell"])
        .output()
        .unwrap();
    let script = format!("{}\nprintf '%s' \"$DB_PASSWORD\"", stdout_of(&shell));
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"p@ss w\"rd\n2");

    // Dotenv format re-imports to the same values.
    let exported = env
        .cmd()
        .args(["export", "--only", "db-password,literal"])
        .output()
        .unwrap();
    let again = TestEnv::init();
    again
        .cmd()
        .args(["import", "-"])
        .write_stdin(exported.stdout)
        .assert()
        .success();
    assert_eq!(again.get("db-password"), b"p@ss w\"rd\n2");
    assert_eq!(again.get("literal"), b"$HOME stays");
    again.cmd().args(["get", "openai-api-key"]).assert().code(4);
}

#[test]
fn import_is_all_or_nothing() {
    let env = TestEnv::init();
    env.add("b", b"existing");
    let before = env.snapshot();
    let path = env.dir.path().join(".env");
    fs::write(&path, "A=1\nB=2\n").unwrap();
    env.cmd()
        .arg("import")
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("b already exists"));
    fs::write(&path, "A=1\nPATH=/evil\n").unwrap();
    env.cmd()
        .arg("import")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("PATH"));
    fs::write(&path, "A=1\nB=\"unterminated-secret\n").unwrap();
    let out = env.cmd().arg("import").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr_of(&out).contains("unterminated-secret"));
    assert_eq!(env.snapshot(), before);
    env.cmd()
        .arg("import")
        .arg("--force")
        .arg({
            fs::write(&path, "A=1\nB=2\n").unwrap();
            &path
        })
        .assert()
        .success();
    assert_eq!(env.get("b"), b"2");
}

#[test]
fn export_refuses_what_the_format_cannot_carry() {
    let env = TestEnv::init();
    env.add("bin", b"\xff\xfe");
    env.cmd()
        .args(["export", "--format", "json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("bin"));
}

#[test]
fn identity_public_prints_the_recipient() {
    let env = TestEnv::init();
    let recipient = env.recipient();
    assert!(recipient.starts_with("age1") && recipient.len() > 50);
    assert!(env.identity_text().contains(&recipient));
}

#[test]
fn broken_pipe_exits_quietly() {
    let env = TestEnv::init();
    // Enough output (well over a 64 KiB pipe buffer) that `head` exits while list still writes.
    import_numbered(&env, 1500);
    // JSON goes through serde_json, whose error wraps the broken pipe.
    for command in ["list", "list --json", "export --format json", "export"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; \"$0\" {command} | head -1"))
            .arg(TestEnv::bin())
            .env("HOME", &env.home)
            .env("AGENTCRED_STORE", &env.store)
            .env("CI", "true")
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}: {}", stderr_of(&out));
        assert_eq!(stdout_of(&out).lines().count(), 1, "{command}");
        assert_eq!(stderr_of(&out), "", "{command}");
    }
}

#[test]
fn help_has_examples_and_usage_errors_exit_2() {
    let env = TestEnv::new();
    env.cmd()
        .args(["exec", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    env.cmd().arg("frobnicate").assert().code(2);
    env.cmd().assert().code(2);
}

#[test]
fn import_errors_never_echo_what_may_be_a_value() {
    let env = TestEnv::init();
    let path = env.dir.path().join(".env");
    for line in [
        "DATABASE_URL postgres://app:Sup3rS3cretPw@db.internal/app?sslmode=require",
        "WEBHOOK_SECRET: whsec_Sup3rS3cretPw==",
        "c3VwM3JzM2NyZXRQdw==Sup3rS3cretPw",
    ] {
        fs::write(&path, format!("OK=1\n{line}\n")).unwrap();
        let out = env.cmd().arg("import").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{line}");
        let err = stderr_of(&out);
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("Sup3rS3cretPw"), "{err}");
    }
    env.cmd()
        .args(["import", "-", "--rotated-at", "2999-01-01"])
        .write_stdin("A=1\n")
        .assert()
        .code(2);
}

/// A write reads the manifest in pieces (every credential with its history) and writes
/// it a section at a time; a manifest it cannot read so (CRLF line ends) is read whole.
/// The same write from either gives the same file (but for its times, MACs and seal).
#[test]
fn a_write_from_a_manifest_read_in_pieces_or_whole_gives_the_same_file() {
    let env = TestEnv::init();
    for (name, value) in [("b", "2"), ("a", "1"), ("c", "3")] {
        env.add(name, value.as_bytes());
    }
    env.cmd()
        .args(["rotate", "b"])
        .write_stdin("two")
        .assert()
        .success();
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a,c"])
        .assert()
        .success();
    // A second copy of the store and of this machine's record of it, before the write.
    let copy = env.dir.path().join("copy");
    fs::create_dir(&copy).unwrap();
    let cp = |from: &std::path::Path| {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
    };
    cp(&env.store);
    cp(&env.home);
    let edit = ["edit", "c", "--description", "third"];
    env.cmd().args(edit).assert().success();
    let streamed = fs::read_to_string(env.manifest_path()).unwrap();
    let manifest = copy.join("store").join("agentcred.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace('\n', "\r\n")).unwrap();
    env.cmd()
        .env("HOME", copy.join("home"))
        .env("AGENTCRED_STORE", copy.join("store"))
        .args(edit)
        .assert()
        .success();
    let whole = fs::read_to_string(&manifest).unwrap();
    let timeless = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with("at = ") && !l.starts_with("mac = "))
            .filter(|l| !l.starts_with("seal = "))
            .map(String::from)
            .collect()
    };
    assert_eq!(timeless(&streamed), timeless(&whole));
    assert!(streamed.contains("description = \"third\""), "{streamed}");
    assert_eq!(streamed.matches("[[credentials.b.history]]").count(), 2);
    assert!(!whole.contains('\r'));
    assert_eq!(env.get("c"), b"3");
}

/// A write and doctor build the map of every credential a chunk at a time (1,024 and
/// more): with 2,600 credentials a write keeps every one, each with its value and history.
#[test]
fn a_write_in_a_store_larger_than_a_chunk_keeps_every_credential() {
    let env = TestEnv::init();
    import_numbered(&env, 2600);
    let before = fs::read_to_string(env.manifest_path()).unwrap();
    env.cmd()
        .args(["edit", "key-1500", "--description", "edited"])
        .assert()
        .success();
    let after = fs::read_to_string(env.manifest_path()).unwrap();
    let sections = |text: &str| text.matches("\n[credentials.").count();
    assert_eq!(sections(&before), 2600);
    assert_eq!(sections(&after), 2600);
    assert_eq!(
        after.matches("[[credentials.").count(),
        2601,
        "one event added"
    );
    for i in [0, 1023, 1024, 1025, 2047, 2048, 2599] {
        assert_eq!(
            env.get(&format!("key-{i:04}")),
            format!("value{i}").into_bytes()
        );
    }
    let out = env.cmd().arg("doctor").output().unwrap();
    assert!(
        stdout_of(&out).contains("2600 credentials"),
        "{}",
        stdout_of(&out)
    );
}

/// Import `count` credentials, `key-0000` and on, whose values are `value0` and on.
fn import_numbered(env: &TestEnv, count: usize) {
    let dotenv: String = (0..count)
        .map(|i| format!("KEY_{i:04}=value{i}\n"))
        .collect();
    env.cmd()
        .args(["import", "-"])
        .write_stdin(dotenv)
        .assert()
        .success();
}
