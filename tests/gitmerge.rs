//! Teams in git (CONTRACT section 13): two members, each with a HOME and an identity of
//! their own and both recipients of one store, work in two clones and merge with real git.
//! The merge driver is the real binary, run by git as `init` / `git-setup` registered it.

use crate::common;

use std::path::Path;
use std::process::{Command as StdCommand, Output};

use common::{TestEnv, stderr_of, stdout_of};

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

fn git_out(env: &TestEnv, dir: &Path, args: &[&str]) -> Output {
    env.command("git")
        .args(["-c", "user.name=tester", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "pull.rebase=false",
            "-C",
        ])
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let out = git_out(env, dir, args);
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

/// `git pull` of the other member's main branch.
fn pull(env: &TestEnv, from: &TestEnv) -> Output {
    git_out(
        env,
        &env.store,
        &["pull", "--no-edit", from.store.to_str().unwrap(), "main"],
    )
}

fn ok(env: &TestEnv, args: &[&str]) -> (String, String) {
    let out = env.cmd().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    (stdout_of(&out), stderr_of(&out))
}

/// Ana makes a store in a git repo (init registers the driver), adds Bob, and Bob clones
/// it and runs `git-setup`.
fn team() -> (TestEnv, TestEnv) {
    let ana = member();
    git(&ana, ana.dir.path(), &["init", "-q", "store"]);
    let (out, _) = ok(&ana, &["init"]);
    assert!(
        out.contains("registered the agentcred merge driver"),
        "{out}"
    );
    let attributes = std::fs::read_to_string(ana.store.join(".gitattributes")).unwrap();
    assert!(
        attributes.contains("agentcred.toml merge=agentcred"),
        "{attributes}"
    );
    ana.add("shared", b"shared-v1");
    let bob = member();
    ok(&ana, &["recipients", "add", &bob.recipient()]);
    commit(&ana, "a store for ana and bob");
    git(
        &bob,
        bob.dir.path(),
        &["clone", "-q", ana.store.to_str().unwrap(), "store"],
    );
    // Git does not take the driver from the repository: Bob's clone has none yet.
    let config = git_out(&bob, &bob.store, &["config", "merge.agentcred.driver"]);
    assert!(!config.status.success());
    let (out, _) = ok(&bob, &["git-setup"]);
    assert!(
        out.contains("Registered the agentcred merge driver"),
        "{out}"
    );
    let driver = git(&bob, &bob.store, &["config", "merge.agentcred.driver"]);
    assert!(driver.contains("merge-driver %O %A %B %P"), "{driver}");
    assert_eq!(bob.get("shared"), b"shared-v1");
    (ana, bob)
}

/// The store is healthy, verified, and without rollback warnings for this member.
fn healthy(env: &TestEnv) {
    let (out, err) = ok(env, &["list"]);
    assert!(out.contains("shared"), "{out}");
    assert!(!err.contains("warning"), "{err}");
    let (_, err) = ok(env, &["doctor"]);
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn different_credentials_added_on_two_branches_merge_clean_and_sealed() {
    let (ana, bob) = team();
    ana.add("alpha", b"alpha-value");
    commit(&ana, "alpha");
    bob.add("beta", b"beta-value");
    commit(&bob, "beta");

    let out = pull(&bob, &ana);
    assert!(
        out.status.success(),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("agentcred: merged agentcred.toml, sealed at generation"),
        "{}",
        stderr_of(&out)
    );
    healthy(&bob);
    let (listed, _) = ok(&bob, &["list"]);
    assert!(
        listed.contains("alpha") && listed.contains("beta"),
        "{listed}"
    );
    assert_eq!(bob.get("alpha"), b"alpha-value");
    assert_eq!(bob.get("beta"), b"beta-value");
    // The merged manifest is sealed above both sides.
    let text = std::fs::read_to_string(bob.manifest_path()).unwrap();
    assert!(text.contains("generation = "), "{text}");
    assert!(!text.contains("<<<<<<<"), "{text}");

    // Ana takes Bob's merge (a fast-forward) and reads both, without warnings.
    let out = pull(&ana, &bob);
    assert!(out.status.success(), "{}", stderr_of(&out));
    healthy(&ana);
    assert_eq!(ana.get("beta"), b"beta-value");
    assert_eq!(ana.get("alpha"), b"alpha-value");
}

#[test]
fn an_agent_granted_on_one_side_and_a_credential_added_on_the_other_both_land() {
    let (ana, bob) = team();
    ok(&ana, &["agent", "add", "ci", "--allow", "shared"]);
    commit(&ana, "agent ci");
    bob.add("gamma", b"gamma-value");
    commit(&bob, "gamma");
    let out = pull(&bob, &ana);
    assert!(
        out.status.success(),
        "{}{}",
        stdout_of(&out),
        stderr_of(&out)
    );
    healthy(&bob);
    let (listed, _) = ok(&bob, &["list", "--agent", "ci"]);
    assert!(listed.contains("shared"), "{listed}");
    assert!(!listed.contains("gamma"), "{listed}");
    assert_eq!(bob.get("gamma"), b"gamma-value");
    // The agent's grant works through exec.
    let (out, _) = ok(
        &bob,
        &[
            "exec",
            "--agent",
            "ci",
            "--",
            "sh",
            "-c",
            "printf %s \"$SHARED\"",
        ],
    );
    assert_eq!(out, "shared-v1");
}

#[test]
fn the_same_credential_rotated_on_both_sides_conflicts_until_resolved() {
    let (ana, bob) = team();
    bob.add("beta", b"beta-value");
    commit(&bob, "beta");
    ana.cmd()
        .args(["rotate", "shared"])
        .write_stdin(b"shared-ana".to_vec())
        .assert()
        .success();
    commit(&ana, "ana rotates shared");
    bob.cmd()
        .args(["rotate", "shared"])
        .write_stdin(b"shared-bob".to_vec())
        .assert()
        .success();
    commit(&bob, "bob rotates shared");

    let out = pull(&bob, &ana);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("agentcred: CONFLICT in credential shared: changed differently on both sides (its value was changed on both sides)"),
        "{err}"
    );

    // Every command refuses the half-merged store, naming the conflict and the fix.
    let out = bob.cmd().args(["list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("unresolved conflict on credential shared"),
        "{err}"
    );
    assert!(
        err.contains("hint: choose a side for each with `agentcred resolve NAME --ours`"),
        "{err}"
    );
    let out = bob.cmd().args(["get", "beta"]).output().unwrap();
    assert_eq!(out.status.code(), Some(6));

    // A name not in conflict is refused.
    let out = bob
        .cmd()
        .args(["resolve", "beta", "--ours"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("conflicts are: credential shared"));

    let (out, _) = ok(&bob, &["resolve", "shared", "--theirs"]);
    assert!(
        out.contains("Resolved credential shared with theirs"),
        "{out}"
    );
    assert!(out.contains("Put back secrets/shared.age"), "{out}");
    assert!(out.contains("run `git commit`"), "{out}");
    git(&bob, &bob.store, &["commit", "-q", "--no-edit"]);
    healthy(&bob);
    assert_eq!(bob.get("shared"), b"shared-ana");
    assert_eq!(bob.get("beta"), b"beta-value");

    // Ana takes the result and reads the same.
    let out = pull(&ana, &bob);
    assert!(out.status.success(), "{}", stderr_of(&out));
    healthy(&ana);
    assert_eq!(ana.get("shared"), b"shared-ana");
    assert_eq!(ana.get("beta"), b"beta-value");
}

#[test]
fn keeping_ours_puts_our_file_back() {
    let (ana, bob) = team();
    ana.cmd()
        .args(["rotate", "shared"])
        .write_stdin(b"shared-ana".to_vec())
        .assert()
        .success();
    commit(&ana, "ana rotates shared");
    bob.cmd()
        .args(["rotate", "shared"])
        .write_stdin(b"shared-bob".to_vec())
        .assert()
        .success();
    commit(&bob, "bob rotates shared");
    assert!(!pull(&bob, &ana).status.success());
    ok(&bob, &["resolve", "shared", "--ours"]);
    git(&bob, &bob.store, &["commit", "-q", "--no-edit"]);
    healthy(&bob);
    assert_eq!(bob.get("shared"), b"shared-bob");
}

#[test]
fn a_side_edited_by_someone_who_is_not_a_recipient_is_refused() {
    let (ana, bob) = team();
    // Mallory cannot write through agentcred, so she edits the manifest by hand.
    let text = std::fs::read_to_string(ana.manifest_path()).unwrap();
    let edited = text.replacen("env = \"SHARED\"", "env = \"SHARED_X\"", 1);
    assert_ne!(edited, text);
    std::fs::write(ana.manifest_path(), edited).unwrap();
    commit(&ana, "mallory's edit");
    bob.add("beta", b"beta-value");
    commit(&bob, "beta");
    let before = std::fs::read(bob.manifest_path()).unwrap();

    let out = pull(&bob, &ana);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("agentcred did not merge agentcred.toml: integrity check failed: agentcred.toml of theirs:"),
        "{err}"
    );
    assert!(
        err.contains("credential shared was changed outside agentcred"),
        "{err}"
    );
    assert!(err.contains("not a recipient"), "{err}");
    // Ours is left as it was; aborting the merge gives a working store back.
    assert_eq!(std::fs::read(bob.manifest_path()).unwrap(), before);
    git(&bob, &bob.store, &["merge", "--abort"]);
    healthy(&bob);
    assert_eq!(bob.get("beta"), b"beta-value");
}

#[test]
fn recipients_added_on_both_sides_stop_the_merge_with_a_reason() {
    let (ana, bob) = team();
    let carol = member();
    let dave = member();
    ok(&ana, &["recipients", "add", &carol.recipient()]);
    commit(&ana, "carol");
    ok(&bob, &["recipients", "add", &dave.recipient()]);
    commit(&bob, "dave");
    let out = pull(&bob, &ana);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("both sides changed the store's recipients; agentcred does not merge two recipients changes"),
        "{err}"
    );
    git(&bob, &bob.store, &["merge", "--abort"]);
    healthy(&bob);
}

#[test]
fn a_value_written_to_the_old_recipients_is_refused_after_a_recipients_change() {
    // One side adds a recipient while the other adds a value to the old recipients: the
    // new recipient could not read it, so the merge stops and says so.
    let (ana, bob) = team();
    let carol = member();
    ok(&ana, &["recipients", "add", &carol.recipient()]);
    commit(&ana, "carol");
    bob.add("beta", b"beta-value");
    commit(&bob, "beta");
    let out = pull(&bob, &ana);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("theirs changed the store's recipients while ours wrote credential beta to the old recipients: a listed recipient could not read it"),
        "{err}"
    );
    git(&bob, &bob.store, &["merge", "--abort"]);
    assert_eq!(bob.get("beta"), b"beta-value");
}

