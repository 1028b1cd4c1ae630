//! The outside review's attacks (issue 14), each reproduced against the real binary with
//! real shells, real `base64`, real python3 and a real full file system limit.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::Command as StdCommand;

use common::{TestEnv, stderr_of, stdout_of};

fn no_panic(out: &std::process::Output, what: &str) {
    let err = stderr_of(out);
    assert_ne!(out.status.code(), Some(101), "{what} panicked: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{what}: {err}"
    );
}

// ---- 6: durations and dates that overflow the calendar -----------------------------------

#[test]
fn huge_periods_are_usage_errors_not_panics() {
    let env = TestEnv::init();
    let before = env.snapshot();
    for period in [
        "19999y",
        "240000mo",
        "9999999d",
        "1000000w",
        "99999999h",
        "5000y",
    ] {
        let out = env
            .cmd()
            .args(["add", "k", "--rotate-every", period])
            .write_stdin("value-1234")
            .output()
            .unwrap();
        no_panic(&out, period);
        assert_eq!(out.status.code(), Some(2), "{period}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).starts_with("error: "),
            "{}",
            stderr_of(&out)
        );
    }
    for window in ["19999y", "240000mo", "9999999d"] {
        let out = env
            .cmd()
            .args(["due", "--within", window])
            .output()
            .unwrap();
        no_panic(&out, window);
        assert_eq!(out.status.code(), Some(2), "{window}");
    }
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_manifest_holding_a_huge_period_makes_no_command_panic() {
    let env = TestEnv::init();
    env.cmd()
        .args(["add", "k", "--rotate-every", "30d"])
        .write_stdin("value-1234")
        .assert()
        .success();
    let manifest = fs::read_to_string(env.manifest_path()).unwrap();
    for bad in ["19999y", "240000mo", "9999999d"] {
        fs::write(
            env.manifest_path(),
            manifest.replace(
                "rotate_every = \"30d\"",
                &format!("rotate_every = \"{bad}\""),
            ),
        )
        .unwrap();
        for args in [
            &["list"][..],
            &["show", "k"],
            &["due"],
            &["get", "k"],
            &["doctor"],
            &["exec", "--", "true"],
            &["export"],
        ] {
            let out = env.cmd().args(args).output().unwrap();
            no_panic(&out, &format!("{args:?} with {bad}"));
            assert_eq!(out.status.code(), Some(6), "{args:?}: {}", stderr_of(&out));
        }
    }
}

// ---- 5: export output is inert and exact when sourced ------------------------------------

const HOSTILE: &[&str] = &[
    "`touch PWNED`",
    "$(touch PWNED)",
    "it's'; touch PWNED; '",
    "\"; touch PWNED; \"",
    "two\nlines\n; touch PWNED",
    "back\\slash \\n \\` \\$ \\\\",
    "trailing newline\n",
    "\r\ncarriage\r",
    "${HOME} $HOME $$ !! \\",
    "tab\there # not a comment",
    "ümlaut ✓ \u{202e}",
];

fn shells() -> Vec<&'static str> {
    let shells = ["sh", "bash", "dash"];
    for shell in shells {
        assert!(
            StdCommand::new(shell)
                .arg("-c")
                .arg("true")
                .status()
                .is_ok(),
            "{shell} is not installed (scripts/test installs it)"
        );
    }
    shells.to_vec()
}

/// Source `file` in `shell`, then write each variable's value to `out/NAME`.
fn source_and_dump(env: &TestEnv, shell: &str, file: &Path, names: &[String]) -> Vec<Vec<u8>> {
    let out_dir = env.dir.path().join(format!("out-{shell}"));
    let _ = fs::remove_dir_all(&out_dir);
    fs::create_dir(&out_dir).unwrap();
    let mut script = format!(". '{}'\n", file.display());
    for name in names {
        script.push_str(&format!(
            "printf %s \"${name}\" > '{}/{name}'\n",
            out_dir.display()
        ));
    }
    let status = StdCommand::new(shell)
        .arg("-c")
        .arg(&script)
        .current_dir(env.dir.path())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{shell} failed to source {}",
        file.display()
    );
    names
        .iter()
        .map(|n| fs::read(out_dir.join(n)).unwrap())
        .collect()
}

