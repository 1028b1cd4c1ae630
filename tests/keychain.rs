//! The OS keychain, against a real Secret Service: every command runs on its own private
//! D-Bus session bus with gnome-keyring-daemon on it (`tests/support/keyring-session`),
//! keeping the keyring in the test's temp HOME, so tests share nothing and the daemon ends
//! with the command. `scripts/test` installs gnome-keyring, dbus and libsecret-tools.
//! One test reads what agentcred wrote with `secret-tool`, a client we did not write.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;

/// The state of the Secret Service on a command's bus.
#[derive(Clone, Copy)]
enum Bus {
    /// gnome-keyring, login collection unlocked.
    Unlocked,
    /// gnome-keyring, login collection locked (unlocking needs a prompt nobody can see).
    Locked,
    /// A session bus with no Secret Service on it.
    Empty,
}

impl Bus {
    fn mode(self) -> &'static str {
        match self {
            Bus::Unlocked => "unlocked",
            Bus::Locked => "locked",
            Bus::Empty => "none",
        }
    }
}

fn session_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/keyring-session")
}

/// `agentcred` on a private bus in the given state.
fn agentcred(env: &TestEnv, bus: Bus) -> Command {
    let mut cmd = env.command(session_script());
    cmd.arg(bus.mode()).arg(TestEnv::bin());
    cmd
}

/// `secret-tool` on a private bus with the keyring unlocked.
fn secret_tool(env: &TestEnv) -> Command {
    let mut cmd = env.command(session_script());
    cmd.arg(Bus::Unlocked.mode()).arg("secret-tool");
    cmd
}

/// A store whose identity `init` put in the keychain.
fn keychain_store() -> TestEnv {
    let env = TestEnv::new();
    agentcred(&env, Bus::Unlocked)
        .arg("init")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Created identity in the OS keychain (service agentcred, account identity)",
        ));
    assert!(!env.identity_path().exists(), "no identity file");
    env
}

fn add_keychain(env: &TestEnv, name: &str, value: &[u8]) {
    agentcred(env, Bus::Unlocked)
        .args(["add", name, "--backend", "keychain"])
        .write_stdin(value.to_vec())
        .assert()
        .success()
        .stderr(predicate::str::contains("(keychain"));
}

