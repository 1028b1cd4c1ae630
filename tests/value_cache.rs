//! The local value cache (`<store>/cache/values`, issue 21): `exec` takes `age` values from
//! it when their files have not changed, every change to a credential or the recipients
//! makes exactly its records miss, and a cache that is damaged, foreign, unreadable or
//! unwritable is never trusted and never fails a command. `-v` says what the cache did
//! ("value cache: H of T age values from the cache"), which is how these tests see it.
//! Keychain and vault values never go in: tests/keychain.rs and tests/vault.rs.

use crate::common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{TestEnv, stderr_of, stdout_of};

fn cache_file(env: &TestEnv) -> PathBuf {
    env.store.join("cache/values")
}

/// `agentcred -v exec` of a program printing these variables as `A|B|...`.
fn exec(env: &TestEnv, vars: &[&str]) -> Output {
    let script = vars
        .iter()
        .map(|v| format!("${{{v}-unset}}"))
        .collect::<Vec<_>>()
        .join("|");
    let out = env
        .cmd()
        .args(["-v", "exec", "--", "sh", "-c"])
        .arg(format!("printf %s \"{script}\""))
        .output()
        .unwrap();
    assert!(out.status.success(), "exec: {}", stderr_of(&out));
    out
}

/// The values `exec` injects, and how many of them came from the cache (of how many).
fn exec_values(env: &TestEnv, vars: &[&str]) -> (String, (usize, usize), String) {
    let out = exec(env, vars);
    let stderr = stderr_of(&out);
    (stdout_of(&out), cache_counts(&stderr), stderr)
}

/// "agentcred: value cache: H of T age values from the cache..." -> (H, T).
fn cache_counts(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("agentcred: value cache: "))
        .unwrap_or_else(|| panic!("no value cache note in: {stderr}"));
    let mut words = line.split(' ');
    let hits = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("of"), "{line}");
    let total = words.next().unwrap().parse().unwrap();
    (hits, total)
}

fn store_with(values: &[(&str, &str)]) -> TestEnv {
    let env = TestEnv::init();
    for (name, value) in values {
        env.add(name, value.as_bytes());
    }
    env
}

fn run_ok(env: &TestEnv, args: &[&str], stdin: &str) -> Output {
    let out = env
        .cmd()
        .args(args)
        .write_stdin(stdin.as_bytes().to_vec())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    out
}

fn git(env: &TestEnv, args: &[&str]) -> String {
    let out = env
        .command("git")
        .args(["-c", "user.name=tester", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main", "-C"])
        .arg(&env.store)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr_of(&out));
    stdout_of(&out)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_second_exec_takes_every_value_from_a_private_cache_that_git_never_sees() {
    let env = store_with(&[("alpha-key", "value-a"), ("beta-key", "value-b")]);
    git(&env, &["init", "-q"]);
    let (values, counts, _) = exec_values(&env, &["ALPHA_KEY", "BETA_KEY"]);
    assert_eq!(values, "value-a|value-b");
    assert_eq!(counts, (0, 2), "nothing cached yet");
    let (values, counts, stderr) = exec_values(&env, &["ALPHA_KEY", "BETA_KEY"]);
    assert_eq!(values, "value-a|value-b");
    assert_eq!(counts, (2, 2), "{stderr}");
    assert!(
        stderr.contains("0 decrypted from secrets/"),
        "no file was decrypted: {stderr}"
    );

    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache_file(&env)), 0o600);
    assert_eq!(mode(&env.store.join("cache")), 0o700);
    let bytes = fs::read(cache_file(&env)).unwrap();
    assert!(!contains(&bytes, "value-a") && !contains(&bytes, "value-b"));
    // Nothing of cache/ is ever committed: neither `git add -A` nor git status sees it.
    git(&env, &["add", "-A"]);
    let tracked = git(&env, &["ls-files"]);
    assert!(tracked.contains("secrets/alpha-key.age"), "{tracked}");
    assert!(!tracked.contains("cache"), "{tracked}");
    // Even when the store's .gitignore lacks the line (a store made before it existed).
    let ignore = fs::read_to_string(env.store.join(".gitignore")).unwrap();
    fs::write(
        env.store.join(".gitignore"),
        ignore.replace("/cache/\n", ""),
    )
    .unwrap();
    git(&env, &["add", "-A"]);
    let tracked = git(&env, &["ls-files"]);
    assert!(!tracked.contains("cache"), "{tracked}");

    // `get` reads its one value from its file: one X25519 unwrap costs less than loading
    // every record. It neither uses nor writes the cache.
    let before = fs::read(cache_file(&env)).unwrap();
    let out = run_ok(&env, &["-v", "get", "beta-key"], "");
    assert_eq!(stdout_of(&out), "value-b");
    let stderr = stderr_of(&out);
    assert!(!stderr.contains("value cache"), "{stderr}");
    assert_eq!(fs::read(cache_file(&env)).unwrap(), before);
    fs::remove_file(cache_file(&env)).unwrap();
    assert_eq!(
        stdout_of(&run_ok(&env, &["get", "alpha-key"], "")),
        "value-a"
    );
    assert!(!cache_file(&env).exists(), "get does not write the cache");
}