#[test]
fn every_export_format_is_inert_and_exact_in_sh_bash_and_dash() {
    let env = TestEnv::init();
    let mut names = Vec::new();
    for (i, value) in HOSTILE.iter().enumerate() {
        let path = env.dir.path().join(format!("v{i}"));
        fs::write(&path, value).unwrap();
        env.cmd()
            .args(["add", &format!("v{i}"), "--from-file"])
            .arg(&path)
            .assert()
            .success();
        names.push(format!("V{i}"));
    }
    let marker = env.dir.path().join("PWNED");
    for format in ["dotenv", "shell"] {
        let out = env
            .cmd()
            .args(["export", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let file = env.dir.path().join(format!("exported.{format}"));
        fs::write(&file, &out.stdout).unwrap();
        for shell in shells() {
            let got = source_and_dump(&env, shell, &file, &names);
            assert!(
                !marker.exists(),
                "{format} sourced by {shell} ran a command"
            );
            for (i, value) in HOSTILE.iter().enumerate() {
                assert_eq!(
                    String::from_utf8_lossy(&got[i]),
                    *value,
                    "{format} sourced by {shell}: value {i} changed"
                );
            }
        }
    }
    // And dotenv still imports back to the same values.
    let out = env
        .cmd()
        .args(["export", "--format", "dotenv"])
        .output()
        .unwrap();
    let other = TestEnv::init();
    other
        .cmd()
        .args(["import", "-"])
        .write_stdin(out.stdout)
        .assert()
        .success();
    for (i, value) in HOSTILE.iter().enumerate() {
        assert_eq!(other.get(&format!("v{i}")), value.as_bytes(), "value {i}");
    }
}

#[test]
fn a_value_shells_cannot_hold_is_refused_by_the_shell_formats() {
    let env = TestEnv::init();
    let path = env.dir.path().join("nul");
    fs::write(&path, b"before\0after").unwrap();
    env.cmd()
        .args(["add", "nul-value", "--from-file"])
        .arg(&path)
        .assert()
        .success();
    for format in ["dotenv", "shell"] {
        let out = env
            .cmd()
            .args(["export", "--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(stdout_of(&out).is_empty());
        assert!(stderr_of(&out).contains("nul-value"), "{}", stderr_of(&out));
    }
}

// ---- 7: masking and scan find the forms people actually produce --------------------------

/// 90 bytes: its base64 is 120 characters, so `base64` wraps it.
const LONG_KEY: &str =
    "sk-ant-api03-Q9xw7LmZ2kPp4Rt8Vb6Nc3Hy5Jd1Fg0Ks7Wq2Ee4Rr6Tt8Yy0Uu2Ii4Oo6Pp8Aa0Ss2Dd4Ff6Gg8H";
const PATHY: &str = "tok/en with space/and:colon~x";

fn mask_store() -> TestEnv {
    let env = TestEnv::init();
    env.add("long-key", LONG_KEY.as_bytes());
    // A value stored with its trailing newline (--from-file keeps bytes exactly).
    let nl = env.dir.path().join("nl");
    fs::write(&nl, "nl-value-8c1f2e\n").unwrap();
    env.cmd()
        .args(["add", "nl-key", "--from-file"])
        .arg(&nl)
        .assert()
        .success();
    env.add("pathy", PATHY.as_bytes());
    let json = env.dir.path().join("json");
    fs::write(&json, "quote\"back\\slash\ttab é-9f3k").unwrap();
    env.cmd()
        .args(["add", "json-key", "--from-file"])
        .arg(&json)
        .assert()
        .success();
    env
}

/// The forms real tools make of the values in `mask_store`, as `(label, text)`.
fn leaked_forms() -> Vec<(&'static str, String)> {
    let base64 = |args: &[&str]| {
        let out = StdCommand::new("sh")
            .arg("-c")
            .arg(format!("printf %s \"$1\" | base64 {}", args.join(" ")))
            .arg("sh")
            .arg(LONG_KEY)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let python = |code: &str, value: &str| {
        let out = StdCommand::new("python3")
            .arg("-c")
            .arg(code)
            .arg(value)
            .output()
            .expect("python3 (scripts/test installs it)");
        assert!(out.status.success(), "{}", stderr_of(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let wrapped76 = base64(&[]);
    assert!(wrapped76.trim_end().contains('\n'), "base64 did not wrap");
    vec![
        ("long-key", wrapped76),
        ("long-key", base64(&["-w", "64"])),
        ("nl-key", "nl-value-8c1f2e".to_string()),
        (
            "pathy",
            python(
                "import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))",
                PATHY,
            ),
        ),
        (
            "json-key",
            python(
                "import sys, json; print(json.dumps({'k': sys.argv[1]}))",
                "quote\"back\\slash\ttab é-9f3k",
            ),
        ),
        (
            "json-key",
            python(
                "import sys, json; print(json.dumps({'k': sys.argv[1]}, ensure_ascii=False))",
                "quote\"back\\slash\ttab é-9f3k",
            ),
        ),
    ]
}

#[test]
fn mask_catches_wrapped_base64_trimmed_python_quoted_and_json_escaped_values() {
    let env = mask_store();
    for (label, text) in leaked_forms() {
        let file = env.dir.path().join("leak.txt");
        fs::write(&file, &text).unwrap();
        let out = env
            .cmd()
            .args(["exec", "--mask", "--", "cat"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let shown = stdout_of(&out);
        assert!(
            shown.contains(&format!("<agentcred:{label}>")),
            "{label} not masked in {text:?}: {shown:?}"
        );
        // No line of the leak survives (each wrapped line is part of the value).
        for line in text.lines().filter(|l| l.len() >= 16) {
            assert!(!shown.contains(line), "{label}: {line:?} leaked: {shown:?}");
        }
    }
}

#[test]
fn scan_finds_the_same_forms() {
    let env = mask_store();
    let root = env.dir.path().join("tree");
    fs::create_dir(&root).unwrap();
    let forms = leaked_forms();
    for (i, (_, text)) in forms.iter().enumerate() {
        fs::write(root.join(format!("f{i}.txt")), text).unwrap();
    }
    let out = env.cmd().arg("scan").arg(&root).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let found = stdout_of(&out);
    for (i, (label, _)) in forms.iter().enumerate() {
        assert!(
            found.contains(&format!("f{i}.txt:1: {label}")),
            "f{i} ({label}) not found: {found}"
        );
    }
    assert!(!found.contains(LONG_KEY));
}

#[test]
fn a_crlf_value_through_the_pty_is_masked() {
    let env = TestEnv::init();
    let path = env.dir.path().join("crlf");
    fs::write(&path, "crlf-line-one\r\ncrlf-line-two").unwrap();
    env.cmd()
        .args(["add", "crlf-key", "--from-file"])
        .arg(&path)
        .assert()
        .success();
    let mut cmd = StdCommand::new("sh");
    cmd.arg("-c")
        .arg(r#""$AGENTCRED" exec --mask -- sh -c 'printf "%s\n" "$CRLF_KEY"'; echo "exit=$?""#)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", &env.home)
        .env("AGENTCRED_STORE", &env.store)
        .env("AGENTCRED", TestEnv::bin())
        .env("TERM", "xterm-256color");
    let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
    let rest = session.exp_eof().unwrap();
    assert!(rest.contains("<agentcred:crlf-key>"), "{rest:?}");
    assert!(rest.contains("exit=0"), "{rest:?}");
    assert!(
        !rest.contains("crlf-line-one") && !rest.contains("crlf-line-two"),
        "{rest:?}"
    );
}

// ---- 8: the audit log survives a full disk; truncation and deletion are seen --------------

fn audit_len(env: &TestEnv) -> u64 {
    fs::metadata(env.store.join("audit.jsonl")).map_or(0, |m| m.len())
}

#[test]
fn a_full_disk_leaves_no_torn_audit_line() {
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    // Grow the log until the next line (about 200 bytes) would cross a 512-byte block.
    let mut tries = 0;
    loop {
        let len = audit_len(&env);
        let room = len.div_ceil(512) * 512 - len;
        if (20..120).contains(&room) {
            break;
        }
        env.get("k");
        tries += 1;
        assert!(tries < 100);
    }
    let blocks = audit_len(&env).div_ceil(512);
    let before = fs::read(env.store.join("audit.jsonl")).unwrap();
    // `ulimit -f`: writes past the limit fail with EFBIG (SIGXFSZ ignored), as on a full
    // disk: the first part of the line lands, the rest does not.
    let out = env
        .command("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" get k",
        ))
        .arg(TestEnv::bin())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stdout_of(&out).is_empty(), "a value was released unaudited");
    assert!(
        stderr_of(&out).contains("cannot write the audit log"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(fs::read(env.store.join("audit.jsonl")).unwrap(), before);
    env.cmd().args(["audit", "--verify"]).assert().success();
    env.get("k");
    env.cmd().args(["audit", "--verify"]).assert().success();
    env.cmd().arg("doctor").assert().success();
}

#[test]
fn a_truncated_or_deleted_audit_log_is_detected() {
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    for _ in 0..4 {
        env.get("k");
    }
    env.cmd().args(["audit", "--verify"]).assert().success();
    let log = env.store.join("audit.jsonl");
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Drop the last two lines: the chain itself is intact.
    fs::write(&log, lines[..lines.len() - 2].concat()).unwrap();
    let out = env.cmd().args(["audit", "--verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stdout_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("truncated"), "{err}");
    let doctor = env.cmd().arg("doctor").output().unwrap();
    assert_ne!(doctor.status.code(), Some(0));
    assert!(
        stdout_of(&doctor).contains("truncated"),
        "{}",
        stdout_of(&doctor)
    );
    // Later events do not paper over it.
    env.get("k");
    env.get("k");
    env.get("k");
    env.cmd().args(["audit", "--verify"]).assert().code(6);

    fs::remove_file(&log).unwrap();
    let out = env.cmd().args(["audit", "--verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(stderr_of(&out).contains("deleted"), "{}", stderr_of(&out));
    // A deliberate reset: doctor --trust accepts the log as it is now.
    env.cmd()
        .args(["doctor", "--trust", "--yes"])
        .assert()
        .success();
    env.cmd().args(["audit", "--verify"]).assert().success();
}

// ---- 11: import runs add's checks -----------------------------------------------------------

#[test]
fn import_refuses_what_add_and_exec_refuse_and_strips_a_bom() {
    let env = TestEnv::init();
    env.add("keep", b"keep-value");
    let before = env.snapshot();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "big",
            [
                b"BIG=".to_vec(),
                vec![b'x'; 17 * 1024 * 1024],
                b"\n".to_vec(),
            ]
            .concat(),
            "16 MiB",
        ),
        ("nul", b"NUL=\"a\0b\"\n".to_vec(), "NUL"),
        (
            "env",
            [b"LARGE=".to_vec(), vec![b'y'; 200 * 1024], b"\n".to_vec()].concat(),
            "128 KiB",
        ),
    ];
    for (what, text, reason) in cases {
        let out = env
            .cmd()
            .args(["import", "-"])
            .write_stdin(text)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(
            err.contains(reason) && err.contains("line 1"),
            "{what}: {err}"
        );
        assert!(
            !err.contains("xxxxxxxx") && !err.contains("yyyyyyyy"),
            "{err}"
        );
        assert_eq!(env.snapshot(), before, "{what} changed the store");
    }
    env.cmd()
        .args(["import", "-"])
        .write_stdin(b"\xEF\xBB\xBFBOM_KEY=bom-value\n".to_vec())
        .assert()
        .success();
    assert_eq!(env.get("bom-key"), b"bom-value");
    env.cmd().args(["exec", "--", "true"]).assert().success();
}

// ---- 12: pasted secrets are never echoed --------------------------------------------------

fn assert_not_echoed(out: &std::process::Output, secret: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(out));
    let err = stderr_of(out);
    for line in secret.lines().filter(|l| l.len() >= 8) {
        assert!(!err.contains(line), "echoed {line:?}: {err}");
        assert!(!stdout_of(out).contains(line));
    }
    assert!(err.contains("pipe the value or use --from-file"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn identities_private_keys_and_stray_values_are_never_echoed() {
    let env = TestEnv::init();
    let before = env.snapshot();
    let identity = env
        .identity_text()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    let out = env
        .cmd()
        .args(["recipients", "add", &identity])
        .output()
        .unwrap();
    assert_not_echoed(&out, &identity);

    let key = env.dir.path().join("id_ed25519");
    let status = StdCommand::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (scripts/test installs openssh-client)");
    assert!(status.success());
    let private = fs::read_to_string(&key).unwrap();
    for args in [
        vec!["recipients", "add", private.as_str()],
        vec!["recipients", "add", private.trim_end()],
        vec!["add", "k", private.as_str()],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        assert_not_echoed(&out, &private);
    }

    let value = "sk-live-51HxQ2eZvKYlo2C9xSecretValue";
    for args in [
        vec!["add", "stripe-key", value],
        vec!["add", "stripe-key", "--force", value],
        vec!["recipients", "add", value],
        vec!["get", "stripe-key", value],
    ] {
        let out = env.cmd().args(&args).output().unwrap();
        assert_not_echoed(&out, value);
    }
    assert_eq!(env.snapshot(), before);
    // Ordinary mistakes still say what was wrong.
    let out = env
        .cmd()
        .args(["add", "k", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("--no-such-flag"),
        "{}",
        stderr_of(&out)
    );
}

// ---- 2 (export part): an empty selection is never "everything" ----------------------------

#[test]
fn export_with_an_empty_only_is_a_usage_error() {
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    for only in ["", ",", ",,"] {
        let out = env.cmd().args(["export", "--only", only]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{only:?}: {}", stderr_of(&out));
        assert!(stdout_of(&out).is_empty(), "{only:?} printed values");
        assert!(stderr_of(&out).contains("--only names no credential"));
    }
}

// ---- 13: smaller holes ---------------------------------------------------------------------

#[test]
fn the_audit_user_is_the_account_not_dollar_user() {
    let env = TestEnv::init();
    env.cmd()
        .env("USER", "mallory")
        .env("LOGNAME", "mallory")
        .args(["add", "k"])
        .write_stdin("value-1234")
        .assert()
        .success();
    let log = fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    let user = last["user"].as_str().unwrap();
    assert!(
        user.starts_with(&format!("{}@", common::account())),
        "{user}"
    );
    assert!(!log.contains("mallory"));
    let show = env.cmd().args(["show", "k", "--json"]).output().unwrap();
    assert!(!stdout_of(&show).contains("mallory"));
}

/// `main` is agentcred's own on Linux (src/main.rs): what Rust's start did before it, it
/// still does. A descriptor agentcred is started without is `/dev/null` for it and for
/// the program it runs (nothing agentcred opens takes its place), a write to a closed
/// pipe is an error and not a kill (`broken_pipe_exits_quietly`).
#[test]
fn closed_standard_descriptors_are_dev_null_for_agentcred_and_the_program() {
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    let out = env
        .command("bash")
        .arg("-c")
        .arg(r#""$0" exec -- sh -c 'echo $(readlink /proc/$$/fd/0 /proc/$$/fd/1) >&2' <&- >&-"#)
        .arg(TestEnv::bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "/dev/null /dev/null\n");
    // Without stdin, stdout and stderr: the store is read and the audit line written
    // (descriptors 0 to 2 are not where the store's files went).
    let before = audit_len(&env);
    let out = env
        .command("bash")
        .arg("-c")
        .arg(r#""$0" exec -- sh -c 'test "$(readlink /proc/$$/fd/2)" = /dev/null' <&- >&- 2>&-"#)
        .arg(TestEnv::bin())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(audit_len(&env) > before);
}

/// Where `/dev/null` cannot be opened for writing (here a file mounted read-only over it,
/// in a mount namespace of this test's own), a closed stdout is filled with a path-only descriptor
/// of `/`, which nothing can be written to; what agentcred opens (the store, the audit
/// log) never becomes its stdout.
#[test]
fn without_dev_null_a_closed_stdout_is_still_filled() {
    if !rustix::process::getuid().is_root() {
        eprintln!("skipped: needs root for a mount namespace (CI runs as root)");
        return;
    }
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    let empty = env.dir.path().join("empty");
    fs::write(&empty, b"").unwrap();
    let script = r#"mount --bind "$1" /dev/null && mount -o remount,ro,bind /dev/null || exit 99
"$0" exec -- sh -c 'echo "$(readlink /proc/$$/fd/1)" >&2' >&-
"$0" get k >&-; echo "get: $?" >&2"#;
    let out = env
        .command("unshare")
        .args(["-m", "sh", "-c", script])
        .arg(TestEnv::bin())
        .arg(&empty)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    let mut lines = err.lines();
    assert_eq!(lines.next(), Some("/"), "{err}");
    // `get` cannot write the value there (std's stdout takes EBADF as a closed stdout,
    // whose output goes nowhere): the value is in no file.
    assert!(err.ends_with("get: 0\n"), "{err}");
    assert!(!err.contains("value-1234"), "{err}");
    let log = fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    assert!(!log.contains("value-1234"));
}

#[test]
fn a_symlinked_secret_is_an_integrity_error() {
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    let elsewhere = env.dir.path().join("elsewhere.age");
    fs::copy(env.secret_file("k"), &elsewhere).unwrap();
    fs::remove_file(env.secret_file("k")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.secret_file("k")).unwrap();
    for args in [&["get", "k"][..], &["exec", "--", "true"]] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(6), "{args:?}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains("symlink"), "{}", stderr_of(&out));
    }
}

#[test]
fn scan_json_gives_real_paths_and_marking_is_audited() {
    let env = TestEnv::init();
    env.add("api-key", b"sk-live-4f9a8b7c6d5e");
    let root = env.dir.path().join("tree");
    fs::create_dir(&root).unwrap();
    let name = "tab\there \u{202e}txt.env";
    fs::write(root.join(name), "KEY=sk-live-4f9a8b7c6d5e\n").unwrap();
    let out = env
        .cmd()
        .current_dir(&root)
        .args(["scan", "--json", "--mark-compromised", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["findings"][0]["path"], name);
    // The human form stays escaped.
    let out = env.cmd().current_dir(&root).arg("scan").output().unwrap();
    assert!(
        stdout_of(&out).contains("tab\\u{9}here \\u{202e}txt.env:1: api-key"),
        "{}",
        stdout_of(&out)
    );
    let log = fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("\"action\":\"scan-mark-compromised\"")
                && l.contains("\"outcome\":\"ok\"")
                && l.contains("api-key")),
        "{log}"
    );
}

#[test]
fn doctor_trust_is_audited() {
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    env.cmd()
        .args(["doctor", "--trust", "--yes"])
        .assert()
        .success();
    let log = fs::read_to_string(env.store.join("audit.jsonl")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("\"action\":\"trust\"") && l.contains("\"outcome\":\"ok\"")),
        "{log}"
    );
    env.cmd().args(["audit", "--verify"]).assert().success();
}

#[test]
fn an_unwritable_state_directory_is_said_not_ignored() {
    let env = TestEnv::new();
    // Even root cannot make a directory where a file is.
    fs::create_dir_all(env.home.join(".local")).unwrap();
    fs::write(env.home.join(".local/state"), b"not a directory").unwrap();
    let out = env.cmd().arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = env
        .cmd()
        .args(["add", "k"])
        .write_stdin("value-1234")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("warning: cannot write this machine's record of the store"),
        "{err}"
    );
    assert_eq!(
        err.matches("warning: cannot write this machine's record")
            .count(),
        1,
        "{err}"
    );
}

// ---- 10: refused targets --------------------------------------------------------------------

/// The review's list, and one more of each family.
const REFUSED: &[&str] = &[
    "GIT_SSL_NO_VERIFY",
    "SSLKEYLOGFILE",
    "GOFLAGS",
    "RUSTC_WRAPPER",
    "OPENSSL_CONF",
    "PYTHONUSERBASE",
    "PYTHONHTTPSVERIFY",
    "AWS_CONFIG_FILE",
    "NPM_CONFIG_USERCONFIG",
    "GIT_SEQUENCE_EDITOR",
    "MANPAGER",
    "SUDO_ASKPASS",
    "GIT_SSL_CAINFO",
    "GOINSECURE",
    "GIT_TRACE_CURL",
    "SYSTEMD_PAGER",
    "KUBECONFIG",
    "AWS_SHARED_CREDENTIALS_FILE",
    "MAVEN_OPTS",
    "PS1",
];

#[test]
fn targets_that_change_how_programs_load_or_trust_are_refused() {
    let env = TestEnv::init();
    let before = env.snapshot();
    for var in REFUSED {
        let out = env
            .cmd()
            .args(["add", "k", "--env", var])
            .write_stdin("value-1234")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(var), "{}", stderr_of(&out));
        let out = env
            .cmd()
            .args(["import", "-"])
            .write_stdin(format!("{var}=value-1234\n"))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "import {var}: {}",
            stderr_of(&out)
        );
    }
    assert_eq!(env.snapshot(), before);
    for var in [
        "HTTPS_PROXY",
        "NPM_TOKEN",
        "CARGO_REGISTRY_TOKEN",
        "GOPROXY",
    ] {
        env.cmd()
            .args(["add", &var.to_ascii_lowercase(), "--env", var])
            .write_stdin("value-1234")
            .assert()
            .success();
    }
}

// ---- 1: nothing that unlocks a backend reaches the program --------------------------------

const BACKEND_VARS: &[&str] = &[
    "VAULT_TOKEN",
    "BAO_TOKEN",
    "AGENTCRED_VAULT_ROLE_ID",
    "AGENTCRED_VAULT_SECRET_ID",
    "AGENTCRED_IDENTITY",
    "AGENTCRED_IDENTITY_FILE",
    "AGENTCRED_PASSPHRASE",
];

#[test]
fn backend_tokens_never_reach_the_program() {
    let env = TestEnv::init();
    env.add("k", b"value-1234");
    for extra in [&[][..], &["--mask"], &["--clean-env"], &["--only", "k"]] {
        let mut cmd = env.cmd();
        cmd.arg("exec").args(extra).args(["--", "env"]);
        for var in BACKEND_VARS {
            if !var.starts_with("AGENTCRED_IDENTITY") {
                cmd.env(var, format!("leaked-{var}"));
            }
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr_of(&out));
        let child = stdout_of(&out);
        assert!(
            child.contains("K=value-1234\n") || child.contains("K=<agentcred:k>\n"),
            "{child}"
        );
        for var in BACKEND_VARS {
            assert!(
                !child.contains(&format!("{var}=")),
                "{extra:?}: {var} reached the program"
            );
        }
    }
}

// ---- 2: least privilege is not left to chance ----------------------------------------------

fn two_credentials_and_an_agent() -> TestEnv {
    let env = TestEnv::init();
    env.add("a", b"value-aaaa");
    env.add("b", b"value-bbbb");
    env.cmd()
        .args(["agent", "add", "bot", "--allow", "a"])
        .assert()
        .success();
    env
}

#[test]
fn an_empty_only_is_a_usage_error_for_exec() {
    let env = two_credentials_and_an_agent();
    let marker = env.dir.path().join("started");
    for only in ["", ",", " , "] {
        let out = env
            .cmd()
            .args(["exec", "--only", only, "--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{only:?}: {}", stderr_of(&out));
        assert!(!marker.exists(), "{only:?} started the program");
    }
}

#[test]
fn an_interpreter_running_a_script_named_like_an_agent_gets_the_agents_credentials() {
    let env = two_credentials_and_an_agent();
    let dir = env.dir.path();
    let report = "A=${A-} B=${B-} AGENT=${AGENTCRED_AGENT-none}";
    fs::write(dir.join("bot.sh"), format!("echo \"{report}\"\n")).unwrap();
    fs::write(
        dir.join("bot.py"),
        "import os\nprint('A=%s B=%s AGENT=%s' % (os.environ.get('A',''), os.environ.get('B',''), os.environ.get('AGENTCRED_AGENT','none')))\n",
    )
    .unwrap();
    let want = "A=value-aaaa B= AGENT=bot\n";
    for command in [
        vec!["sh", "bot.sh"],
        vec!["bash", "bot.sh"],
        vec!["dash", "-e", "bot.sh"],
        vec!["python3", "bot.py"],
        vec!["python3", "-u", "./bot.py"],
    ] {
        let out = env
            .cmd()
            .arg("exec")
            .arg("--")
            .args(&command)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command:?}: {}",
            stderr_of(&out)
        );
        assert_eq!(stdout_of(&out), want, "{command:?}");
    }
}

#[test]
fn no_agent_applying_is_warned_about_and_require_agent_refuses_it() {
    let env = two_credentials_and_an_agent();
    let out = env.cmd().args(["exec", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let err = stderr_of(&out);
    assert!(err.contains("warning: no agent applies"), "{err}");
    // --only is an explicit choice: no warning.
    let out = env
        .cmd()
        .args(["exec", "--only", "b", "--", "true"])
        .output()
        .unwrap();
    assert!(
        !stderr_of(&out).contains("no agent applies"),
        "{}",
        stderr_of(&out)
    );

    env.cmd()
        .args(["config", "require-agent", "true"])
        .assert()
        .success();
    let marker = env.dir.path().join("started");
    for extra in [&[][..], &["--only", "b"]] {
        let out = env
            .cmd()
            .arg("exec")
            .args(extra)
            .args(["--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(7), "{extra:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("require_agent"),
            "{}",
            stderr_of(&out)
        );
        assert!(!marker.exists());
    }
    env.cmd()
        .args(["exec", "--agent", "bot", "--", "true"])
        .assert()
        .success();
    env.cmd()
        .args(["config", "require-agent", "false"])
        .assert()
        .success();
    env.cmd().args(["exec", "--", "true"]).assert().success();
}

// ---- 3: a rollback that restores a revoked grant -------------------------------------------

#[test]
fn a_rolled_back_manifest_is_refused_by_exec_and_is_a_doctor_problem() {
    let env = two_credentials_and_an_agent();
    env.cmd()
        .args(["agent", "grant", "bot", "b"])
        .assert()
        .success();
    let granted = fs::read(env.manifest_path()).unwrap();
    env.cmd()
        .args(["agent", "revoke", "bot", "b"])
        .assert()
        .success();
    let current = fs::read(env.manifest_path()).unwrap();
    fs::write(env.manifest_path(), &granted).unwrap();
    let marker = env.dir.path().join("started");
    let out = env
        .cmd()
        .args(["exec", "--agent", "bot", "--", "sh", "-c"])
        .arg(format!("touch {}; echo \"$B\"", marker.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(!marker.exists());
    assert!(!stdout_of(&out).contains("value-bbbb"));
    assert!(
        stderr_of(&out).contains("doctor --trust"),
        "{}",
        stderr_of(&out)
    );
    let doctor = env.cmd().arg("doctor").output().unwrap();
    assert_eq!(doctor.status.code(), Some(6), "{}", stdout_of(&doctor));
    assert!(
        stdout_of(&doctor).contains("older than generation"),
        "{}",
        stdout_of(&doctor)
    );

    // A CI runner with no memory pins the generation it expects.
    let fresh = TestEnv::new();
    let identity = env.identity_text();
    let generation = {
        let text = String::from_utf8(current.clone()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("generation = "))
            .unwrap()
            .to_string()
    };
    let ci = |manifest: &[u8]| {
        fs::write(env.manifest_path(), manifest).unwrap();
        fresh
            .cmd()
            .env("AGENTCRED_STORE", &env.store)
            .env("AGENTCRED_IDENTITY", &identity)
            .env("AGENTCRED_MIN_GENERATION", &generation)
            .args(["exec", "--agent", "bot", "--", "true"])
            .output()
            .unwrap()
    };
    let out = ci(&granted);
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("AGENTCRED_MIN_GENERATION"),
        "{}",
        stderr_of(&out)
    );
    let out = ci(&current);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    // A deliberate checkout of the old state is accepted with doctor --trust.
    fs::write(env.manifest_path(), &granted).unwrap();
    env.cmd()
        .args(["doctor", "--trust", "--yes"])
        .assert()
        .success();
    env.cmd()
        .args(["exec", "--agent", "bot", "--", "true"])
        .assert()
        .success();
}

// ---- 4: a pinned program is the program that runs ------------------------------------------

#[test]
fn a_rename_race_never_runs_an_unpinned_program_with_the_credentials() {
    let env = TestEnv::init();
    env.add("k", b"value-race-1234");
    let dir = env.dir.path().join("opt");
    fs::create_dir(&dir).unwrap();
    let good = dir.join("good");
    let evil = dir.join("evil");
    fs::write(&good, "#!/bin/sh\necho good\n").unwrap();
    fs::write(&evil, "#!/bin/sh\necho \"evil $K\"\n").unwrap();
    for p in [&good, &evil] {
        fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let bot = dir.join("bot");
    fs::copy(&good, &bot).unwrap();
    fs::set_permissions(&bot, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.cmd()
        .args([
            "agent",
            "add",
            "bot",
            "--allow",
            "k",
            "--pin-sha256",
            "--program",
        ])
        .arg(&bot)
        .assert()
        .success();
    // Swap the file under the pinned path as fast as possible, by rename.
    let mut swapper = StdCommand::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && while :; do ln -f good g.tmp && mv -f g.tmp bot; ln -f evil e.tmp && mv -f e.tmp bot; done")
        .arg("sh")
        .arg(&dir)
        .spawn()
        .unwrap();
    let (mut good_runs, mut refused, mut wins) = (0, 0, 0);
    for _ in 0..300 {
        let out = env.cmd().args(["exec", "--"]).arg(&bot).output().unwrap();
        let text = stdout_of(&out);
        if text.contains("value-race-1234") {
            wins += 1;
        } else if out.status.code() == Some(0) && text == "good\n" {
            good_runs += 1;
        } else if out.status.code() == Some(7) {
            refused += 1;
        }
    }
    let _ = swapper.kill();
    let _ = swapper.wait();
    eprintln!("rename race: {good_runs} ran the pinned program, {refused} refused, {wins} leaked");
    assert_eq!(
        wins, 0,
        "the swapped program got the credential {wins} times"
    );
}

#[test]
fn a_multi_call_binary_does_not_pass_the_pin_under_another_name() {
    let env = TestEnv::init();
    env.add("k", b"value-multi-1234");
    let dir = env.dir.path().join("bin");
    fs::create_dir(&dir).unwrap();
    // bash is a multi-call binary of sorts: run as `sh`, it is a POSIX shell. So `deploy`
    // and `sh` below are one file, told apart only by the name they are run as (as
    // busybox's applets are).
    let bash = fs::canonicalize("/bin/bash").unwrap();
    std::os::unix::fs::symlink(&bash, dir.join("deploy")).unwrap();
    std::os::unix::fs::symlink(&bash, dir.join("sh")).unwrap();
    env.cmd()
        .args([
            "agent",
            "add",
            "deploy",
            "--allow",
            "k",
            "--pin-sha256",
            "--program",
        ])
        .arg(dir.join("deploy"))
        .assert()
        .success();
    let script = r#"if shopt -qo posix; then echo "posix shell $K"; else echo "deploy $K"; fi"#;
    let out = env
        .cmd()
        .args(["exec", "--agent", "deploy", "--"])
        .arg(dir.join("sh"))
        .args(["-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr_of(&out));
    assert!(stdout_of(&out).is_empty());
    assert!(stderr_of(&out).contains("run as sh"), "{}", stderr_of(&out));
    let out = env
        .cmd()
        .args(["exec", "--agent", "deploy", "--"])
        .arg(dir.join("deploy"))
        .args(["-c", script])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "deploy value-multi-1234\n");
    // busybox itself is not a pin: it would pin every applet.
    let out = env
        .cmd()
        .args([
            "agent",
            "add",
            "any",
            "--allow",
            "k",
            "--program",
            "/bin/busybox",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("multi-call"),
        "{}",
        stderr_of(&out)
    );
}
