//! Shared stores: recipients added and removed, a store committed to git and used on two
//! machines and a CI runner, SSH recipients, and writers killed while re-encrypting. The
//! stock `age` CLI (a client we did not write) checks who can decrypt what.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, stderr_of, stdout_of};
use predicates::prelude::*;

/// A user with an identity made by `age-keygen` in the default place, and no store yet.
fn member() -> TestEnv {
    let env = TestEnv::new();
    let path = env.identity_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let out = StdCommand::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen (Debian package age) is installed");
    assert!(out.status.success(), "{}", stderr_of(&out));
    env
}

fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let out = env
        .command("git")
        .args(["-c", "user.name=tester", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    stdout_of(&out)
}

fn commit(env: &TestEnv, message: &str) {
    git(env, &env.store, &["add", "-A"]);
    git(env, &env.store, &["commit", "-q", "-m", message]);
}

/// Decrypt a file with the stock `age` CLI; `Ok(plaintext)` or `Err(stderr)`.
fn stock_age(identity: &Path, file: &Path) -> Result<Vec<u8>, String> {
    let out = StdCommand::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(stderr_of(&out))
    }
}

/// Every age-encrypted file of a store: the secrets and the store key.
fn encrypted_files(store: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(store.join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "age"))
        .collect();
    files.sort();
    files.push(store.join("storekey.age"));
    files
}