#[test]
fn a_command_that_fails_after_reading_its_values_writes_no_cache() {
    let env = store_with(&[("token", "t0"), ("nul-token", "a\0b")]);
    // exec reads the values, then refuses --raw without --broker.
    let out = env
        .cmd()
        .args([
            "-v", "exec", "--only", "token", "--raw", "token", "--", "true",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("--raw goes with --broker"),
        "{}",
        stderr_of(&out)
    );
    assert!(!cache_file(&env).exists(), "a failed exec wrote the cache");
    // export reads every value, then refuses one a shell variable cannot hold.
    let out = env
        .cmd()
        .args(["export", "--format", "shell"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("NUL byte"), "{}", stderr_of(&out));
    assert!(
        !cache_file(&env).exists(),
        "a failed export wrote the cache"
    );
    // exec of every credential reads both, then refuses the NUL byte.
    let out = env.cmd().args(["exec", "--", "true"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("NUL byte"), "{}", stderr_of(&out));
    assert!(!cache_file(&env).exists(), "a failed exec wrote the cache");
    // The same commands succeeding do write it.
    let out = run_ok(&env, &["-v", "export", "--only", "token"], "");
    assert!(
        stderr_of(&out).contains("value cache: 0 of 1"),
        "{}",
        stderr_of(&out)
    );
    assert!(cache_file(&env).exists(), "a successful export writes it");
    let out = run_ok(&env, &["-v", "exec", "--only", "token", "--", "true"], "");
    assert_eq!(
        cache_counts(&stderr_of(&out)),
        (1, 1),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn rotate_add_rm_and_rename_invalidate_exactly_what_they_changed() {
    let env = store_with(&[("one", "v1"), ("two", "v2"), ("three", "v3")]);
    let vars = ["ONE", "TWO", "THREE", "FOUR", "UNO"];
    exec_values(&env, &vars);
    assert_eq!(exec_values(&env, &vars).1, (3, 3));

    run_ok(&env, &["rotate", "two"], "v2-rotated");
    let (values, counts, _) = exec_values(&env, &vars);
    assert_eq!(values, "v1|v2-rotated|v3|unset|unset");
    assert_eq!(counts, (2, 3), "only the rotated value is decrypted again");
    assert_eq!(exec_values(&env, &vars).1, (3, 3));

    run_ok(&env, &["add", "three", "--force"], "v3-replaced");
    run_ok(&env, &["add", "four"], "v4");
    let (values, counts, _) = exec_values(&env, &vars);
    assert_eq!(values, "v1|v2-rotated|v3-replaced|v4|unset");
    assert_eq!(counts, (2, 4));

    run_ok(&env, &["rm", "two", "--yes"], "");
    assert!(
        !contains(&fs::read(cache_file(&env)).unwrap(), "\x03two"),
        "rm drops its record at once"
    );
    // The same name again, another value: never the removed one's.
    run_ok(&env, &["add", "two"], "v2-new");
    let (values, counts, _) = exec_values(&env, &vars);
    assert_eq!(values, "v1|v2-new|v3-replaced|v4|unset");
    assert_eq!(counts, (3, 4));

    run_ok(&env, &["rename", "one", "uno", "--env", "UNO"], "");
    let (values, counts, _) = exec_values(&env, &vars);
    assert_eq!(values, "unset|v2-new|v3-replaced|v4|v1");
    assert_eq!(counts, (3, 4), "the renamed value is in a new file");
    let cached = fs::read(cache_file(&env)).unwrap();
    assert!(contains(&cached, "uno"));
    assert!(
        !cached.windows(4).any(|w| w == b"\x03one"),
        "the old name's record is gone"
    );
}

#[test]
fn a_recipients_change_removes_the_cache() {
    let env = store_with(&[("token", "t0")]);
    let other = TestEnv::init();
    exec_values(&env, &["TOKEN"]);
    assert!(cache_file(&env).exists());
    run_ok(&env, &["recipients", "add", &other.recipient()], "");
    assert!(!cache_file(&env).exists(), "recipients add removes it");
    let (values, counts, _) = exec_values(&env, &["TOKEN"]);
    assert_eq!((values.as_str(), counts), ("t0", (0, 1)));
    assert_eq!(exec_values(&env, &["TOKEN"]).1, (1, 1));
    run_ok(&env, &["recipients", "rm", &other.recipient(), "--yes"], "");
    assert!(!cache_file(&env).exists(), "recipients rm removes it");
    let (values, counts, _) = exec_values(&env, &["TOKEN"]);
    assert_eq!((values.as_str(), counts), ("t0", (0, 1)));
}

#[test]
fn a_git_rollback_gets_the_values_of_the_files_it_brought_back() {
    let env = store_with(&[("token", "old-value"), ("other", "same")]);
    git(&env, &["init", "-q"]);
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-q", "-m", "old"]);
    run_ok(&env, &["rotate", "token"], "new-value");
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-q", "-m", "new"]);
    let (values, _, _) = exec_values(&env, &["TOKEN", "OTHER"]);
    assert_eq!(values, "new-value|same");
    assert_eq!(exec_values(&env, &["TOKEN", "OTHER"]).1, (2, 2));

    git(
        &env,
        &["checkout", "HEAD~1", "--", "agentcred.toml", "secrets/"],
    );
    let out = run_ok(&env, &["-v", "get", "token"], "");
    assert_eq!(stdout_of(&out), "old-value");
    let stderr = stderr_of(&out);
    assert!(stderr.contains("older than generation"), "{stderr}");
    // exec refuses a rolled-back store until the rollback is accepted; then the file
    // the rollback brought back misses the cache (its record is of the newer file) and
    // the unchanged one still hits.
    run_ok(&env, &["doctor", "--trust", "--yes"], "");
    let (values, counts, stderr) = exec_values(&env, &["TOKEN", "OTHER"]);
    assert_eq!(values, "old-value|same");
    assert_eq!(counts, (1, 2), "{stderr}");
    assert!(stderr.contains("(1 changed since cached)"), "{stderr}");
    assert_eq!(exec_values(&env, &["TOKEN", "OTHER"]).1, (2, 2));
}

/// What `exec` says and injects with the cache file replaced by `bytes`.
fn exec_with_cache(env: &TestEnv, bytes: &[u8]) -> (String, (usize, usize), String) {
    fs::write(cache_file(env), bytes).unwrap();
    exec_values(env, &["TOKEN", "OTHER"])
}

/// The records of a cache file (the format in src/store/value_cache.rs): for each, where
/// it starts and where its nonce starts (after name, file hash and file stamp), and its end.
fn records(bytes: &[u8]) -> Vec<(usize, usize, usize)> {
    let header = b"agentcred-value-cache/v1\n".len() + 16 + 8;
    let count = u32::from_le_bytes(bytes[header..header + 4].try_into().unwrap());
    let mut at = header + 4;
    let mut found = Vec::new();
    for _ in 0..count {
        let start = at;
        let nonce = at + 1 + bytes[at] as usize + 32 + 48;
        let len_at = nonce + 24;
        let sealed = u32::from_le_bytes(bytes[len_at..len_at + 4].try_into().unwrap()) as usize;
        at = len_at + 4 + sealed;
        found.push((start, nonce, at));
    }
    assert_eq!(at, bytes.len());
    found
}

#[test]
fn a_damaged_or_foreign_cache_is_never_trusted() {
    // Values of one length, so that records of the two stores have the same layout.
    let mine = store_with(&[("token", "mine-token"), ("other", "mine-other")]);
    let theirs = store_with(&[("token", "them-token"), ("other", "them-other")]);
    exec_values(&mine, &["TOKEN", "OTHER"]);
    exec_values(&theirs, &["TOKEN", "OTHER"]);
    let good = fs::read(cache_file(&mine)).unwrap();
    let foreign = fs::read(cache_file(&theirs)).unwrap();
    let expect = "mine-token|mine-other";

    // Another store's cache: refused by its header.
    let (values, counts, stderr) = exec_with_cache(&mine, &foreign);
    assert_eq!(values, expect);
    assert_eq!(counts, (0, 2));
    assert!(stderr.contains("written for another store"), "{stderr}");
    assert_eq!(
        exec_values(&mine, &["TOKEN", "OTHER"]).1,
        (2, 2),
        "rewritten"
    );

    // This store's header, names, file hashes and stamps around the other store's sealed
    // values (another store key): no value opens.
    let (ours, other) = (records(&good), records(&foreign));
    let mut grafted = good.clone();
    for ((_, nonce, end), (_, their_nonce, their_end)) in ours.iter().zip(&other) {
        grafted[*nonce..*end].copy_from_slice(&foreign[*their_nonce..*their_end]);
    }
    let (values, counts, stderr) = exec_with_cache(&mine, &grafted);
    assert_eq!(values, expect);
    assert_eq!(counts, (0, 2));
    assert!(stderr.contains("2 of its values did not open"), "{stderr}");

    // One flipped bit in the last sealed value: that value comes from its file.
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let (values, counts, stderr) = exec_with_cache(&mine, &flipped);
    assert_eq!(values, expect);
    assert_eq!(counts, (1, 2));
    assert!(stderr.contains("1 of its values did not open"), "{stderr}");

    // The two records' sealed values swapped (each keeps its name, hash and stamp):
    // neither opens as the other.
    let (first, second) = (ours[0], ours[1]);
    let mut swapped = good.clone();
    swapped[first.1..first.2].copy_from_slice(&good[second.1..second.2]);
    swapped[second.1..second.2].copy_from_slice(&good[first.1..first.2]);
    let (values, counts, stderr) = exec_with_cache(&mine, &swapped);
    assert_eq!(values, expect);
    assert_eq!(counts, (0, 2));
    assert!(stderr.contains("2 of its values did not open"), "{stderr}");

    for (what, bytes) in [
        ("truncated", good[..good.len() - 7].to_vec()),
        ("empty", Vec::new()),
        ("garbage", b"not a cache at all\n".repeat(40)),
    ] {
        let (values, counts, stderr) = exec_with_cache(&mine, &bytes);
        assert_eq!(values, expect, "{what}");
        assert_eq!(counts, (0, 2), "{what}");
        assert!(stderr.contains("it is damaged"), "{what}: {stderr}");
    }
    assert_eq!(exec_values(&mine, &["TOKEN", "OTHER"]).1, (2, 2));
}

#[test]
fn a_cache_that_cannot_be_read_or_written_never_fails_a_command() {
    let env = store_with(&[("token", "t0"), ("other", "o0")]);
    // cache/ is a file: nothing can be read from it or written to it, even by root.
    fs::write(env.store.join("cache"), b"in the way").unwrap();
    for _ in 0..2 {
        let (values, counts, stderr) = exec_values(&env, &["TOKEN", "OTHER"]);
        assert_eq!(values, "t0|o0");
        assert_eq!(counts, (0, 2));
        assert!(stderr.contains("value cache not written"), "{stderr}");
    }
    let out = run_ok(&env, &["get", "token"], "");
    assert_eq!(stdout_of(&out), "t0");
    assert_eq!(stderr_of(&out), "", "only -v speaks of the cache");
    run_ok(&env, &["rotate", "token"], "t1");
    assert_eq!(exec_values(&env, &["TOKEN"]).0, "t1");

    // cache/ is a symlink to a directory elsewhere: not followed, nothing written there.
    fs::remove_file(env.store.join("cache")).unwrap();
    let elsewhere = env.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.store.join("cache")).unwrap();
    let (values, _, stderr) = exec_values(&env, &["TOKEN"]);
    assert_eq!(values, "t1");
    assert!(stderr.contains("value cache not written"), "{stderr}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn lock_removes_the_cache() {
    let env = store_with(&[("token", "t0")]);
    exec_values(&env, &["TOKEN"]);
    assert!(cache_file(&env).exists());
    let out = run_ok(&env, &["lock"], "");
    assert!(
        stderr_of(&out).contains("removed the value cache of"),
        "{}",
        stderr_of(&out)
    );
    assert!(!cache_file(&env).exists());
    let (values, counts, _) = exec_values(&env, &["TOKEN"]);
    assert_eq!((values.as_str(), counts), ("t0", (0, 1)));
}
