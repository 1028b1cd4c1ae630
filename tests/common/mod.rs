//! Shared test helper: a temp HOME and store, and the real `agentcred` binary run in them
//! with a clean environment (no identity, no XDG overrides, CI set so nothing prompts).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

pub struct TestEnv {
    pub dir: TempDir,
    pub home: PathBuf,
    pub store: PathBuf,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        fs::create_dir(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
        let store = dir.path().join("store");
        TestEnv { dir, home, store }
    }

    /// A store created with `init` and a plain identity file.
    pub fn init() -> Self {
        let env = Self::new();
        env.cmd().arg("init").assert().success();
        env
    }

    pub fn bin() -> PathBuf {
        assert_cmd::cargo::cargo_bin!("agentcred").to_path_buf()
    }

    /// `agentcred` with this env's HOME and store, stdin empty.
    pub fn cmd(&self) -> Command {
        self.command(Self::bin())
    }

    /// Any program with the environment of [`TestEnv::cmd`].
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("USER", "tester")
            .env("LANG", "C.UTF-8")
            .env("CI", "true")
            .env("AGENTCRED_STORE", &self.store)
            .current_dir(self.dir.path())
            .timeout(std::time::Duration::from_secs(60))
            .write_stdin(Vec::new());
        cmd
    }

    /// The same as [`cmd`](Self::cmd) as a plain `std::process::Command`, for tests that
    /// signal the process or read its output while it runs. Stdin is not set.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(Self::bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("USER", "tester")
            .env("LANG", "C.UTF-8")
            .env("CI", "true")
            .env("AGENTCRED_STORE", &self.store)
            .current_dir(self.dir.path());
        cmd
    }

    pub fn identity_path(&self) -> PathBuf {
        self.home.join(".config/agentcred/identity.txt")
    }

    pub fn identity_text(&self) -> String {
        fs::read_to_string(self.identity_path()).unwrap()
    }

    pub fn recipient(&self) -> String {
        let out = self.cmd().args(["identity", "--public"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn add(&self, name: &str, value: &[u8]) {
        self.cmd()
            .args(["add", name])
            .write_stdin(value.to_vec())
            .assert()
            .success();
    }

    pub fn get(&self, name: &str) -> Vec<u8> {
        let out = self.cmd().args(["get", name]).output().unwrap();
        assert!(
            out.status.success(),
            "get {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn secret_file(&self, name: &str) -> PathBuf {
        self.store.join("secrets").join(format!("{name}.age"))
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.store.join("agentcred.toml")
    }

    /// Every file in the store (but the lock file and the audit log) with its bytes and
    /// mode. The audit log is left out on purpose: it is machine-local, not part of the
    /// committed store, and a failed or denied secret access *is* recorded there (that is
    /// what an audit log is for); tests/audit.rs checks it.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
        let mut files = BTreeMap::new();
        walk(&self.store, &mut files);
        files
    }
}

fn walk(dir: &Path, files: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(&path, files);
        } else if path
            .file_name()
            .is_some_and(|n| n != ".lock" && n != "audit.jsonl")
        {
            files.insert(
                path.clone(),
                (
                    fs::read(&path).unwrap_or_default(),
                    meta.permissions().mode(),
                ),
            );
        }
    }
}

pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// This process's account name (`id -un`): what agentcred records as the user, whatever
/// `$USER` says.
pub fn account() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Files a writer killed mid-write leaves in a store: a staged `NAME.age.pending` or an
/// unfinished `.tmp-*` file, in `secrets/` or next to the manifest, each with its inode
/// and modification time. One that was not there before a writer started proves that its
/// kill landed after the write began (see [`new_leftovers`]).
pub fn mid_write_leftovers(store: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    for dir in [store.to_path_buf(), store.join("secrets")] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if (name.starts_with(".tmp-") || name.ends_with(".age.pending"))
                && let Ok(meta) = entry.metadata()
                && let Ok(modified) = meta.modified()
            {
                found.push((name, meta.ino(), modified));
            }
        }
    }
    found
}

/// Whether `after` holds a leftover file that `before` did not (a new one, or one written
/// again): the writer that ran in between was killed mid-write.
pub fn new_leftovers(
    before: &[(String, u64, std::time::SystemTime)],
    after: &[(String, u64, std::time::SystemTime)],
) -> bool {
    after.iter().any(|file| !before.contains(file))
}

/// When to kill the next writer, steered towards its write: later after a kill that came
/// before the write began (nothing changed, nothing left behind), earlier after one that
/// came when the write was already done.
pub struct KillTimer {
    pub micros: u64,
}

impl KillTimer {
    pub fn new(micros: u64) -> Self {
        KillTimer { micros }
    }

    pub fn wait(&self) {
        std::thread::sleep(std::time::Duration::from_micros(self.micros));
    }

    /// Steer after a round: `completed` the write finished, `mid_write` it was cut short.
    pub fn steer(&mut self, completed: bool, mid_write: bool) {
        if mid_write {
            return;
        }
        if completed {
            self.micros = self.micros * 3 / 4;
        } else {
            self.micros = self.micros * 5 / 4 + 200;
        }
        self.micros = self.micros.min(2_000_000);
    }
}
