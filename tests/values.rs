//! Hostile names and awkward values.

use crate::common;

use common::{TestEnv, stderr_of};
use predicates::prelude::*;

#[test]
fn hostile_credential_names_are_refused_with_exit_2() {
    let env = TestEnv::init();
    let before = env.snapshot();
    let long = "a".repeat(300);
    for name in [
        "../x",
        "a/b",
        "/etc/passwd",
        "..",
        ".",
        long.as_str(),
        "a\x1b[2Jb",
        "a\u{202e}b",
        "a\nb",
        "",
        "-x",
        "Mixed",
    ] {
        let out = env
            .cmd()
            .arg("add")
            .arg("--")
            .arg(name)
            .write_stdin("v")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "name {name:?}: {}",
            stderr_of(&out)
        );
        let err = stderr_of(&out);
        assert!(err.starts_with("error: invalid credential name"), "{err}");
        assert!(
            !err.contains('\x1b') && !err.contains('\u{202e}'),
            "unescaped: {err:?}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    }
    assert_eq!(env.snapshot(), before);
    assert!(!env.dir.path().join("x.age").exists());
}

#[test]
fn hostile_env_names_are_refused_with_exit_2() {
    let env = TestEnv::init();
    let before = env.snapshot();
    for var in [
        "PATH",
        "LD_PRELOAD",
        "DYLD_INSERT_LIBRARIES",
        "BASH_ENV",
        "ENV",
        "IFS",
        "PS4",
        "PROMPT_COMMAND",
        "NODE_OPTIONS",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PERL5OPT",
        "RUBYOPT",
        "GIT_SSH_COMMAND",
        "AGENTCRED_IDENTITY",
        "GLIBC_TUNABLES",
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "DOTNET_STARTUP_HOOKS",
        "ld_preload",
    ] {
        env.cmd()
            .args(["add", "x", "--env", var])
            .write_stdin("v")
            .assert()
            .code(2)
            .stderr(predicate::str::contains("changes how programs load or run"));
    }
    for var in ["1ABC", "A-B", "A B", "A=B", "", "A\u{202e}"] {
        env.cmd()
            .args(["add", "x", "--env", var])
            .write_stdin("v")
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "invalid environment variable name",
            ));
    }
    // A name whose default variable would be invalid asks for --env.
    env.cmd()
        .args(["add", "1password"])
        .write_stdin("v")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--env"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn awkward_values_round_trip_exactly() {
    let env = TestEnv::init();
    let big: Vec<u8> = (0..200 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("newlines", b"line1\nline2\n\nline4".to_vec()),
        ("spaces", b"   leading and trailing   ".to_vec()),
        ("nul", b"before\0after".to_vec()),
        ("binary", (0u8..=255).collect()),
        ("big", big),
        ("unicode", "ключ-🔑-\u{202e}".as_bytes().to_vec()),
    ];
    for (name, value) in &cases {
        let path = env.dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        env.cmd()
            .args(["add", name, "--from-file"])
            .arg(&path)
            .assert()
            .success();
    }
    for (name, value) in &cases {
        assert_eq!(&env.get(name), value, "{name}");
    }
}

#[test]
fn values_that_cannot_be_env_vars_fail_before_the_program_starts() {
    let env = TestEnv::init();
    let marker = env.dir.path().join("started");
    for (name, value) in [("nul", b"a\0b".to_vec()), ("big", vec![b'x'; 200 * 1024])] {
        let path = env.dir.path().join(name);
        std::fs::write(&path, &value).unwrap();
        env.cmd()
            .args(["add", name, "--from-file"])
            .arg(&path)
            .assert()
            .success();
        let out = env
            .cmd()
            .args(["exec", "--only", name, "--", "touch"])
            .arg(&marker)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr_of(&out);
        assert!(
            err.contains(&format!(
                "value of {name} cannot be an environment variable"
            )),
            "{err}"
        );
        assert!(err.contains("--kind file"), "{err}");
        assert!(!marker.exists());
    }
}