#[test]
fn a_recipients_change_merges_with_agent_changes_and_the_new_member_reads() {
    let (ana, bob) = team();
    let carol = member();
    ok(&ana, &["recipients", "add", &carol.recipient()]);
    commit(&ana, "carol");
    ok(&bob, &["agent", "add", "ci", "--allow", "shared"]);
    commit(&bob, "agent ci");
    let out = pull(&bob, &ana);
    assert!(out.status.success(), "{}", stderr_of(&out));
    healthy(&bob);
    let (listed, _) = ok(&bob, &["list", "--agent", "ci"]);
    assert!(listed.contains("shared"), "{listed}");
    let out = carol
        .cmd()
        .env("AGENTCRED_STORE", &bob.store)
        .args(["get", "shared"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"shared-v1");
}

#[test]
fn the_driver_never_prompts_and_refuses_without_an_identity() {
    let (_ana, bob) = team();
    let dir = bob.dir.path();
    let manifest = bob.manifest_path();
    // Run by hand the way git would, from the top of the work tree, with no identity.
    let nobody = TestEnv::new();
    std::fs::copy(&manifest, dir.join("ours.toml")).unwrap();
    let out = nobody
        .cmd()
        .current_dir(&bob.store)
        .args(["merge-driver"])
        .args([&manifest, &dir.join("ours.toml"), &manifest])
        .arg("agentcred.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.starts_with(
            "error: agentcred cannot merge agentcred.toml without unlocking your identity"
        ),
        "{err}"
    );

    // An identity that is not a recipient (a CI runner without access) is refused too.
    let outsider = member();
    std::fs::copy(&manifest, dir.join("ours.toml")).unwrap();
    let out = outsider
        .cmd()
        .current_dir(&bob.store)
        .args(["merge-driver"])
        .args([&manifest, &dir.join("ours.toml"), &manifest])
        .arg("agentcred.toml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("this store is not encrypted to your identity"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        std::fs::read(dir.join("ours.toml")).unwrap(),
        std::fs::read(&manifest).unwrap(),
        "nothing written"
    );
}

#[test]
fn git_setup_outside_a_work_tree_says_so_and_init_there_registers_nothing() {
    let env = member();
    let (out, _) = ok(&env, &["init"]);
    assert!(!out.contains("merge driver"), "{out}");
    assert!(!env.store.join(".gitattributes").exists());
    let out = env.cmd().arg("git-setup").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("is not in a git work tree"),
        "{}",
        stderr_of(&out)
    );
    // Run twice in a work tree, it writes each attribute once and keeps other lines.
    git(&env, &env.store, &["init", "-q"]);
    std::fs::write(env.store.join(".gitattributes"), "*.md text\n").unwrap();
    ok(&env, &["git-setup"]);
    ok(&env, &["git-setup"]);
    let text = std::fs::read_to_string(env.store.join(".gitattributes")).unwrap();
    assert!(text.starts_with("*.md text\n"), "{text}");
    assert_eq!(
        text.matches("agentcred.toml merge=agentcred").count(),
        1,
        "{text}"
    );
    assert_eq!(
        text.matches("secrets/*.age merge=binary").count(),
        1,
        "{text}"
    );
}
