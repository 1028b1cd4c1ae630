//! `exec --sandbox` (CONTRACT section 11), proved from inside the sandboxed program: each
//! test runs a shell script there that tries what an agent turned against its user would
//! try, and prints what happened.
//!
//! Run as root, many of these checks would pass or fail for the wrong reason (root reads
//! any file, and owns the keyring), so every command runs as an unprivileged user: as root
//! (CI) the tests create one with `useradd` and switch to it with `setpriv`; run by anyone
//! else they already are one. The tree the user needs (a copy of the agentcred binary,
//! HOME, the working directory) lives under /var/tmp, not /tmp: these tests check that
//! the program can write to /tmp, which must then not be on the way to a protected path.
//!
//! `scripts/test` installs keyutils (keyctl), util-linux (setpriv, unshare), python3 and
//! gnome-keyring.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::TestEnv;

const USER: &str = "agentcred-sbx";
const PASS: &str = "correct horse battery staple";
const ALLOWED: &str = "sk-allowed-0123456789";
const OTHER: &str = "sk-other-9876543210";

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

/// The unprivileged user the tests run as: created when root, else the current user.
fn user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<u32>().ok())
    };
    if id("-u").is_none() {
        // Several tests may race to create it; the loser's failure is fine if it exists.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status();
    }
    Some((
        id("-u").expect("useradd made the test user"),
        id("-g").expect("the test user's group"),
    ))
}

/// A HOME, working directory and agentcred binary that the unprivileged user owns.
struct Sandboxed {
    base: tempfile::TempDir,
    home: PathBuf,
    work: PathBuf,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
}

impl Sandboxed {
    fn new() -> Self {
        let base = tempfile::Builder::new()
            .prefix("agentcred-sandbox-")
            .tempdir_in("/var/tmp")
            .expect("temp dir in /var/tmp");
        let root = base.path();
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
        let (home, work, bin) = (root.join("home"), root.join("work"), root.join("bin"));
        for dir in [&home, &work, &bin, &root.join("keys")] {
            fs::create_dir(dir).unwrap();
        }
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        // A hard link, not a copy: a copy's open write descriptor, inherited by a child
        // another test thread forks meanwhile, makes exec of it fail with "Text file busy".
        if fs::hard_link(TestEnv::bin(), bin.join("agentcred")).is_err() {
            fs::copy(TestEnv::bin(), bin.join("agentcred")).unwrap();
        }
        let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/keyring-session");
        fs::copy(support, bin.join("keyring-session")).unwrap();
        for file in ["agentcred", "keyring-session"] {
            fs::set_permissions(bin.join(file), fs::Permissions::from_mode(0o755)).unwrap();
        }
        let owner = user();
        if let Some((uid, gid)) = owner {
            for dir in [&home, &work, &root.join("keys")] {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
            }
        }
        Sandboxed {
            base,
            home,
            work,
            bin,
            owner,
        }
    }

    fn store(&self) -> PathBuf {
        self.home.join(".local/share/agentcred")
    }

