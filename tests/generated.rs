//! `completions/` and `man/` are generated from the clap definition and checked in. This
//! test regenerates them in memory and fails when the checked-in files are stale.
//! `AGENTCRED_REGENERATE=1 cargo test --test integration generated::` rewrites them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn generate() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut cmd = agentcred::cli::Cli::command();
    cmd.build();
    for shell in agentcred::cli::complete::Shell::ALL {
        files.insert(
            Path::new("completions").join(shell.file_name()),
            shell.script(),
        );
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .unwrap();
    files.insert(PathBuf::from("man/agentcred.1"), page);
    for sub in cmd.get_subcommands() {
        let name = format!("agentcred-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(&*Box::leak(name.clone().into_boxed_str())))
            .render(&mut page)
            .unwrap();
        files.insert(Path::new("man").join(format!("{name}.1")), page);
    }
    files
}

#[test]
fn completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = generate();
    if std::env::var_os("AGENTCRED_REGENERATE").is_some() {
        for dir in ["completions", "man"] {
            let _ = std::fs::remove_dir_all(root.join(dir));
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for (path, bytes) in &files {
            std::fs::write(root.join(path), bytes).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (path, bytes) in &files {
        if std::fs::read(root.join(path)).ok().as_ref() != Some(bytes) {
            stale.push(path.display().to_string());
        }
    }
    for dir in ["completions", "man"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = Path::new(dir).join(entry.unwrap().file_name());
            if !files.contains_key(&path) {
                stale.push(format!("{} (no longer generated)", path.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files: {stale:?}\nrun: AGENTCRED_REGENERATE=1 cargo test --test integration generated::"
    );
}

#[test]
fn man_pages_render() {
    if std::process::Command::new("man")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("man is not installed (scripts/test installs the Debian package man-db)");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for path in generate().keys().filter(|p| p.starts_with("man")) {
        let out = std::process::Command::new("man")
            .arg("-l")
            .arg(root.join(path))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("agentcred"), "{}", path.display());
    }
}