fn get(env: &TestEnv, name: &str) -> Vec<u8> {
    let out = agentcred(env, Bus::Unlocked)
        .args(["get", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "get {name}: {}", stderr_of(&out));
    out.stdout
}

/// The keychain account the manifest names for a credential: STORE_ID/NAME/VERSION.
fn account(env: &TestEnv, name: &str) -> String {
    let text = std::fs::read_to_string(env.manifest_path()).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    let store_id = manifest["store_id"].as_str().unwrap();
    let entry = &manifest["credentials"][name];
    assert_eq!(entry["backend"].as_str(), Some("keychain"));
    let tag = entry["sha256"].as_str().unwrap();
    format!("{store_id}/{name}/{}", &tag[..16])
}

/// The value `secret-tool` finds for an account, if any.
fn lookup(env: &TestEnv, account: &str) -> Option<Vec<u8>> {
    let out = secret_tool(env)
        .args(["lookup", "service", "agentcred", "username", account])
        .output()
        .unwrap();
    out.status.success().then_some(out.stdout)
}

/// The labels and accounts of every agentcred item in the keyring.
fn items(env: &TestEnv) -> String {
    let out = secret_tool(env)
        .args(["search", "--all", "service", "agentcred"])
        .output()
        .unwrap();
    // Labels and attributes go to stdout or stderr depending on the libsecret version.
    let text = format!("{}{}", stdout_of(&out), stderr_of(&out));
    text.lines()
        .filter(|l| l.starts_with("label = ") || l.starts_with("attribute.username = "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Exactly one `error:` line and one `hint:` line containing these.
fn assert_one_error(out: &std::process::Output, code: i32, error: &str, hint: &str) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one error and one hint: {stderr}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(error),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("hint: ") && lines[1].contains(hint),
        "{stderr}"
    );
}

#[test]
fn values_with_newlines_and_binary_bytes_round_trip_through_the_keychain() {
    let env = keychain_store();
    let text = b"line one\nline two\n\n".to_vec();
    add_keychain(&env, "multi-line", &text);
    let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, b'\n']).collect();
    let file = env.dir.path().join("binary.bin");
    std::fs::write(&file, &binary).unwrap();
    agentcred(&env, Bus::Unlocked)
        .args(["add", "blob", "--backend", "keychain", "--from-file"])
        .arg(&file)
        .assert()
        .success();

    // stdin loses one trailing newline (README, "Rotation"); --from-file keeps every byte.
    assert_eq!(get(&env, "multi-line"), b"line one\nline two\n");
    assert_eq!(get(&env, "blob"), binary);
    agentcred(&env, Bus::Unlocked)
        .args(["exec", "--only", "multi-line", "--", "sh", "-c"])
        .arg("printf %s \"$MULTI_LINE\"")
        .assert()
        .success()
        .stdout("line one\nline two\n");

    // The store holds metadata only: no secret file, no value in the manifest.
    let manifest = std::fs::read_to_string(env.manifest_path()).unwrap();
    assert!(manifest.contains("backend = \"keychain\""));
    assert!(!manifest.contains("line one"));
    let secrets: Vec<_> = std::fs::read_dir(env.store.join("secrets"))
        .unwrap()
        .collect();
    assert!(secrets.is_empty(), "{secrets:?}");
    agentcred(&env, Bus::Unlocked)
        .args(["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("keychain"));
}

#[test]
fn secret_tool_reads_what_agentcred_wrote() {
    let env = keychain_store();
    add_keychain(&env, "api-token", b"s3cret value\nwith a newline");
    let account = account(&env, "api-token");
    agentcred(&env, Bus::Unlocked)
        .args(["show", "api-token"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "item:         service agentcred, account {account}"
        )));
    assert_eq!(
        lookup(&env, &account).as_deref(),
        Some(&b"s3cret value\nwith a newline"[..])
    );
    let store_id = account.split('/').next().unwrap();
    let listed = items(&env);
    assert!(
        listed.contains(&format!("label = agentcred: api-token (store {store_id})")),
        "{listed}"
    );
    assert!(
        listed.contains("label = agentcred: age identity"),
        "{listed}"
    );
    // The identity item is an age identity file's text, as age-keygen writes it.
    let identity = lookup(&env, "identity").unwrap();
    let identity = String::from_utf8(identity).unwrap();
    assert!(identity.contains("AGE-SECRET-KEY-1"));
    assert!(identity.contains(&format!(
        "# public key: {}",
        stdout_of(
            &agentcred(&env, Bus::Unlocked)
                .args(["identity", "--public"])
                .output()
                .unwrap()
        )
        .trim()
    )));
}

#[test]
fn two_stores_with_one_keychain_never_collide() {
    let env = keychain_store();
    let other = env.dir.path().join("other-store");
    agentcred(&env, Bus::Unlocked)
        .arg("init")
        .env("AGENTCRED_STORE", &other)
        .assert()
        .success()
        .stdout(predicate::str::contains("Using identity the OS keychain"));
    add_keychain(&env, "token", b"first store");
    agentcred(&env, Bus::Unlocked)
        .args(["add", "token", "--backend", "keychain"])
        .env("AGENTCRED_STORE", &other)
        .write_stdin("second store")
        .assert()
        .success();
    assert_eq!(get(&env, "token"), b"first store");
    agentcred(&env, Bus::Unlocked)
        .args(["rm", "token", "--yes"])
        .env("AGENTCRED_STORE", &other)
        .assert()
        .success();
    assert_eq!(get(&env, "token"), b"first store");
}

#[test]
fn replacing_a_value_writes_a_new_item_and_deletes_the_old_one() {
    let env = keychain_store();
    add_keychain(&env, "token", b"v1");
    let first = account(&env, "token");
    agentcred(&env, Bus::Unlocked)
        .args(["add", "token", "--backend", "keychain", "--force"])
        .write_stdin("v2")
        .assert()
        .success();
    let second = account(&env, "token");
    assert_ne!(first, second, "a new version");
    assert_eq!(lookup(&env, &first), None, "the old item is gone");
    assert_eq!(lookup(&env, &second).as_deref(), Some(&b"v2"[..]));
    assert_eq!(get(&env, "token"), b"v2");

    // Moving it to the age backend deletes the keychain item; and back again.
    agentcred(&env, Bus::Unlocked)
        .args(["add", "token", "--force"])
        .write_stdin("v3")
        .assert()
        .success();
    assert_eq!(lookup(&env, &second), None);
    assert!(env.secret_file("token").exists());
    assert_eq!(get(&env, "token"), b"v3");
    add_keychain_forced(&env, "token", b"v4");
    assert!(!env.secret_file("token").exists(), "the age file is gone");
    assert_eq!(get(&env, "token"), b"v4");
    let listed = items(&env);
    assert_eq!(
        listed.matches("attribute.username = ").count(),
        2,
        "the identity and one value: {listed}"
    );
}

fn add_keychain_forced(env: &TestEnv, name: &str, value: &[u8]) {
    agentcred(env, Bus::Unlocked)
        .args(["add", name, "--backend", "keychain", "--force"])
        .write_stdin(value.to_vec())
        .assert()
        .success();
}

#[test]
fn rm_deletes_the_item_and_a_deleted_item_is_exit_4_naming_the_credential() {
    let env = keychain_store();
    add_keychain(&env, "gone", b"value");
    let item = account(&env, "gone");
    agentcred(&env, Bus::Unlocked)
        .args(["rm", "gone", "--yes"])
        .assert()
        .success();
    assert_eq!(lookup(&env, &item), None, "rm deleted the keychain item");

    // An item deleted behind our back.
    add_keychain(&env, "gone", b"value");
    let item = account(&env, "gone");
    secret_tool(&env)
        .args(["clear", "service", "agentcred", "username", &item])
        .assert()
        .success();
    let out = agentcred(&env, Bus::Unlocked)
        .args(["get", "gone"])
        .output()
        .unwrap();
    assert_one_error(
        &out,
        4,
        "the keychain item of credential gone is missing",
        "agentcred rm gone",
    );
    let out = agentcred(&env, Bus::Unlocked)
        .args(["exec", "--", "echo", "never runs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    assert!(!stdout_of(&out).contains("never runs"));
    // rm is idempotent about the item: it still removes the entry.
    agentcred(&env, Bus::Unlocked)
        .args(["rm", "gone", "--yes"])
        .assert()
        .success();
    agentcred(&env, Bus::Unlocked)
        .args(["get", "gone"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("credential gone not found"));
}

#[test]
fn a_value_changed_behind_our_back_is_an_integrity_error() {
    let env = keychain_store();
    add_keychain(&env, "token", b"original");
    secret_tool(&env)
        .args([
            "store",
            "--label=swapped",
            "service",
            "agentcred",
            "username",
            &account(&env, "token"),
        ])
        .write_stdin("attacker's value")
        .assert()
        .success();
    let out = agentcred(&env, Bus::Unlocked)
        .args(["get", "token"])
        .output()
        .unwrap();
    assert_one_error(
        &out,
        6,
        "keychain item of credential token does not match the manifest",
        "agentcred add token --backend keychain --force",
    );
    assert!(out.stdout.is_empty());
    assert!(!stderr_of(&out).contains("attacker"));
}

#[test]
fn no_dbus_at_all_is_exit_5_with_a_hint() {
    let env = keychain_store();
    add_keychain(&env, "token", b"value");
    let before = env.snapshot();
    // env.cmd() runs agentcred directly: no DBUS_SESSION_BUS_ADDRESS, no XDG_RUNTIME_DIR.
    let out = env.cmd().args(["get", "token"]).output().unwrap();
    assert_one_error(
        &out,
        5,
        "no identity found to unlock the store: the OS keychain cannot be read (there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset))",
        "set AGENTCRED_IDENTITY",
    );
    // A user bus in XDG_RUNTIME_DIR that nobody exported: the message says what to export.
    let runtime = env.dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::write(runtime.join("bus"), "").unwrap();
    let out = env
        .cmd()
        .args(["get", "token"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert_one_error(
        &out,
        5,
        &format!(
            "export DBUS_SESSION_BUS_ADDRESS=unix:path={}",
            runtime.join("bus").display()
        ),
        "set AGENTCRED_IDENTITY",
    );
    // With the identity from the environment, the value itself is unreachable.
    let identity = String::from_utf8(lookup(&env, "identity").unwrap()).unwrap();
    let out = env
        .cmd()
        .args(["get", "token"])
        .env("AGENTCRED_IDENTITY", &identity)
        .output()
        .unwrap();
    assert_one_error(
        &out,
        5,
        "cannot read credential token from the OS keychain: there is no D-Bus session bus",
        "use --backend age",
    );
    let out = env
        .cmd()
        .args(["add", "other", "--backend", "keychain"])
        .env("AGENTCRED_IDENTITY", &identity)
        .write_stdin("v")
        .output()
        .unwrap();
    assert_one_error(
        &out,
        5,
        "cannot store credential other in the OS keychain",
        "use --backend age",
    );
    assert_eq!(env.snapshot(), before, "nothing changed");
}

#[test]
fn no_secret_service_on_the_bus_is_exit_5_with_a_hint() {
    let env = keychain_store();
    add_keychain(&env, "token", b"value");
    let before = env.snapshot();
    let out = agentcred(&env, Bus::Empty)
        .args(["get", "token"])
        .output()
        .unwrap();
    assert_one_error(
        &out,
        5,
        "no Secret Service (org.freedesktop.secrets) runs on the D-Bus session bus",
        "AGENTCRED_IDENTITY",
    );
    let identity = String::from_utf8(lookup(&env, "identity").unwrap()).unwrap();
    let out = agentcred(&env, Bus::Empty)
        .args(["rm", "token", "--yes"])
        .env("AGENTCRED_IDENTITY", &identity)
        .output()
        .unwrap();
    assert_one_error(
        &out,
        5,
        "cannot delete credential token from the OS keychain: no Secret Service",
        "use --backend age",
    );
    assert_eq!(env.snapshot(), before, "rm changed nothing");
    assert_eq!(get(&env, "token"), b"value");
}

#[test]
fn a_locked_keyring_without_a_terminal_is_exit_5_within_a_bound() {
    let env = keychain_store();
    add_keychain(&env, "token", b"value");
    let identity = String::from_utf8(lookup(&env, "identity").unwrap()).unwrap();
    let before = env.snapshot();
    for (args, with_identity, error) in [
        (
            &["get", "token"][..],
            false,
            "the OS keychain cannot be read (it is locked",
        ),
        (
            &["get", "token"],
            true,
            "cannot read credential token from the OS keychain: it is locked",
        ),
        (
            &["add", "new", "--backend", "keychain"],
            true,
            "cannot store credential new in the OS keychain: it is locked",
        ),
    ] {
        let mut cmd = agentcred(&env, Bus::Locked);
        cmd.args(args).write_stdin("v");
        if with_identity {
            cmd.env("AGENTCRED_IDENTITY", &identity);
        }
        let started = Instant::now();
        let out = cmd.output().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "bounded: {:?}",
            started.elapsed()
        );
        let hint = if with_identity {
            "use --backend age"
        } else {
            "unlock the OS keychain"
        };
        assert_one_error(&out, 5, error, hint);
    }
    assert_eq!(env.snapshot(), before, "nothing changed");
}

#[test]
fn init_says_where_the_identity_went() {
    // No D-Bus at all: a file, and why.
    let env = TestEnv::new();
    let out = env.cmd().arg("init").output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains(&format!(
        "Created identity in {}",
        env.identity_path().display()
    )));
    assert!(
        stderr_of(&out).contains("note: no OS keychain to keep the identity in (there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)); using a file"),
        "{}",
        stderr_of(&out)
    );

    // A bus without a Secret Service, and a locked keyring: a file too.
    for (bus, why) in [(Bus::Empty, "no Secret Service"), (Bus::Locked, "locked")] {
        let env = TestEnv::new();
        let out = agentcred(&env, bus).arg("init").output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains(why), "{}", stderr_of(&out));
        assert!(env.identity_path().exists());
    }

    // Asked for explicitly, an unreachable keychain is an error, and nothing is created.
    let env = TestEnv::new();
    let out = agentcred(&env, Bus::Empty)
        .args(["init", "--identity", "keychain"])
        .output()
        .unwrap();
    assert_one_error(
        &out,
        5,
        "cannot store the identity in the OS keychain: no Secret Service",
        "agentcred init --identity file",
    );
    assert!(!env.store.exists() && !env.identity_path().exists());
    env.cmd()
        .args(["init", "--identity", "keychain", "--passphrase"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--passphrase protects an identity file",
        ));

    // With a keychain, --identity file still makes a file.
    let env = TestEnv::new();
    agentcred(&env, Bus::Unlocked)
        .args(["init", "--identity", "file"])
        .assert()
        .success();
    assert!(env.identity_path().exists());
    assert_eq!(lookup(&env, "identity"), None);
}

#[test]
fn a_file_identity_next_to_a_keychain_costs_one_search_and_no_secret_read() {
    let env = TestEnv::new();
    agentcred(&env, Bus::Unlocked)
        .args(["init", "--identity", "file"])
        .assert()
        .success();
    add_age(&env, "k", b"v");
    let log = env.dir.path().join("bus.log");
    agentcred(&env, Bus::Unlocked)
        .args(["get", "k"])
        .env("KEYRING_SESSION_MONITOR", &log)
        .assert()
        .success()
        .stdout("v");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.matches("member=SearchItems").count(), 1, "{calls}");
    assert_eq!(calls.matches("member=GetSecret").count(), 0, "{calls}");
    assert!(
        calls.contains("string \"plain\""),
        "no Diffie-Hellman session just to find nothing: {calls}"
    );
}

#[test]
fn identity_lookup_order_puts_the_keychain_between_the_variables_and_the_default_file() {
    let env = keychain_store();
    add_age(&env, "k", b"v");
    let stranger = TestEnv::init();
    // A default file with someone else's identity: the keychain comes first.
    std::fs::create_dir_all(env.identity_path().parent().unwrap()).unwrap();
    std::fs::copy(stranger.identity_path(), env.identity_path()).unwrap();
    assert_eq!(get(&env, "k"), b"v");
    // The variables come before the keychain.
    for (var, value) in [
        ("AGENTCRED_IDENTITY", stranger.identity_text()),
        (
            "AGENTCRED_IDENTITY_FILE",
            stranger.identity_path().display().to_string(),
        ),
    ] {
        agentcred(&env, Bus::Unlocked)
            .args(["get", "k"])
            .env(var, value)
            .assert()
            .code(5)
            .stderr(predicate::str::contains("not encrypted to your identity"));
    }
    // Without a keychain, the default file is next (and it is the stranger's).
    env.cmd()
        .args(["get", "k"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("not encrypted to your identity"));
}

#[test]
fn one_keychain_read_for_the_identity_per_command_not_one_per_credential() {
    let env = keychain_store();
    for name in ["a", "b", "c"] {
        add_age(&env, name, b"age value");
    }
    let reads = |env: &TestEnv, args: &[&str]| -> usize {
        let log = env.dir.path().join("bus.log");
        let out = agentcred(env, Bus::Unlocked)
            .args(args)
            .env("KEYRING_SESSION_MONITOR", &log)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            calls.matches("member=OpenSession").count(),
            1,
            "one connection"
        );
        calls.matches("member=GetSecret").count()
    };
    assert_eq!(reads(&env, &["exec", "--", "true"]), 1, "three age values");
    add_keychain(&env, "d", b"keychain value");
    add_keychain(&env, "e", b"keychain value");
    assert_eq!(
        reads(&env, &["exec", "--", "true"]),
        3,
        "the identity and two keychain values"
    );
    assert_eq!(reads(&env, &["get", "a"]), 1);
}

/// `add NAME` with the age backend, the identity coming from the keychain.
fn add_age(env: &TestEnv, name: &str, value: &[u8]) {
    agentcred(env, Bus::Unlocked)
        .args(["add", name])
        .write_stdin(value.to_vec())
        .assert()
        .success();
}

#[test]
fn a_writer_killed_at_any_instant_leaves_the_old_value_or_the_new_one() {
    let env = keychain_store();
    add_keychain(&env, "token", b"v0");
    let mut current = b"v0".to_vec();
    for round in 1..=24 {
        // SIGKILL `add --force` after 0 to 87 ms: before, during or after its commit.
        let script = format!(
            "printf v{round} | \"$0\" add token --backend keychain --force 2>/dev/null & pid=$!; \
             sleep 0.{:03}; kill -9 $pid 2>/dev/null; wait $pid; exit 0",
            (round * 29) % 90
        );
        env.command(session_script())
            .args(["unlocked", "sh", "-c", &script])
            .arg(TestEnv::bin())
            .assert()
            .success();
        let value = get(&env, "token");
        let new = format!("v{round}").into_bytes();
        assert!(
            value == current || value == new,
            "round {round}: {:?}",
            String::from_utf8_lossy(&value)
        );
        current = value;
    }
}

#[test]
fn import_over_a_keychain_credential_keeps_it_in_the_keychain() {
    let env = keychain_store();
    add_keychain(&env, "token", b"old");
    let old = account(&env, "token");
    agentcred(&env, Bus::Unlocked)
        .args(["import", "-", "--force"])
        .write_stdin("TOKEN=new\nOTHER=age value\n")
        .assert()
        .success();
    assert_eq!(get(&env, "token"), b"new");
    assert_eq!(get(&env, "other"), b"age value");
    let new = account(&env, "token");
    assert_eq!(lookup(&env, &new).as_deref(), Some(&b"new"[..]));
    assert_eq!(lookup(&env, &old), None);
    assert!(!env.secret_file("token").exists());
    assert!(env.secret_file("other").exists());
}

#[test]
fn removing_a_recipient_tags_keychain_values_under_the_new_store_key() {
    let env = keychain_store();
    add_keychain(&env, "api-token", b"kept in the keychain");
    agentcred(&env, Bus::Unlocked)
        .args(["add", "file-value"])
        .write_stdin("in an age file")
        .assert()
        .success();
    let key = env.dir.path().join("teammate.txt");
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let teammate = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(String::from))
        .unwrap();
    agentcred(&env, Bus::Unlocked)
        .args(["recipients", "add", &teammate])
        .assert()
        .success();
    let before = account(&env, "api-token");
    agentcred(&env, Bus::Unlocked)
        .args(["recipients", "rm", &teammate, "--yes"])
        .assert()
        .success()
        // Keychain values were never encrypted to the teammate: only the age value is due.
        .stderr(predicate::str::contains(
            "marked 1 credential due for rotation now: file-value",
        ));
    // Same value, a new item named by its tag under the new key; the old item is gone.
    let after = account(&env, "api-token");
    assert_ne!(after, before);
    assert_eq!(get(&env, "api-token"), b"kept in the keychain");
    assert_eq!(
        lookup(&env, &after).as_deref(),
        Some(&b"kept in the keychain"[..])
    );
    assert_eq!(lookup(&env, &before), None);
}

#[test]
fn rename_moves_a_keychain_value_to_an_item_of_the_new_name() {
    let env = keychain_store();
    add_keychain(&env, "token", b"kept");
    let old = account(&env, "token");
    agentcred(&env, Bus::Unlocked)
        .args(["rename", "token", "bot-token"])
        .assert()
        .success();
    let new = account(&env, "bot-token");
    assert!(new.contains("/bot-token/"), "{new}");
    assert_eq!(lookup(&env, &old), None, "the old item is gone");
    assert_eq!(lookup(&env, &new).as_deref(), Some(&b"kept"[..]));
    assert_eq!(get(&env, "bot-token"), b"kept");
}

/// Keychain values never go into the value cache (tests/value_cache.rs), only `age` ones:
/// after two execs, the cache names the age credential and not the keychain one, and `-v`
/// counts the age value alone.
#[test]
fn keychain_values_never_go_into_the_value_cache() {
    let env = keychain_store();
    add_keychain(&env, "kc-held-cred", b"kc-value");
    add_age(&env, "age-held-cred", b"age-value");
    let mut stderr = String::new();
    for _ in 0..2 {
        let out = agentcred(&env, Bus::Unlocked)
            .args(["-v", "exec", "--", "sh", "-c"])
            .arg("printf %s \"$KC_HELD_CRED|$AGE_HELD_CRED\"")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(stdout_of(&out), "kc-value|age-value");
        stderr = stderr_of(&out);
    }
    assert!(
        stderr.contains("value cache: 1 of 1 age value from the cache"),
        "{stderr}"
    );
    let cache = std::fs::read(env.store.join("cache/values")).unwrap();
    let has = |name: &str| cache.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(has("age-held-cred"));
    assert!(!has("kc-held-cred"), "a keychain value was cached");
}