    /// `program args` as the unprivileged user, in `work`, with a clean environment.
    fn run(&self, vars: &[(&str, &OsStr)], program: &str, args: &[&str]) -> Output {
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            self.bin.display()
        );
        let mut env: Vec<(String, std::ffi::OsString)> = vec![
            ("PATH".into(), path.into()),
            ("HOME".into(), self.home.clone().into()),
            ("USER".into(), USER.into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("CI".into(), "true".into()),
        ];
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_os_string())));
        let mut cmd = match self.owner {
            Some((uid, gid)) => {
                let mut cmd = Command::new("setpriv");
                cmd.args([
                    format!("--reuid={uid}"),
                    format!("--regid={gid}"),
                    "--clear-groups".into(),
                    "--".into(),
                ]);
                cmd.arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .env_clear()
            .envs(env)
            .current_dir(&self.work)
            .stdin(std::process::Stdio::null());
        cmd.output().expect("run as the test user")
    }

    fn agentcred(&self, vars: &[(&str, &OsStr)], args: &[&str]) -> Output {
        self.run(vars, "agentcred", args)
    }

    /// A store with a passphrase identity and two credentials.
    fn store_with_two(&self) {
        let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
        ok(&self.agentcred(pass, &["init", "--passphrase", "--identity", "file"]));
        for (name, value) in [("allowed", ALLOWED), ("other", OTHER)] {
            let script = format!("printf %s '{value}' | agentcred add {name}");
            ok(&self.run(pass, "sh", &["-c", &script]));
        }
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The shell function the scripts below use: `check NAME CMD...` prints `NAME: allowed`
/// or `NAME: denied: <its error>`.
const CHECK: &str = r#"check() { name=$1; shift; if out=$("$@" 2>&1 </dev/null); then echo "$name: allowed"; else echo "$name: denied: $(echo $out)"; fi; }
"#;

/// The line a script printed for a check.
fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
}

fn denied(stdout: &str, name: &str, why: &str) {
    let line = line(stdout, name);
    assert!(
        line.starts_with(&format!("{name}: denied")) && line.contains(why),
        "{name} should be denied ({why}):\n{stdout}"
    );
}

fn allowed(stdout: &str, name: &str) {
    assert_eq!(line(stdout, name), format!("{name}: allowed"), "\n{stdout}");
}

#[test]
fn the_program_cannot_read_the_store_or_identity_nor_use_the_unlock_cache() {
    let s = Sandboxed::new();
    s.store_with_two();
    let identity = s.home.join(".config/agentcred/identity.txt");
    // A second identity file, named by AGENTCRED_IDENTITY_FILE when exec runs, and a
    // project directory in HOME made before.
    let other_identity = s.base.path().join("keys/id.txt");
    let script = format!(
        "cp {id} {other} && chmod 600 {other} && mkdir $HOME/project",
        id = identity.display(),
        other = other_identity.display()
    );
    ok(&s.run(&[], "sh", &["-c", &script]));
    // The unlock cache holds the identity, in the keyring all of this user's processes see.
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    ok(&s.agentcred(pass, &["unlock", "--for", "1h"]));
    let outside = ok(&s.run(&[], "keyctl", &["show", "@s"]));
    assert!(outside.contains("agentcred:identity:"), "{outside}");

    let script = format!(
        r#"{CHECK}
check identity cat {identity}
check identity_env cat {other}
check manifest cat {store}/agentcred.toml
check secret cat {store}/secrets/other.age
check write_store sh -c 'echo x > {store}/planted'
check keyring keyctl show @s
check user_keyring keyctl show @u
check get agentcred get other
check get_unmarked env -u AGENTCRED_SANDBOXED agentcred get other
check export agentcred export
check cwd_write sh -c 'echo hi > new.txt && cat new.txt'
check cwd_later sh -c 'mkdir -p later/deeper && echo x > later/deeper/f && cat later/deeper/f'
check tmp_write sh -c 'f=$(mktemp /tmp/agentcred-sbx.XXXXXX) && echo y > "$f" && cat "$f" && rm "$f"'
check home_sibling sh -c 'mkdir -p "$HOME/project/src" && echo z > "$HOME/project/src/f" && cat "$HOME/project/src/f"'
check home_new_entry touch "$HOME/.new-dotfile"
check list_home ls -a "$HOME"
echo "value: $ALLOWED"
echo "marker: $AGENTCRED_SANDBOXED"
"#,
        identity = identity.display(),
        other = other_identity.display(),
        store = s.store().display(),
    );
    let id_file = other_identity.clone().into_os_string();
    let vars: &[(&str, &OsStr)] = &[("AGENTCRED_IDENTITY_FILE", &id_file)];
    let out = s.agentcred(
        vars,
        &[
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let stdout = ok(&out);
    denied(&stdout, "identity", "Permission denied");
    denied(&stdout, "identity_env", "Permission denied");
    denied(&stdout, "manifest", "Permission denied");
    denied(&stdout, "secret", "Permission denied");
    denied(&stdout, "write_store", "Permission denied");
    denied(&stdout, "keyring", "Operation not permitted");
    denied(&stdout, "user_keyring", "Operation not permitted");
    assert!(!stdout.contains("agentcred:identity:"), "{stdout}");
    denied(
        &stdout,
        "get",
        "error: agentcred get cannot run inside a sandboxed agent",
    );
    // Without the marker variable the kernel still says no.
    denied(&stdout, "get_unmarked", "error:");
    denied(&stdout, "export", "inside a sandboxed agent");
    assert!(!stdout.contains(OTHER), "{stdout}");
    allowed(&stdout, "cwd_write");
    allowed(&stdout, "cwd_later");
    allowed(&stdout, "tmp_write");
    allowed(&stdout, "home_sibling");
    allowed(&stdout, "list_home");
    // HOME is on the way to ~/.config/agentcred, which the mount namespace covers: new
    // entries in it work.
    allowed(&stdout, "home_new_entry");
    assert!(stdout.contains(&format!("value: {ALLOWED}\n")), "{stdout}");
    assert!(stdout.contains("marker: 1\n"), "{stdout}");
    assert!(!s.store().join("planted").exists());

    // `get` inside ends with exit 5.
    let out = s.agentcred(
        &[],
        &[
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "agentcred",
            "get",
            "other",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sandboxed agent"));
    assert!(out.stdout.is_empty());
}

#[test]
fn spawn_mode_keeps_agentcreds_memory_and_environment_out_of_reach() {
    let s = Sandboxed::new();
    s.store_with_two();
    // --mask runs the program as a child of a living agentcred (as --broker does).
    let script = format!(
        r#"{CHECK}
echo "parent: $(cat /proc/$PPID/comm)"
check mem head -c 1 /proc/$PPID/mem
check environ cat /proc/$PPID/environ
check maps cat /proc/$PPID/maps
check ptrace_signal kill -0 $PPID
check identity cat {identity}
[ "$ALLOWED" = {ALLOWED} ] && echo "value: arrived"
"#,
        identity = s.home.join(".config/agentcred/identity.txt").display()
    );
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let out = s.agentcred(
        pass,
        &[
            "exec",
            "--sandbox",
            "--mask",
            "--only",
            "allowed",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let stdout = ok(&out);
    assert!(stdout.contains("parent: agentcred\n"), "{stdout}");
    denied(&stdout, "mem", "Permission denied");
    denied(&stdout, "environ", "Permission denied");
    denied(&stdout, "maps", "Permission denied");
    denied(&stdout, "ptrace_signal", "not permitted");
    denied(&stdout, "identity", "Permission denied");
    assert!(stdout.contains("value: arrived\n"), "{stdout}");
}

/// The identity in a real gnome-keyring on a private bus; the bus on a path-named socket
/// (covered in a mount namespace) or an abstract one (Landlock's scope).
#[test]
fn the_program_cannot_ask_the_keychain_for_the_identity() {
    for listen in [None, Some("unix:abstract=/tmp/agentcred-sbx-bus")] {
        let s = Sandboxed::new();
        let mut vars: Vec<(&str, &OsStr)> = Vec::new();
        let path_bus;
        match listen {
            Some(address) => vars.push(("KEYRING_SESSION_LISTEN", OsStr::new(address))),
            None => {
                path_bus = format!("unix:path={}/bus", s.work.display());
                vars.push(("KEYRING_SESSION_LISTEN", OsStr::new(&path_bus)));
            }
        }
        let script = format!(
            r#"{CHECK}
set -e
agentcred init --identity keychain >/dev/null 2>&1
check outside secret-tool lookup service agentcred username identity
agentcred exec --sandbox -- sh -c '{CHECK}
check inside secret-tool lookup service agentcred username identity
check get agentcred get x
echo "bus: $DBUS_SESSION_BUS_ADDRESS"'
"#
        );
        let out = s.run(&vars, "keyring-session", &["unlocked", "sh", "-c", &script]);
        let stdout = ok(&out);
        allowed(&stdout, "outside");
        denied(&stdout, "inside", "Could not connect");
        denied(&stdout, "get", "sandboxed agent");
        let bus = line(&stdout, "bus");
        match listen {
            Some(_) => assert!(bus.contains("abstract="), "{stdout}"),
            None => assert!(bus.contains("path="), "{stdout}"),
        }
    }
}

#[test]
fn sandbox_refuses_rather_than_degrades() {
    let s = Sandboxed::new();
    s.store_with_two();
    let marker = s.work.join("ran");
    let script = format!("touch {}", marker.display());
    let force: &[(&str, &OsStr)] = &[
        ("AGENTCRED_SANDBOX_FORCE_UNSUPPORTED", OsStr::new("1")),
        ("AGENTCRED_PASSPHRASE", OsStr::new(PASS)),
    ];
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    for extra in [&[][..], &["--mask"][..]] {
        let mut args = vec!["exec", "--sandbox"];
        args.extend_from_slice(extra);
        args.extend(["--only", "allowed", "--", "sh", "-c", &script]);
        let out = s.agentcred(force, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.starts_with(
                "error: not starting sh: --sandbox cannot be enforced on this system: this kernel has no Landlock\nhint: needed: Linux 6.2 or later with Landlock"
            ),
            "{stderr}"
        );
        assert!(!marker.exists(), "the program ran");
    }
    // doctor says what is missing; the store is not unhealthy for it.
    let out = s.agentcred(force, &["doctor"]);
    let doctor = ok(&out);
    let line = doctor
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("sandbox"))
        .unwrap_or_default();
    assert!(
        line.starts_with(
            "warning  sandbox      exec --sandbox refuses to run here: this kernel has no Landlock"
        ),
        "{doctor}"
    );
    let doctor = ok(&s.agentcred(pass, &["doctor"]));
    assert!(
        doctor.contains("ok       sandbox      exec --sandbox would use Landlock ABI"),
        "{doctor}"
    );
    // An agent's policy asks for it too.
    ok(&s.agentcred(
        pass,
        &["agent", "add", "bot", "--allow", "allowed", "--sandbox"],
    ));
    let out = s.agentcred(
        force,
        &["exec", "--agent", "bot", "--", "sh", "-c", &script],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!marker.exists(), "the program ran");
    let show = ok(&s.agentcred(pass, &["agent", "show", "bot", "--json"]));
    assert!(show.contains("\"sandbox\": true"), "{show}");
    // Without the forced failure the policy's sandbox applies.
    let out = s.agentcred(
        pass,
        &["exec", "--agent", "bot", "--", "agentcred", "get", "other"],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    // The forcing variable cannot make the sandbox weaker: it only ever refuses.
    let out = s.agentcred(
        force,
        &["exec", "--only", "allowed", "--", "sh", "-c", &script],
    );
    ok(&out);
    assert!(marker.exists());
    drop(s.base);
}

#[test]
fn the_trampoline_is_not_a_way_around() {
    let s = Sandboxed::new();
    let out = s.agentcred(
        &[],
        &["__sandbox-exec", "--unprotect", "/", "--", "sh", "sh"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error: __sandbox-exec is agentcred's own")
    );
}

/// On a terminal (script(1) gives it one): job control works inside, and TIOCSTI, which
/// would type `agentcred get ...` for the shell to run after the program, does not.
#[test]
fn the_program_keeps_job_control_but_cannot_type_into_its_terminal() {
    let s = Sandboxed::new();
    s.store_with_two();
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let typing =
        r#"perl -e 'my $c = "x"; ioctl(STDIN, 0x5412, $c) or die "ioctl: $!\n"; print "typed\n"'"#;
    for (flag, expect) in [
        ("", "typed"),
        ("--sandbox", "ioctl: Operation not permitted"),
    ] {
        let command = format!("agentcred exec {flag} --only allowed -- {typing}");
        let out = s.run(pass, "script", &["-qec", &command, "/dev/null"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(expect), "{flag}: {stdout}");
    }
    let command =
        "agentcred exec --sandbox --only allowed -- bash -ic 'sleep 0.1 & fg; echo fg-ok'";
    let out = s.run(pass, "script", &["-qec", command, "/dev/null"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("sleep 0.1") && stdout.contains("fg-ok"),
        "{stdout}"
    );
    assert!(!stdout.contains("no job control"), "{stdout}");
}

/// The script for the attacks on the protected paths, and the ordinary work in HOME.
fn attacks(s: &Sandboxed) -> String {
    format!(
        r#"{CHECK}
export C=$HOME/.config/agentcred S={store}
check read cat $C/identity.txt
check read_store cat $S/agentcred.toml
check list ls $C
check list_store ls $S
check link ln $C/identity.txt $HOME/stolen
check link_store ln $S/secrets/other.age $HOME/stolen
check rename_out mv $C/identity.txt $HOME/stolen
check rename_dir mv $C $HOME/moved
check rename_store mv $S $HOME/moved
check remove_store rm -rf $S
check rename_parent mv $HOME/.config $HOME/.config-old
check rename_parent_across sh -c 'mkdir -p $HOME/project && mv $HOME/.local $HOME/project/local'
check rename_grandparent mv $HOME/.local/share $HOME/.local/share-old
check plant_config sh -c 'echo "store = \"/tmp/evil\"" > $C/config.toml'
check plant_state mkdir $HOME/.local/state/agentcred/x
check chmod chmod 700 $C
check symlink_into sh -c 'ln -s $C $HOME/shortcut && cat $HOME/shortcut/identity.txt'
check umount umount $C
check nested_umount unshare -Urm --propagation unchanged python3 -c '{UMOUNT}' $C
check nested_clone unshare -Urm --propagation unchanged python3 -c '{CLONE}' $HOME/.config
check proc_root cat /proc/$OUTSIDE/root$C/identity.txt
check proc_cwd ls /proc/$OUTSIDE/cwd/
check new_dotfile sh -c 'echo x > $HOME/.new-dotfile && cat $HOME/.new-dotfile'
check atomic_save sh -c 'echo a > $HOME/.rc.tmp && mv $HOME/.rc.tmp $HOME/.rc && cat $HOME/.rc'
check new_tool_config sh -c 'mkdir -p $HOME/.config/newtool/sub && echo c > $HOME/.config/newtool/sub/f && cat $HOME/.config/newtool/sub/f'
check new_share sh -c 'echo d > $HOME/.local/share/newfile && cat $HOME/.local/share/newfile && rm $HOME/.local/share/newfile'
check new_state sh -c 'mkdir -p $HOME/.local/state/newtool && echo e > $HOME/.local/state/newtool/f'
"#,
        store = s.store().display(),
    )
}

/// umount2(path, MNT_DETACH) by a raw call, as from inside a namespace of the program's own.
const UMOUNT: &str = "import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.umount2(sys.argv[1].encode(), 2) != 0: sys.exit(os.strerror(ctypes.get_errno()))
print(os.listdir(sys.argv[1]))";

/// open_tree(OPEN_TREE_CLONE) of a directory above a covered one: a copy without the
/// mount on top would show what is beneath.
const CLONE: &str = "import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(428, -100, sys.argv[1].encode(), 1 | 0o2000000)
if fd < 0: sys.exit(os.strerror(ctypes.get_errno()))
print(open(\"/proc/self/fd/%d/agentcred/identity.txt\" % fd).read())";

/// HOME keeps working, and each way at the protected paths through it is closed: read,
/// list, link, rename out, rename or remove the store, rename a directory on the way and
/// recreate it with a planted config, links, unmounting (also from a namespace of the
/// program's own), the /proc links of a process outside, an inherited directory, a
/// working directory inside.
#[test]
fn home_works_but_the_protected_paths_cannot_be_reached_moved_or_replaced() {
    let s = Sandboxed::new();
    s.store_with_two();
    let identity = s.home.join(".config/agentcred/identity.txt");
    let before = fs::read(&identity).unwrap();
    let manifest = fs::read(s.store().join("agentcred.toml")).unwrap();
    // No state directory: the sandbox makes it (empty), so that it can be covered.
    let state = s.home.join(".local/state/agentcred");
    if state.exists() {
        fs::remove_dir_all(&state).unwrap();
    }
    let script = format!(
        "sleep 60 & export OUTSIDE=$!\nagentcred exec --sandbox --only allowed -- sh -c '{}'\nkill $OUTSIDE",
        attacks(&s).replace('\'', r"'\''")
    );
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let stdout = ok(&s.run(pass, "sh", &["-c", &script]));
    for (name, why) in [
        ("read", "Permission denied"),
        ("read_store", "Permission denied"),
        ("list", "Permission denied"),
        ("list_store", "Permission denied"),
        ("link", "Permission denied"),
        ("link_store", "Permission denied"),
        ("rename_out", "Permission denied"),
        ("rename_dir", ""),
        ("rename_store", ""),
        ("remove_store", ""),
        ("rename_parent", "Permission denied"),
        ("rename_parent_across", "Permission denied"),
        ("rename_grandparent", "Permission denied"),
        ("plant_config", ""),
        ("plant_state", ""),
        ("chmod", "Read-only file system"),
        ("symlink_into", "Permission denied"),
        ("umount", ""),
        ("nested_umount", "Invalid argument"),
        ("nested_clone", "Invalid argument"),
        ("proc_root", "Permission denied"),
        ("proc_cwd", "Permission denied"),
    ] {
        denied(&stdout, name, why);
    }
    for name in [
        "new_dotfile",
        "atomic_save",
        "new_tool_config",
        "new_share",
        "new_state",
    ] {
        allowed(&stdout, name);
    }
    assert!(!stdout.contains("AGE-SECRET-KEY"), "{stdout}");
    // Outside, all is where it was, and the program's new files are there.
    assert_eq!(fs::read(&identity).unwrap(), before);
    assert_eq!(
        fs::read(s.store().join("agentcred.toml")).unwrap(),
        manifest
    );
    for gone in [
        ".config/agentcred/config.toml",
        "stolen",
        "moved",
        ".config-old",
    ] {
        assert!(!s.home.join(gone).exists(), "{gone}");
    }
    assert_eq!(
        fs::read_to_string(s.home.join(".config/newtool/sub/f")).unwrap(),
        "c\n"
    );
    assert!(s.home.join(".new-dotfile").exists());
    assert!(state.is_dir() && !state.join("x").exists());
    assert_eq!(ok(&s.agentcred(pass, &["get", "other"])), OTHER);

    // An open directory handed down would be a way around the mounts: refused.
    let out = s.run(
        pass,
        "sh",
        &[
            "-c",
            "agentcred exec --sandbox --only allowed -- true 3<\"$HOME\"",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("file descriptor 3 is an open directory"),
        "{out:?}"
    );
    // So would a working directory beneath a covered one.
    let script = format!(
        "cd {} && agentcred exec --sandbox --only allowed -- cat identity.txt",
        identity.parent().unwrap().display()
    );
    let out = s.run(pass, "sh", &["-c", &script]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the working directory is inside"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty());
}

/// Where user namespaces are not to be had, nothing is covered: the directories on the
/// way stay list-only, so HOME gets no new entries, and the protected paths stay shut.
#[test]
fn without_user_namespaces_the_way_is_list_only() {
    let s = Sandboxed::new();
    s.store_with_two();
    let force: &[(&str, &OsStr)] = &[
        ("AGENTCRED_SANDBOX_FORCE_UNSUPPORTED", OsStr::new("userns")),
        ("AGENTCRED_PASSPHRASE", OsStr::new(PASS)),
    ];
    let script = attacks(&s).replace("$OUTSIDE", "1");
    let out = s.agentcred(
        force,
        &[
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let stdout = ok(&out);
    for name in [
        "read",
        "read_store",
        "link",
        "rename_out",
        "rename_store",
        "rename_parent",
        "rename_grandparent",
        "plant_config",
        "symlink_into",
        "new_dotfile",
        "atomic_save",
        "new_share",
    ] {
        denied(&stdout, name, "Permission denied");
    }
    // The names in a protected directory show; never the contents.
    allowed(&stdout, "list");
    assert!(!stdout.contains("AGE-SECRET-KEY"), "{stdout}");
    let doctor = ok(&s.agentcred(force, &["doctor"]));
    assert!(
        doctor.contains("seccomp (no user namespaces: nothing new can be made directly in HOME"),
        "{doctor}"
    );
}

/// A link on the way to a protected path (a `~/.config` that is a link into a dotfiles
/// directory) must not be replaced: its directory stays list-only, the rest works.
#[test]
fn a_link_on_the_way_stays_in_place() {
    let s = Sandboxed::new();
    let setup = "mkdir -p $HOME/dotfiles/config && ln -s dotfiles/config $HOME/.config";
    ok(&s.run(&[], "sh", &["-c", setup]));
    s.store_with_two();
    assert!(
        s.home
            .join("dotfiles/config/agentcred/identity.txt")
            .exists()
    );
    let script = format!(
        r#"{CHECK}
check read cat $HOME/.config/agentcred/identity.txt
check replace_link sh -c 'rm $HOME/.config && mkdir -p $HOME/.config/agentcred'
check new_dotfile touch $HOME/.new-dotfile
check new_in_dotfiles sh -c 'echo x > $HOME/dotfiles/config/new && cat $HOME/dotfiles/config/new'
"#
    );
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let out = s.agentcred(
        pass,
        &[
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let stdout = ok(&out);
    denied(&stdout, "read", "Permission denied");
    denied(&stdout, "replace_link", "Permission denied");
    denied(&stdout, "new_dotfile", "Permission denied");
    allowed(&stdout, "new_in_dotfiles");
    assert!(s.home.join(".config").is_symlink());
}

/// Unmounts a bind mount the test made, before its directory is removed.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A second mount of the file system holding HOME (a bind mount elsewhere, as containers
/// make) is a second path to the store and identity: protected like the first, with and
/// without the mount namespace.
#[test]
fn a_second_mount_of_home_is_protected_too() {
    let s = Sandboxed::new();
    if s.owner.is_none() {
        eprintln!(
            "SKIPPED a_second_mount_of_home_is_protected_too: making a bind mount needs root"
        );
        return;
    }
    s.store_with_two();
    let alias = s.base.path().join("alias");
    fs::create_dir(&alias).unwrap();
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg(&s.home)
        .arg(&alias)
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        eprintln!(
            "SKIPPED a_second_mount_of_home_is_protected_too: this machine refuses bind mounts even to root"
        );
        return;
    }
    let _unmount = Unmount(alias.clone());
    let script = format!(
        r#"{CHECK}
check read cat {alias}/.config/agentcred/identity.txt
check read_store cat {alias}/.local/share/agentcred/secrets/other.age
check other_files sh -c 'echo x > {alias}/notes && cat {alias}/notes'
"#,
        alias = alias.display()
    );
    for force in ["no", "userns"] {
        let vars: &[(&str, &OsStr)] = &[
            ("AGENTCRED_SANDBOX_FORCE_UNSUPPORTED", OsStr::new(force)),
            ("AGENTCRED_PASSPHRASE", OsStr::new(PASS)),
        ];
        let out = s.agentcred(
            vars,
            &[
                "exec",
                "--sandbox",
                "--only",
                "allowed",
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        let stdout = ok(&out);
        denied(&stdout, "read", "Permission denied");
        denied(&stdout, "read_store", "Permission denied");
        allowed(&stdout, "other_files");
        assert!(!stdout.contains("AGE-SECRET-KEY"), "{force}: {stdout}");
    }
}

/// Another agent's file credential, in its run directory while that agent runs, is out of
/// the sandboxed program's reach; the program's own file credential arrives.
#[test]
fn another_agents_file_credentials_are_covered() {
    let s = Sandboxed::new();
    s.store_with_two();
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let setup = "printf FILE-SECRET-42 > sa.json && agentcred add sa --kind file --env SA_FILE --from-file sa.json && rm sa.json";
    ok(&s.run(pass, "sh", &["-c", setup]));
    let script = format!(
        r#"{CHECK}
agentcred exec --only sa -- sh -c 'echo "$SA_FILE" > "$HOME/first-path"; exec sleep 60' >/dev/null 2>&1 &
first=$!
for i in $(seq 100); do [ -s "$HOME/first-path" ] && break; sleep 0.1; done
export FIRST=$(cat "$HOME/first-path")
agentcred exec --sandbox --only sa -- sh -c '{CHECK}
check other_agent cat "$FIRST"
check other_agent_dir ls "$(dirname "$FIRST")"
check own cat "$SA_FILE"'
kill $first
"#
    );
    let stdout = ok(&s.run(pass, "sh", &["-c", &script]));
    denied(&stdout, "other_agent", "Permission denied");
    denied(&stdout, "other_agent_dir", "Permission denied");
    assert_eq!(line(&stdout, "own"), "own: allowed", "{stdout}");
}

/// Runs `script` with `sh -c` as a sandboxed program (`--only allowed`), with the
/// passphrase and `vars`; its stdout.
fn sandboxed_script(
    s: &Sandboxed,
    agentcred: &str,
    vars: &[(&str, &OsStr)],
    script: &str,
) -> String {
    let mut all: Vec<(&str, &OsStr)> = vec![("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    all.extend_from_slice(vars);
    ok(&s.run(
        &all,
        agentcred,
        &[
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "sh",
            "-c",
            script,
        ],
    ))
}

/// A Vault token file (`~/.vault-token`) reaches every Vault-backed credential: out of
/// reach like the identity.
#[test]
fn the_vault_token_file_is_protected() {
    let s = Sandboxed::new();
    s.store_with_two();
    let token = "hvs.SANDBOX-TEST-TOKEN-1234";
    ok(&s.run(
        &[],
        "sh",
        &["-c", &format!("printf {token} > $HOME/.vault-token")],
    ));
    for force in ["no", "userns"] {
        let vars: &[(&str, &OsStr)] = &[("AGENTCRED_SANDBOX_FORCE_UNSUPPORTED", OsStr::new(force))];
        let stdout = sandboxed_script(
            &s,
            "agentcred",
            vars,
            &format!("{CHECK}check token cat $HOME/.vault-token\n"),
        );
        denied(&stdout, "token", "Permission denied");
        assert!(!stdout.contains(token), "{force}: {stdout}");
    }
}

/// With `~/.config` a link into a dotfiles directory, HOME must stay list-only (the link
/// must not be replaced), also when HOME is mounted a second time: Landlock combines the
/// rules of one directory whatever path added them, so the second mount's walk must not
/// grant HOME more than the first.
#[test]
fn a_second_mount_does_not_widen_a_list_only_directory() {
    let s = Sandboxed::new();
    if s.owner.is_none() {
        eprintln!(
            "SKIPPED a_second_mount_does_not_widen_a_list_only_directory: making a bind mount needs root"
        );
        return;
    }
    let setup = "mkdir -p $HOME/dotfiles/config && ln -s dotfiles/config $HOME/.config";
    ok(&s.run(&[], "sh", &["-c", setup]));
    s.store_with_two();
    let alias = s.base.path().join("alias");
    fs::create_dir(&alias).unwrap();
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg(&s.home)
        .arg(&alias)
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        eprintln!(
            "SKIPPED a_second_mount_does_not_widen_a_list_only_directory: this machine refuses bind mounts even to root"
        );
        return;
    }
    let _unmount = Unmount(alias.clone());
    let script = format!(
        r#"{CHECK}
check new_dotfile touch $HOME/.newdot
check alias_new_dotfile touch {alias}/.newdot
check replace_link ln -sfn /tmp $HOME/.config
check alias_replace_link ln -sfn /tmp {alias}/.config
check alias_read cat {alias}/dotfiles/config/agentcred/identity.txt
check new_in_dotfiles sh -c 'echo x > $HOME/dotfiles/new && cat $HOME/dotfiles/new'
"#,
        alias = alias.display()
    );
    for force in ["no", "userns"] {
        let vars: &[(&str, &OsStr)] = &[("AGENTCRED_SANDBOX_FORCE_UNSUPPORTED", OsStr::new(force))];
        let stdout = sandboxed_script(&s, "agentcred", vars, &script);
        for name in [
            "new_dotfile",
            "alias_new_dotfile",
            "replace_link",
            "alias_replace_link",
        ] {
            denied(&stdout, name, "Permission denied");
        }
        denied(&stdout, "alias_read", "Permission denied");
        allowed(&stdout, "new_in_dotfiles");
        assert_eq!(
            fs::read_link(s.home.join(".config")).unwrap(),
            PathBuf::from("dotfiles/config"),
            "{force}"
        );
        assert!(!s.home.join(".newdot").exists(), "{force}: {stdout}");
    }
}

/// Code that runs later outside the sandbox (shell startup files, `~/.ssh`,
/// `~/.local/bin`, agentcred itself and its directory, the repository's config and hooks)
/// is read-only inside it; the rest of HOME and the working directory stay writable.
#[test]
fn places_that_run_code_later_are_read_only() {
    let s = Sandboxed::new();
    s.store_with_two();
    // agentcred in a directory of the user's own, as `cargo install` or `~/.local/bin` put it.
    let setup = format!(
        "mkdir -p $HOME/.ssh $HOME/.local/bin $HOME/tools && echo '# mine' > $HOME/.bashrc \
         && cp {bin}/agentcred $HOME/tools/agentcred && git init -q . && git config user.name t",
        bin = s.bin.display()
    );
    ok(&s.run(&[], "sh", &["-c", &setup]));
    let bashrc = fs::read(s.home.join(".bashrc")).unwrap();
    let config = fs::read(s.work.join(".git/config")).unwrap();
    let script = format!(
        r#"{CHECK}
check bashrc_append sh -c 'echo evil >> $HOME/.bashrc'
check bashrc_replace sh -c 'echo evil > $HOME/x && mv -f $HOME/x $HOME/.bashrc'
check ssh touch $HOME/.ssh/authorized_keys
check local_bin touch $HOME/.local/bin/agentcred
check own_binary sh -c 'cat /bin/true > $HOME/tools/agentcred'
check own_dir touch $HOME/tools/wrapper
check git_config git config core.fsmonitor evil
check git_hooks touch .git/hooks/post-checkout
check home_file sh -c 'echo x > $HOME/notes && cat $HOME/notes'
check work_file sh -c 'echo x > work.txt && cat work.txt'
check git_add git add work.txt
"#
    );
    let agentcred = s.home.join("tools/agentcred");
    let stdout = sandboxed_script(&s, agentcred.to_str().unwrap(), &[], &script);
    for name in [
        "bashrc_append",
        "bashrc_replace",
        "ssh",
        "local_bin",
        "own_binary",
        "own_dir",
        "git_config",
        "git_hooks",
    ] {
        let line = line(&stdout, name);
        assert!(
            line.starts_with(&format!("{name}: denied")),
            "{name}:\n{stdout}"
        );
    }
    denied(&stdout, "bashrc_append", "Read-only file system");
    allowed(&stdout, "home_file");
    allowed(&stdout, "work_file");
    allowed(&stdout, "git_add");
    assert_eq!(fs::read(s.home.join(".bashrc")).unwrap(), bashrc);
    assert_eq!(fs::read(s.work.join(".git/config")).unwrap(), config);
    assert!(!s.home.join(".ssh/authorized_keys").exists());
    assert!(!s.work.join(".git/hooks/post-checkout").exists());
}

/// The sockets of same-user services that run commands on request (tmux, the systemd
/// user manager) are out of reach.
#[test]
fn tmux_and_systemd_sockets_are_covered() {
    let s = Sandboxed::new();
    s.store_with_two();
    let uid = s
        .owner
        .map_or_else(|| rustix::process::getuid().as_raw(), |(uid, _)| uid);
    let tmux = s.home.join("tmux");
    let runtime = s.home.join("runtime");
    let setup = format!(
        "mkdir -m 700 -p {tmux}/tmux-{uid} {runtime}/systemd && \
         python3 -c 'import socket,sys\nfor p in sys.argv[1:]: socket.socket(socket.AF_UNIX).bind(p)' \
         {tmux}/tmux-{uid}/default {runtime}/systemd/private",
        tmux = tmux.display(),
        runtime = runtime.display()
    );
    ok(&s.run(&[], "sh", &["-c", &setup]));
    let script = format!(
        r#"{CHECK}
check tmux test -S $TMUX_TMPDIR/tmux-{uid}/default
check systemd test -S $XDG_RUNTIME_DIR/systemd/private
check runtime sh -c 'echo x > $XDG_RUNTIME_DIR/mine && cat $XDG_RUNTIME_DIR/mine'
"#
    );
    let vars: &[(&str, &OsStr)] = &[
        ("TMUX_TMPDIR", tmux.as_os_str()),
        ("XDG_RUNTIME_DIR", runtime.as_os_str()),
    ];
    let stdout = sandboxed_script(&s, "agentcred", vars, &script);
    denied(&stdout, "tmux", "");
    denied(&stdout, "systemd", "");
    allowed(&stdout, "runtime");
}

/// What a sandboxed program leaves behind ends with it: a new session (`setsid`), an
/// orphan of a double fork, and that orphan's own child. Otherwise such a process would
/// keep the sandbox's rights and the terminal after agentcred has gone (the review's
/// passphrase theft), or read the file credentials of a later run.
#[test]
fn processes_the_program_leaves_behind_end_with_it() {
    let s = Sandboxed::new();
    s.store_with_two();
    let script = r#"
setsid sh -c 'echo $$ > session.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 &
(sh -c 'sleep 1000 & echo $! > grandchild.pid; echo $$ > orphan.pid; wait' </dev/null >/dev/null 2>&1 &)
for i in $(seq 100); do [ -s session.pid ] && [ -s orphan.pid ] && [ -s grandchild.pid ] && break; sleep 0.1; done
echo started
"#;
    let stdout = sandboxed_script(&s, "agentcred", &[], script);
    assert_eq!(stdout.trim(), "started");
    for name in ["session.pid", "orphan.pid", "grandchild.pid"] {
        let pid = fs::read_to_string(s.work.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim()
            .to_string();
        assert!(!pid.is_empty(), "{name} is empty");
        // agentcred returns only after it has killed and reaped them: no such process
        // now (a new process with the same pid would not be ours: check what runs).
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains("sleep")
                && !String::from_utf8_lossy(&cmdline).starts_with("sh"),
            "{name} ({pid}) outlived the sandboxed program: {:?}",
            String::from_utf8_lossy(&cmdline)
        );
    }
}

/// A sandboxed run is always a child of agentcred now: its exit status is still the
/// program's own (code, 128+N for a signal, 127 when it does not exist), as in
/// exec-replace mode.
#[test]
fn a_sandboxed_programs_exit_status_is_its_own() {
    let s = Sandboxed::new();
    s.store_with_two();
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let run = |args: &[&str]| {
        let mut all = vec!["exec", "--sandbox", "--only", "allowed", "--"];
        all.extend_from_slice(args);
        s.agentcred(pass, &all)
    };
    assert_eq!(run(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(run(&["sh", "-c", "kill -TERM $$"]).status.code(), Some(143));
    let missing = run(&["no-such-program-here"]);
    assert_eq!(missing.status.code(), Some(127), "{missing:?}");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no-such-program-here"),
        "{missing:?}"
    );
}

/// agentcred killed outright (`kill -9`) cannot end what the program left behind, but the
/// program itself does not outlive it (its parent-death signal is SIGKILL).
#[test]
fn the_program_does_not_outlive_a_killed_agentcred() {
    let s = Sandboxed::new();
    s.store_with_two();
    let script = r#"
agentcred exec --sandbox --only allowed -- sh -c 'echo $$ > program.pid; exec sleep 1000' >/dev/null 2>&1 &
ac=$!
for i in $(seq 100); do [ -s program.pid ] && break; sleep 0.1; done
kill -9 $ac
pid=$(cat program.pid)
for i in $(seq 100); do grep -q sleep /proc/$pid/cmdline 2>/dev/null || break; sleep 0.1; done
if grep -q sleep /proc/$pid/cmdline 2>/dev/null; then echo "alive $pid"; kill $pid; else echo gone; fi
"#;
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let stdout = ok(&s.run(pass, "sh", &["-c", script]));
    assert_eq!(stdout.trim(), "gone", "{stdout}");
}

/// A leftover that another leftover traces (`PTRACE_SEIZE`, never waited for): killing
/// the traced one alone leaves a zombie only its tracer may see, and a sweep that waited
/// for it hung for ever (the review's finding 1). Both end, and agentcred exits.
#[test]
fn a_traced_leftover_does_not_hang_agentcred() {
    let s = Sandboxed::new();
    s.store_with_two();
    let program = r#"
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
if os.fork() == 0:
    os.setsid()
    libc.prctl(0x59616d61, ctypes.c_ulong(2**64 - 1), 0, 0, 0)  # PR_SET_PTRACER_ANY, with Yama
    traced = os.getpid()
    if os.fork() == 0:
        seized = libc.ptrace(0x4206, traced, None, None)  # PTRACE_SEIZE
        open("traced.pids", "w").write(f"{traced} {os.getpid()} {seized}\n")
        while True:
            time.sleep(1)
    while True:
        time.sleep(1)
for _ in range(100):
    if os.path.exists("traced.pids") and open("traced.pids").read().endswith("\n"):
        break
    time.sleep(0.1)
print("started")
"#;
    fs::write(s.work.join("trace.py"), program).unwrap();
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    // `timeout` turns a hang into a failure (137) rather than a stuck test.
    let out = s.run(
        pass,
        "timeout",
        &[
            "-s",
            "KILL",
            "120",
            "agentcred",
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "python3",
            "trace.py",
        ],
    );
    let pids = fs::read_to_string(s.work.join("traced.pids")).unwrap_or_default();
    let fields: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(fields.get(2), Some(&"0"), "PTRACE_SEIZE failed: {pids:?}");
    for pid in &fields[..2] {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("trace.py") {
            let _ = Command::new("kill").args(["-9", pid]).status();
            panic!("{pid} outlived agentcred: {out:?}");
        }
    }
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "started");
}

/// A process that was agentcred's child before the program started (`sidecar & exec
/// agentcred ...`) is not the program's: it is left alone.
#[test]
fn agentcreds_own_earlier_children_are_left_alone() {
    let s = Sandboxed::new();
    s.store_with_two();
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let script = "sleep 300 </dev/null >/dev/null 2>&1 & echo $! > sidecar.pid; exec agentcred -v exec --sandbox --only allowed -- sh -c 'setsid sleep 301 & echo $! > left.pid'";
    let out = s.run(pass, "sh", &["-c", script]);
    assert!(out.status.success(), "{out:?}");
    let read = |name: &str| {
        fs::read_to_string(s.work.join(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let (sidecar, left) = (read("sidecar.pid"), read("left.pid"));
    let alive = |pid: &str, what: &str| {
        String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
            .contains(what)
    };
    let sidecar_alive = alive(&sidecar, "300");
    let _ = Command::new("kill").args(["-9", &sidecar]).status();
    assert!(sidecar_alive, "the earlier child was killed: {out:?}");
    assert!(!alive(&left, "301"), "the program's leftover lives on");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ended 1 process the sandboxed program left behind"),
        "{stderr}"
    );
}

/// On a terminal, a sandboxed program gets a pseudo-terminal of its own, as `--mask`
/// does: what it leaves behind cannot hold the real one, where the user may type a
/// passphrase while the run is suspended (the review's finding 4). Its output still
/// reaches the real terminal, unmasked, and it still sees a terminal.
#[test]
fn a_sandboxed_program_on_a_terminal_has_a_terminal_of_its_own() {
    let s = Sandboxed::new();
    s.store_with_two();
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let command = "echo outer=$(tty); agentcred exec --sandbox --only allowed -- sh -c 'echo inner=$(tty); test -t 1 && echo stdout-is-a-terminal; echo \"key=$ALLOWED\"'";
    let out = s.run(pass, "script", &["-qec", command, "/dev/null"]);
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{stdout}");
    let value = |name: &str| {
        stdout
            .lines()
            // script(1) with stdin at end of file may put a control character first.
            .find_map(|l| Some(&l[l.find(name)? + name.len()..]))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_string()
    };
    let (outer, inner) = (value("outer="), value("inner="));
    assert!(outer.starts_with("/dev/pts/"), "{stdout}");
    assert!(inner.starts_with("/dev/pts/") && inner != outer, "{stdout}");
    assert!(stdout.contains("stdout-is-a-terminal"), "{stdout}");
    assert_eq!(value("key="), ALLOWED, "not masked without --mask");
}

/// A place that runs code later but does not exist when the program starts cannot be
/// covered read-only (a new `~/.bash_profile`): after the run agentcred says the program
/// made it.
#[test]
fn a_new_startup_file_is_reported_after_the_run() {
    let s = Sandboxed::new();
    s.store_with_two();
    let pass: &[(&str, &OsStr)] = &[("AGENTCRED_PASSPHRASE", OsStr::new(PASS))];
    let out = s.agentcred(
        pass,
        &[
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "sh",
            "-c",
            "echo 'agentcred get other' > $HOME/.bash_profile",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let profile = s.home.join(".bash_profile");
    assert!(
        stderr.contains(&format!(
            "warning: the sandboxed program created {}, where code runs later outside the sandbox: review it",
            profile.display()
        )),
        "{stderr}"
    );
    // An ordinary file in HOME is not reported.
    let out = s.agentcred(
        pass,
        &[
            "exec",
            "--sandbox",
            "--only",
            "allowed",
            "--",
            "sh",
            "-c",
            "echo x > $HOME/notes.txt",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{out:?}"
    );
}
