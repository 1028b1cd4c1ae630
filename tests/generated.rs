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
    files.insert(PathBuf::from("man/agentcred.1"), man_page(cmd.clone()));
    for sub in cmd.get_subcommands() {
        let name = format!("agentcred-{}", sub.get_name());
        let page = man_page(sub.clone().name(&*Box::leak(name.clone().into_boxed_str())));
        files.insert(Path::new("man").join(format!("{name}.1")), page);
    }
    files
}

/// clap_mangen's page, except the help's epilogue: its prose joins the DESCRIPTION, and
/// `Examples:`, `Environment:` and `Exit status:` become EXAMPLES, ENVIRONMENT and EXIT
/// STATUS sections with their lines kept (clap_mangen puts it all, filled, under EXTRA).
/// Every page gets ENVIRONMENT and EXIT STATUS.
fn man_page(cmd: clap::Command) -> Vec<u8> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page).unwrap();
    man.render_name_section(&mut page).unwrap();
    man.render_synopsis_section(&mut page).unwrap();
    man.render_description_section(&mut page).unwrap();
    let epilogue = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut sections: Vec<(String, Vec<&str>)> = vec![(String::new(), Vec::new())];
    for line in epilogue.lines() {
        let title = match line {
            "Examples:" => Some("EXAMPLES"),
            "Environment:" => Some("ENVIRONMENT"),
            "Exit status:" => Some("EXIT STATUS"),
            _ => None,
        };
        match title {
            Some(title) => sections.push((title.to_string(), Vec::new())),
            None => sections.last_mut().unwrap().1.push(line),
        }
    }
    let (_, prose) = sections.remove(0);
    for paragraph in prose
        .split(|l| l.trim().is_empty())
        .filter(|p| !p.is_empty())
    {
        page.extend(b".PP\n");
        for line in paragraph {
            page.extend(roff_line(line).as_bytes());
        }
    }
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page).unwrap();
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page).unwrap();
    }
    for (text, title) in [
        (agentcred::cli::ENVIRONMENT, "ENVIRONMENT"),
        (agentcred::cli::EXIT_STATUS, "EXIT STATUS"),
    ] {
        if !sections.iter().any(|(t, _)| t == title) {
            sections.push((title.to_string(), text.lines().skip(1).collect()));
        }
    }
    for (title, lines) in sections {
        page.extend(format!(".SH \"{title}\"\n.nf\n").as_bytes());
        for line in lines.iter().skip_while(|l| l.trim().is_empty()) {
            page.extend(roff_line(line).as_bytes());
        }
        page.extend(b".fi\n");
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page).unwrap();
    }
    page
}

/// One line of text for roff: backslashes and hyphens escaped, a leading `.` or `'`
/// made literal.
fn roff_line(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}\n")
    } else {
        format!("{escaped}\n")
    }
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