/// The store key's fingerprint, as doctor prints it.
fn fingerprint(env: &TestEnv) -> String {
    let out = env.cmd().args(["doctor", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "store key")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    message.rsplit(' ').next().unwrap().to_string()
}

fn list_json(env: &TestEnv) -> serde_json::Value {
    let out = env.cmd().args(["list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_store_in_git_works_for_every_member_and_ci_and_a_removed_member_loses_it() {
    let ana = TestEnv::init();
    ana.add("openai-api-key", b"sk-openai");
    ana.add("binary", b"\x00\xffbytes");
    ana.add("deploy-key", b"deploy-secret");
    ana.cmd()
        .args(["agent", "add", "ci", "--allow", "deploy-key"])
        .assert()
        .success();
    git(&ana, &ana.store, &["init", "-q"]);
    commit(&ana, "a store");
    let pinned = fingerprint(&ana);

    // Bob hands Ana his recipient; she adds it and commits; Bob clones.
    let bob = member();
    let bob_recipient = bob.recipient();
    ana.cmd()
        .args(["recipients", "add", &bob_recipient])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "it can decrypt the store's 3 age values",
        ))
        .stderr(predicate::str::contains("re-encrypting").not());
    commit(&ana, "bob can read");
    git(
        &bob,
        bob.dir.path(),
        &["clone", "-q", ana.store.to_str().unwrap(), "store"],
    );
    assert_eq!(bob.get("openai-api-key"), b"sk-openai");
    assert_eq!(bob.get("binary"), b"\x00\xffbytes");
    let listed = stdout_of(&bob.cmd().args(["recipients", "list"]).output().unwrap());
    assert!(
        listed.contains(&format!("{bob_recipient}  (you)")),
        "{listed}"
    );
    // The stock age opens every file with either identity.
    for file in encrypted_files(&bob.store) {
        stock_age(&bob.identity_path(), &file).unwrap();
        stock_age(&ana.identity_path(), &file).unwrap();
    }

    // Bob adds a credential; Ana pulls it and reads it.
    bob.add("from-bob", b"bob-value");
    commit(&bob, "bob's credential");
    git(
        &ana,
        &ana.store,
        &[
            "pull",
            "-q",
            "--ff-only",
            bob.store.to_str().unwrap(),
            "main",
        ],
    );
    assert_eq!(ana.get("from-bob"), b"bob-value");

    // A CI runner: a fresh machine with only AGENTCRED_IDENTITY and the pinned fingerprint.
    let ci = TestEnv::new();
    let ci_key = ci.dir.path().join("ci-key.txt");
    assert!(
        StdCommand::new("age-keygen")
            .arg("-o")
            .arg(&ci_key)
            .output()
            .unwrap()
            .status
            .success()
    );
    let ci_identity = std::fs::read_to_string(&ci_key).unwrap();
    std::fs::remove_file(&ci_key).unwrap();
    let ci_recipient = ci_identity
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    ana.cmd()
        .args(["recipients", "add", &ci_recipient])
        .assert()
        .success();
    commit(&ana, "ci can read");
    git(
        &ci,
        ci.dir.path(),
        &["clone", "-q", ana.store.to_str().unwrap(), "store"],
    );
    let deploy = |pin: &str| {
        ci.cmd()
            .env("AGENTCRED_IDENTITY", &ci_identity)
            .env("AGENTCRED_STORE_FINGERPRINT", pin)
            .args([
                "exec",
                "--agent",
                "ci",
                "--",
                "sh",
                "-c",
                "printf %s \"$DEPLOY_KEY|$OPENAI_API_KEY\"",
            ])
            .output()
            .unwrap()
    };
    let out = deploy(&pinned);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout_of(&out),
        "deploy-secret|",
        "the agent gets only its credential"
    );
    assert!(!ci.identity_path().exists());

    // Ana removes Bob: every file is re-encrypted without him, the key is replaced, and
    // what he could read is due now.
    let out = ana
        .cmd()
        .args(["recipients", "rm", &bob_recipient, "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let removed = stderr_of(&out);
    for said in [
        "marked 4 credentials due for rotation now",
        "the store key was replaced",
        "git history keeps them",
        "update AGENTCRED_STORE_FINGERPRINT where it is pinned",
    ] {
        assert!(removed.contains(said), "{removed}");
    }
    commit(&ana, "bob left");
    let json = list_json(&ana);
    for credential in json["credentials"].as_array().unwrap() {
        assert_eq!(credential["status"], "overdue", "{credential}");
    }
    let shown = ana
        .cmd()
        .args(["show", "binary", "--json"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let last = shown["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "recipient-removed");
    let short = last["reason"].as_str().unwrap();
    assert!(
        short.starts_with(&bob_recipient[..12]) && short.contains("..."),
        "{short}"
    );
    git(&bob, &bob.store, &["pull", "-q", "--ff-only"]);
    for file in encrypted_files(&bob.store) {
        let err = stock_age(&bob.identity_path(), &file).unwrap_err();
        assert!(
            err.contains("no identity matched"),
            "{}: {err}",
            file.display()
        );
        stock_age(&ana.identity_path(), &file).unwrap();
    }
    for name in ["openai-api-key", "binary", "from-bob", "deploy-key"] {
        bob.cmd()
            .args(["get", name])
            .assert()
            .code(5)
            .stdout("")
            .stderr(predicate::str::contains("not encrypted to your identity"));
    }

    // The runner pinned the old key: a pin is exact, so it stops, naming the new key,
    // until the pin is updated (a removed member knows the old key).
    git(&ci, &ci.store, &["pull", "-q", "--ff-only"]);
    let new_pin = fingerprint(&ana);
    assert_ne!(new_pin, pinned);
    assert!(
        removed.contains(&format!("fingerprint is {new_pin}")),
        "{removed}"
    );
    let out = deploy(&pinned);
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "", "the program never started");
    assert!(
        stderr_of(&out).contains(&format!(
            "{pinned} is an earlier key of this store, replaced by `recipients rm`: pin {new_pin}"
        )),
        "{}",
        stderr_of(&out)
    );
    let out = deploy(&new_pin);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), "deploy-secret|");
    let out = deploy("0123456789abcdef0123456789abcdef");
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        !stderr_of(&out).contains("earlier key"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_machine_that_remembers_the_old_key_accepts_its_rotation_once() {
    let ana = TestEnv::init();
    ana.add("k", b"v");
    let bob = member();
    ana.cmd()
        .args(["recipients", "add", &bob.recipient()])
        .assert()
        .success();
    // Carol shares Ana's identity on another machine and uses a copy of the store.
    let carol = TestEnv::new();
    let copy = |to: &TestEnv| {
        let status = StdCommand::new("cp")
            .arg("-a")
            .arg(&ana.store)
            .arg(&to.store)
            .status()
            .unwrap();
        assert!(status.success());
    };
    copy(&carol);
    let identity = ana.identity_text();
    let carol_get = || {
        carol
            .cmd()
            .env("AGENTCRED_IDENTITY", &identity)
            .args(["get", "k"])
            .output()
            .unwrap()
    };
    let out = carol_get();
    assert!(
        out.status.success() && stderr_of(&out).is_empty(),
        "{}",
        stderr_of(&out)
    );
    ana.cmd()
        .args(["recipients", "rm", &bob.recipient(), "--keep-due", "--yes"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "1 credential it could read was not marked due",
        ));
    assert_eq!(list_json(&ana)["credentials"][0]["status"], "ok");
    std::fs::remove_dir_all(&carol.store).unwrap();
    copy(&carol);
    let out = carol_get();
    assert_eq!(out.stdout, b"v", "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("this store's key was rotated since this machine last used it"),
        "{}",
        stderr_of(&out)
    );
    let out = carol_get();
    assert!(
        out.status.success() && stderr_of(&out).is_empty(),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn refusals_leave_the_store_unchanged() {
    let ana = TestEnv::init();
    ana.add("k", b"v");
    let own = ana.recipient();
    let before = ana.snapshot();
    ana.cmd()
        .args(["recipients", "rm", &own])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is your own recipient"));
    ana.cmd()
        .args(["recipients", "rm", &own, "--force"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the store's only recipient"));
    let stranger = member().recipient();
    ana.cmd()
        .args(["recipients", "rm", &stranger])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("is not a recipient of this store"))
        .stderr(predicate::str::contains("recipients list"));
    for bad in ["age1nope", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "hello"] {
        ana.cmd()
            .args(["recipients", "add", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("error: invalid recipient"));
    }
    ana.cmd()
        .args(["recipients", "add", &own])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "already a recipient; nothing changed",
        ));
    assert_eq!(ana.snapshot(), before);

    // A recipient slipped into recipients.txt by hand never gets a secret.
    let path = ana.store.join("recipients.txt");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!("{stranger}\n"));
    std::fs::write(&path, &text).unwrap();
    let before = ana.snapshot();
    let other = member().recipient();
    for args in [
        vec!["recipients", "add", other.as_str()],
        vec!["recipients", "rm", stranger.as_str()],
    ] {
        ana.cmd()
            .args(&args)
            .assert()
            .code(6)
            .stderr(predicate::str::contains("recipients.txt"));
    }
    ana.cmd().args(["recipients", "list"]).assert().code(6);
    assert_eq!(ana.snapshot(), before);
}

#[test]
fn ssh_keys_are_recipients_and_identities() {
    let ana = TestEnv::init();
    ana.add("api", b"ssh-readable");
    ana.add("binary", b"\x00\x01\x02");
    let keys = ana.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let keygen = |kind: &str, file: &str| {
        let path = keys.join(file);
        let mut cmd = StdCommand::new("ssh-keygen");
        cmd.args([
            "-q",
            "-t",
            kind,
            "-N",
            "",
            "-C",
            &format!("{kind}@laptop"),
            "-f",
        ])
        .arg(&path);
        if kind == "rsa" {
            cmd.args(["-b", "2048"]);
        }
        let out = cmd
            .output()
            .expect("ssh-keygen (Debian package openssh-client) is installed");
        assert!(out.status.success(), "{}", stderr_of(&out));
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        (path, public.trim().to_string())
    };
    let (ed_key, ed_pub) = keygen("ed25519", "ed");
    let (rsa_key, rsa_pub) = keygen("rsa", "rsa");
    for public in [&ed_pub, &rsa_pub] {
        ana.cmd()
            .args(["recipients", "add", public])
            .assert()
            .success();
    }
    let out = ana
        .cmd()
        .args(["recipients", "list", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let recipients = json["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 3);
    assert_eq!(recipients[1]["type"], "ssh-ed25519");
    assert_eq!(recipients[1]["comment"], "ed25519@laptop");
    assert_eq!(recipients[2]["type"], "ssh-rsa");
    let ed_fingerprint = {
        let out = StdCommand::new("ssh-keygen")
            .arg("-lf")
            .arg(ed_key.with_extension("pub"))
            .output()
            .unwrap();
        stdout_of(&out).split(' ').nth(1).unwrap().to_string()
    };
    assert_eq!(
        recipients[1]["short"],
        format!("ssh-ed25519 {ed_fingerprint}")
    );
    // The SSH private keys unlock the store, as a file and as the variable's text.
    let laptop = TestEnv::new();
    StdCommand::new("cp")
        .arg("-a")
        .arg(&ana.store)
        .arg(&laptop.store)
        .status()
        .unwrap();
    for key in [&ed_key, &rsa_key] {
        let out = laptop
            .cmd()
            .env("AGENTCRED_IDENTITY_FILE", key)
            .args(["get", "binary"])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"\x00\x01\x02", "{}", stderr_of(&out));
        // A stock age decrypts with the SSH key too.
        let plain = stock_age(key, &laptop.secret_file("api")).unwrap();
        assert!(plain.ends_with(b"\nssh-readable"));
    }
    let out = laptop
        .cmd()
        .env(
            "AGENTCRED_IDENTITY",
            std::fs::read_to_string(&ed_key).unwrap(),
        )
        .args(["identity", "--public"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(&out).trim(), ed_pub.rsplit_once(' ').unwrap().0);
    laptop
        .cmd()
        .env("AGENTCRED_IDENTITY_FILE", &ed_key)
        .args(["add", "from-ssh"])
        .write_stdin("x")
        .assert()
        .success();
    // doctor counts SSH stanzas as recipients: no "encrypted to N recipients" warning.
    let out = ana.cmd().arg("doctor").output().unwrap();
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert!(
        stdout_of(&out).contains("3 recipients (2 SSH keys)"),
        "{}",
        stdout_of(&out)
    );
    assert!(
        !stdout_of(&out).contains("is encrypted to"),
        "{}",
        stdout_of(&out)
    );
    // Removed by fingerprint, the ed25519 key can no longer open anything.
    ana.cmd()
        .args(["recipients", "rm", &ed_fingerprint, "--keep-due", "--yes"])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!(
            "removed ssh-ed25519 {ed_fingerprint}"
        )));
    for file in encrypted_files(&ana.store) {
        assert!(stock_age(&ed_key, &file).is_err(), "{}", file.display());
        stock_age(&rsa_key, &file).unwrap();
    }
    // A passphrase-protected SSH key is refused with a reason, never a prompt.
    let locked = keys.join("locked");
    let out = StdCommand::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "pass phrase", "-f"])
        .arg(&locked)
        .output()
        .unwrap();
    assert!(out.status.success());
    ana.cmd()
        .env("AGENTCRED_IDENTITY_FILE", &locked)
        .args(["get", "api"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains("passphrase-protected SSH key"));
}

/// A tiny deterministic generator, seeded from the clock (printed, to replay a failure).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

#[test]
fn a_recipients_change_killed_at_any_moment_leaves_a_consistent_store() {
    let ana = TestEnv::init();
    let values: Vec<(String, String)> = (0..30)
        .map(|i| {
            (
                format!("secret-{i:02}"),
                format!("value-{i}-{}", "x".repeat(i * 7)),
            )
        })
        .collect();
    let dotenv: String = values
        .iter()
        .map(|(name, value)| format!("{}={value}\n", name.to_uppercase().replace('-', "_")))
        .collect();
    std::fs::write(ana.dir.path().join("all.env"), dotenv).unwrap();
    ana.cmd().args(["import", "all.env"]).assert().success();
    let bob = member();
    let bob_recipient = bob.recipient();
    // How long a change takes here, to spread the kills over it.
    let started = Instant::now();
    ana.cmd()
        .args(["recipients", "add", &bob_recipient])
        .assert()
        .success();
    let add_took = started.elapsed();
    let started = Instant::now();
    ana.cmd()
        .args(["recipients", "rm", &bob_recipient, "--keep-due", "--yes"])
        .assert()
        .success();
    // The faster of the two: a first run pays for cold caches.
    let took = add_took.min(started.elapsed());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("a change takes {took:?}; seed {seed}");
    let mut random = Lcg(seed);
    let bob_view = TestEnv::new();
    let mut completed = 0;
    // Kills that landed after the commit but before every file was renamed.
    let mut between = 0;
    for round in 0..20 {
        let listed = stdout_of(&ana.cmd().args(["recipients", "list"]).output().unwrap());
        let bob_before = listed.contains(&bob_recipient);
        let args: Vec<&str> = if bob_before {
            vec!["recipients", "rm", &bob_recipient, "--keep-due", "--yes"]
        } else {
            vec!["recipients", "add", &bob_recipient]
        };
        let mut child = StdCommand::new(TestEnv::bin())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &ana.home)
            .env("CI", "true")
            .env("AGENTCRED_STORE", &ana.store)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = random.below(took.as_micros() as u64 * 16 / 10);
        std::thread::sleep(Duration::from_micros(delay));
        let _ = child.kill();
        if child.wait().unwrap().success() {
            completed += 1;
        }
        // Ana reads every value (one process reads all 30) and a few one by one.
        let out = ana
            .cmd()
            .args(["export", "--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "round {round} ({args:?}): {}",
            stderr_of(&out)
        );
        let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for (name, value) in &values {
            let var = name.to_uppercase().replace('-', "_");
            assert_eq!(exported[&var], value.as_str(), "round {round}: {name}");
        }
        for (name, value) in values.iter().step_by(10) {
            assert_eq!(ana.get(name), value.as_bytes(), "round {round}");
        }
        // doctor: healthy (a cut-short change may leave pending files: a warning).
        let out = ana.cmd().arg("doctor").output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stdout_of(&out));
        let pending = stdout_of(&out).contains("was left by an interrupted write");
        // Bob can read exactly when the committed recipients name him.
        let listed = stdout_of(&ana.cmd().args(["recipients", "list"]).output().unwrap());
        let _ = std::fs::remove_dir_all(&bob_view.store);
        StdCommand::new("cp")
            .arg("-a")
            .arg(&ana.store)
            .arg(&bob_view.store)
            .status()
            .unwrap();
        let out = bob_view
            .cmd()
            .env("HOME", &bob.home)
            .args(["get", "secret-07"])
            .output()
            .unwrap();
        let bob_now = listed.contains(&bob_recipient);
        if bob_now {
            assert_eq!(
                out.stdout,
                values[7].1.as_bytes(),
                "round {round}: {}",
                stderr_of(&out)
            );
        } else {
            assert_eq!(
                out.status.code(),
                Some(5),
                "round {round}: {}",
                stderr_of(&out)
            );
        }
        if bob_now != bob_before && pending {
            between += 1;
        }
    }
    eprintln!(
        "{completed} of 20 changes completed before the kill; {between} were killed between their commit and their last rename"
    );
    assert!(completed < 20, "some kills landed mid-change");
    // The next change finishes or removes whatever the last kill left.
    ana.cmd()
        .args(["recipients", "add", &member().recipient()])
        .assert()
        .success();
    let out = ana.cmd().arg("doctor").output().unwrap();
    assert!(out.status.success(), "{}", stdout_of(&out));
    assert!(
        stdout_of(&out).contains("no temporary, pending or orphaned files"),
        "{}",
        stdout_of(&out)
    );
}

/// Rebuild the store as a writer killed right after its commit would leave it: the new
/// manifest in place, every other changed file still beside its old one as `NAME.pending`.
/// With `key_renamed`, the store key was already renamed into place (the first rename).
fn cut_after_commit(env: &TestEnv, before: &Path, key_renamed: bool) {
    let after = env.dir.path().join("after");
    let _ = std::fs::remove_dir_all(&after);
    std::fs::rename(&env.store, &after).unwrap();
    assert!(
        StdCommand::new("cp")
            .arg("-a")
            .arg(before)
            .arg(&env.store)
            .status()
            .unwrap()
            .success()
    );
    // The audit log is not part of the committed store: it keeps its lines (this machine
    // anchors it, so an older copy of it would be reported as truncated).
    std::fs::copy(after.join("audit.jsonl"), env.store.join("audit.jsonl")).unwrap();
    let mut pending = 0;
    for file in ["agentcred.toml", "storekey.age", "recipients.txt"]
        .iter()
        .map(PathBuf::from)
        .chain(
            std::fs::read_dir(after.join("secrets"))
                .unwrap()
                .map(|e| PathBuf::from("secrets").join(e.unwrap().file_name())),
        )
    {
        let new = std::fs::read(after.join(&file)).unwrap();
        if std::fs::read(env.store.join(&file)).ok().as_ref() == Some(&new) {
            continue;
        }
        let in_place = file == Path::new("agentcred.toml")
            || (key_renamed && file == Path::new("storekey.age"));
        let target = if in_place {
            env.store.join(&file)
        } else {
            pending += 1;
            env.store.join(format!("{}.pending", file.display()))
        };
        std::fs::write(&target, new).unwrap();
    }
    assert!(pending >= 2, "the change rewrote files");
}

#[test]
fn a_change_cut_between_its_commit_and_its_renames_is_read_and_finished() {
    let ana = TestEnv::init();
    for i in 0..5 {
        ana.add(&format!("k{i}"), format!("v{i}").as_bytes());
    }
    let bob = member();
    let bob_recipient = bob.recipient();
    let before = ana.dir.path().join("before");
    let bob_get = || {
        let view = TestEnv::new();
        StdCommand::new("cp")
            .arg("-a")
            .arg(&ana.store)
            .arg(&view.store)
            .status()
            .unwrap();
        view.cmd()
            .env("HOME", &bob.home)
            .args(["get", "k3"])
            .output()
            .unwrap()
    };
    for (change, key_renamed) in [("add", false), ("rm", false), ("add", true), ("rm", true)] {
        let _ = std::fs::remove_dir_all(&before);
        assert!(
            StdCommand::new("cp")
                .arg("-a")
                .arg(&ana.store)
                .arg(&before)
                .status()
                .unwrap()
                .success()
        );
        let mut args = vec!["recipients", change, bob_recipient.as_str()];
        if change == "rm" {
            args.extend(["--keep-due", "--yes"]);
        }
        ana.cmd().args(&args).assert().success();
        cut_after_commit(&ana, &before, key_renamed);
        let what = format!("{change}, key renamed: {key_renamed}");
        // Readers see the committed change: Ana reads everything, Bob exactly when added.
        for i in 0..5 {
            assert_eq!(
                ana.get(&format!("k{i}")),
                format!("v{i}").as_bytes(),
                "{what}"
            );
        }
        let listed = stdout_of(&ana.cmd().args(["recipients", "list"]).output().unwrap());
        assert_eq!(
            listed.contains(&bob_recipient),
            change == "add",
            "{what}: {listed}"
        );
        let out = bob_get();
        if change == "add" {
            assert_eq!(out.stdout, b"v3", "{what}: {}", stderr_of(&out));
        } else {
            assert_eq!(out.status.code(), Some(5), "{what}: {}", stderr_of(&out));
        }
        let out = ana.cmd().arg("doctor").output().unwrap();
        assert!(out.status.success(), "{what}: {}", stdout_of(&out));
        assert!(
            stdout_of(&out).contains("interrupted write"),
            "{what}: {}",
            stdout_of(&out)
        );
        // The next writer finishes the renames.
        ana.add(&format!("after-{change}-{key_renamed}"), b"x");
        let out = ana.cmd().arg("doctor").output().unwrap();
        assert!(
            stdout_of(&out).contains("no temporary, pending or orphaned files"),
            "{what}: {}",
            stdout_of(&out)
        );
        let files: Vec<_> = encrypted_files(&ana.store);
        for file in &files {
            let opened = stock_age(&bob.identity_path(), file);
            assert_eq!(
                opened.is_ok(),
                change == "add",
                "{what}: {}",
                file.display()
            );
        }
    }
}

#[test]
fn on_a_terminal_rm_asks_before_marking_credentials_due() {
    let ana = TestEnv::init();
    ana.add("k", b"v");
    let rm = |answer: &str| {
        let bob = member().recipient();
        ana.cmd()
            .args(["recipients", "add", &bob])
            .assert()
            .success();
        let mut cmd = StdCommand::new(TestEnv::bin());
        cmd.args(["recipients", "rm", &bob])
            .env_clear()
            .env("HOME", &ana.home)
            .env("AGENTCRED_STORE", &ana.store)
            .env("TERM", "dumb");
        let mut session = rexpect::session::spawn_command(cmd, Some(30_000)).unwrap();
        // Destructive: asked first, then whether to mark due.
        session.exp_string("Remove recipient").unwrap();
        session.send_line("y").unwrap();
        session
            .exp_string("could read 1 credential. Mark them due for rotation now?")
            .unwrap();
        session.send_line(answer).unwrap();
        session.exp_eof().unwrap()
    };
    let said = rm("n");
    assert!(
        said.contains("1 credential it could read was not marked due"),
        "{said:?}"
    );
    assert_eq!(list_json(&ana)["credentials"][0]["status"], "ok");
    let said = rm("y");
    assert!(
        said.contains("marked 1 credential due for rotation now: k"),
        "{said:?}"
    );
    assert_eq!(list_json(&ana)["credentials"][0]["status"], "overdue");
}

/// agentcred takes the public key from the identity file's `# public key:` line rather
/// than deriving it; a line naming another key must cost nothing but time.
#[test]
fn a_wrong_public_key_line_in_the_identity_file_changes_nothing() {
    let env = member();
    env.cmd().arg("init").assert().success();
    env.cmd()
        .args(["add", "api-key"])
        .write_stdin("the-value")
        .assert()
        .success();
    let other = env.dir.path().join("other.txt");
    let out = StdCommand::new("age-keygen")
        .arg("-o")
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let other_public = std::fs::read_to_string(&other)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .unwrap();
    let text = env.identity_text();
    let own_public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    std::fs::write(
        env.identity_path(),
        text.replace(&own_public, &other_public),
    )
    .unwrap();
    assert!(!env.identity_text().contains(&own_public));
    env.cmd()
        .args(["get", "api-key"])
        .assert()
        .success()
        .stdout("the-value");
    env.cmd()
        .args(["exec", "--", "sh", "-c", "printf %s \"$API_KEY\""])
        .assert()
        .success()
        .stdout("the-value");
}

/// Copy `from` over `to` (a store or a home), leaving nothing of `to` behind.
fn restore(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let status = StdCommand::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The manifest without what differs between two runs of the same change: hashes of
/// freshly encrypted files, MACs and seal under a fresh key, and the time of each event.
fn comparable_manifest(env: &TestEnv) -> String {
    let text = std::fs::read_to_string(env.manifest_path()).unwrap();
    text.lines()
        .filter(|l| {
            !["sha256 = ", "mac = ", "seal = "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| match l.split_once(" = \"20") {
            Some((field, _)) => format!("{field} = <time>"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A recipients change of an `age`-only store streams the manifest through its commit (a
/// section at a time); a store that needs the whole manifest (here, a value an interrupted
/// write left pending) takes the other path. Both must write the same manifest.
#[test]
fn the_streamed_and_the_whole_manifest_changes_write_the_same_store() {
    let ana = TestEnv::init();
    let dotenv: String = (0..40).map(|i| format!("KEY_{i:02}=value-{i}\n")).collect();
    std::fs::write(ana.dir.path().join("all.env"), dotenv).unwrap();
    ana.cmd().args(["import", "all.env"]).assert().success();
    ana.cmd()
        .args(["edit", "key-03", "--description", "the \"third\" key"])
        .assert()
        .success();
    ana.cmd()
        .args(["rotate", "key-07"])
        .write_stdin("new-seven")
        .assert()
        .success();
    ana.cmd()
        .args(["agent", "add", "bot", "--allow", "key-01,key-02"])
        .assert()
        .success();
    let bob = member().recipient();
    let saved = ana.dir.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    restore(&ana.store, &saved.join("store"));
    restore(&ana.home, &saved.join("home"));

    let change = |stray: bool, expect: &str| {
        let mut written = Vec::new();
        for args in [
            vec!["-v", "recipients", "add", &bob],
            vec!["-v", "recipients", "rm", &bob, "--yes"],
        ] {
            if stray {
                std::fs::write(ana.store.join("secrets/zz-left.age.pending"), b"junk").unwrap();
            }
            let out = ana.cmd().args(&args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
            assert!(
                stderr_of(&out).contains(expect),
                "{args:?}: {}",
                stderr_of(&out)
            );
            written.push(comparable_manifest(&ana));
        }
        assert!(!ana.store.join("secrets/zz-left.age.pending").exists());
        for i in 0..40 {
            let expected = if i == 7 {
                "new-seven".to_string()
            } else {
                format!("value-{i}")
            };
            assert_eq!(ana.get(&format!("key-{i:02}")), expected.as_bytes());
        }
        let due = stdout_of(&ana.cmd().args(["due", "--json"]).output().unwrap());
        assert_eq!(
            due.matches("\"name\"").count(),
            40,
            "every credential is due: {due}"
        );
        written
    };
    let streamed = change(
        false,
        "streamed through this change, one of its 40 credentials",
    );
    restore(&saved.join("store"), &ana.store);
    restore(&saved.join("home"), &ana.home);
    let whole = change(true, "an interrupted write left values pending");
    assert_eq!(streamed, whole);
    assert!(streamed[1].contains("action = \"recipient-removed\""));
    assert!(streamed[1].contains("[agents.bot]"));
}

/// The streamed commit reads the manifest a second time: one changed in the meantime by
/// something that ignores the store lock fails the commit, and nothing of the change is
/// left (no pending file, the store key and recipients as they were).
#[test]
fn a_manifest_changed_under_a_streamed_change_fails_it_and_nothing_is_left() {
    let ana = TestEnv::init();
    // A manifest well past the 64 KiB the commit reads at once.
    let dotenv: String = (0..400)
        .map(|i| format!("KEY_{i:03}=value-{i}\n"))
        .collect();
    std::fs::write(ana.dir.path().join("all.env"), dotenv).unwrap();
    ana.cmd().args(["import", "all.env"]).assert().success();
    let manifest = ana.manifest_path();
    assert!(std::fs::metadata(&manifest).unwrap().len() > 128 * 1024);
    let bob = member().recipient();
    let root_before = |name: &str| std::fs::read(ana.store.join(name)).unwrap();
    let (key_before, recipients_before) =
        (root_before("storekey.age"), root_before("recipients.txt"));
    let child = ana
        .std_cmd()
        .args(["recipients", "add", &bob])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The commit has begun once a value is staged; stop the writer there.
    let secrets = ana.store.join("secrets");
    let deadline = Instant::now() + Duration::from_secs(60);
    let staged = || {
        std::fs::read_dir(&secrets).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".age.pending")
        })
    };
    while !staged() {
        assert!(Instant::now() < deadline, "the change never staged a value");
        std::thread::sleep(Duration::from_micros(200));
    }
    let pid = child.id().to_string();
    assert!(
        StdCommand::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // Near the end of the file, past what the commit has read: the last event's author.
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    let at = text.rfind("by = \"").unwrap() + "by = \"".len();
    text.replace_range(at..at + 1, "X");
    let edited = text.into_bytes();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&manifest)
            .unwrap();
        file.seek(SeekFrom::Start(at as u64)).unwrap();
        file.write_all(&edited[at..at + 1]).unwrap();
    }
    assert!(
        StdCommand::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("changed while a transaction held the lock"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read(&manifest).unwrap(), edited);
    assert_eq!(root_before("storekey.age"), key_before);
    assert_eq!(root_before("recipients.txt"), recipients_before);
    let left: Vec<String> = common::mid_write_leftovers(&ana.store)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let root_pending = std::fs::read_dir(&ana.store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".pending"))
        .collect::<Vec<_>>();
    assert!(root_pending.is_empty(), "left behind: {root_pending:?}");
}

/// A change that fails on a value it cannot read records that failure, not success: the
/// streamed commit reads the values after `change_recipients`, and the audit event is
/// written once they are all read.
#[test]
fn a_change_refused_for_a_damaged_value_is_not_audited_as_done() {
    for stray in [false, true] {
        let ana = TestEnv::init();
        ana.add("a", b"1");
        ana.add("b", b"2");
        std::fs::write(ana.secret_file("b"), b"garbage").unwrap();
        if stray {
            // The whole-manifest path.
            std::fs::write(ana.store.join("secrets/zz.age.pending"), b"junk").unwrap();
        }
        let before = ana.snapshot();
        let bob = member().recipient();
        let out = ana
            .cmd()
            .args(["recipients", "add", &bob])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
        let log = std::fs::read_to_string(ana.store.join("audit.jsonl")).unwrap();
        let events: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("recipients-add"))
            .collect();
        assert_eq!(events.len(), 1, "stray {stray}: {events:?}");
        assert!(
            !events[0].contains("\"outcome\":\"ok\""),
            "stray {stray}: {events:?}"
        );
        if !stray {
            assert_eq!(ana.snapshot(), before);
        }
    }
}
