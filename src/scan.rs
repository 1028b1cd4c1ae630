//! `agentcred scan`: where have stored values leaked? Walks files the way ripgrep does
//! (`.gitignore` respected, binary files skipped) and reports each place a value, or one of
//! its encoded forms (see [`crate::mask::forms`]), appears, by file, line and credential
//! name. The search is the automaton `exec --mask` uses, so what one masks the other finds.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use zeroize::Zeroizing;

use crate::mask::{Patterns, Piece, Redactor};

/// ripgrep's rule: a NUL byte in the first 8 KiB makes a file binary.
pub const BINARY_PEEK: usize = 8 * 1024;

const CHUNK: usize = 256 * 1024;

/// What scanning one stream found.
pub enum Scanned {
    /// `(line, label)` of each place, in order; one per label per line.
    Text(Vec<(u64, usize)>),
    /// Skipped: not text.
    Binary,
}

/// Searches streams one after another, reusing one buffer (wiped when dropped: it holds
/// file contents, which may hold values).
pub struct Scanner<'p> {
    patterns: &'p Patterns,
    buf: Zeroizing<Vec<u8>>,
}

impl<'p> Scanner<'p> {
    pub fn new(patterns: &'p Patterns) -> Self {
        Scanner {
            patterns,
            buf: Zeroizing::new(vec![0u8; CHUNK]),
        }
    }

    /// Search a stream: lines count from 1, a value spanning lines is reported on its
    /// first.
    pub fn scan(&mut self, source: impl Read) -> io::Result<Scanned> {
        scan_with(self.patterns, &mut self.buf, source)
    }
}

fn scan_with(patterns: &Patterns, buf: &mut [u8], mut source: impl Read) -> io::Result<Scanned> {
    let mut filled = 0;
    // Fill the first 8 KiB (or reach the end) before deciding whether this is text.
    while filled < BINARY_PEEK {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if memchr::memchr(0, &buf[..filled.min(BINARY_PEEK)]).is_some() {
        return Ok(Scanned::Binary);
    }
    let mut found: Vec<(u64, usize)> = Vec::new();
    let mut line: u64 = 1;
    let mut redactor = Redactor::new(patterns);
    let mut count = |piece: Piece<'_>| -> io::Result<()> {
        match piece {
            Piece::Text(text) => line += memchr::memchr_iter(b'\n', text).count() as u64,
            Piece::Found { label, bytes } => {
                if !found.contains(&(line, label)) {
                    found.push((line, label));
                }
                line += memchr::memchr_iter(b'\n', bytes).count() as u64;
            }
        }
        Ok(())
    };
    redactor.feed(&buf[..filled], &mut count)?;
    loop {
        let n = match source.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        redactor.feed(&buf[..n], &mut count)?;
    }
    redactor.finish(&mut count)?;
    Ok(Scanned::Text(found))
}

/// One thing met while walking.
pub enum Visit {
    /// A regular file (or stdin, for `-`), with the name to report it by.
    File { path: PathBuf, shown: String },
    /// Something that could not be read (permissions, a vanished file): a warning.
    Error(String),
    /// A file or directory not searched because an ignore file excludes it (reported
    /// once per topmost ignored path, after the files), so the user can be told.
    Ignored { shown: String },
}

/// The files under `roots` in a stable order, `.gitignore`, `.ignore` and
/// `.git/info/exclude` respected unless `no_ignore` (whether or not the tree is a git
/// repository), hidden files included (a leaked `.env` is the classic), `.git` itself
/// skipped. A root named explicitly is always visited, ignored or not.
pub fn walk(roots: &[PathBuf], no_ignore: bool, mut visit: impl FnMut(Visit)) {
    let mut seen = std::collections::HashSet::new();
    for_each_entry(roots, no_ignore, None, |entry| match entry {
        Ok(entry) => {
            seen.insert(entry.path().to_path_buf());
            if entry.file_type().is_some_and(|t| t.is_file()) {
                let shown = shown(entry.path());
                visit(Visit::File {
                    path: entry.into_path(),
                    shown,
                });
            }
        }
        Err(message) => visit(Visit::Error(message)),
    });
    if no_ignore {
        return;
    }
    // What the ignore files hid: the same walk without them, not descending below a path
    // the first walk did not see (one line for `target/`, not its thousand files).
    let seen = std::sync::Arc::new(seen);
    let mut ignored = Vec::new();
    for_each_entry(roots, true, Some(seen.clone()), |entry| {
        let Ok(entry) = entry else {
            return;
        };
        if seen.contains(entry.path()) {
            return;
        }
        match entry.file_type() {
            Some(t) if t.is_dir() => ignored.push(format!("{}/", shown(entry.path()))),
            Some(t) if t.is_file() => ignored.push(shown(entry.path())),
            _ => {}
        }
    });
    for shown in ignored {
        visit(Visit::Ignored { shown });
    }
}

/// Walk `roots` as [`walk`] describes; with `within`, only into directories it holds.
fn for_each_entry(
    roots: &[PathBuf],
    no_ignore: bool,
    within: Option<std::sync::Arc<std::collections::HashSet<PathBuf>>>,
    mut each: impl FnMut(Result<ignore::DirEntry, String>),
) {
    let Some((first, rest)) = roots.split_first() else {
        return;
    };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    builder
        .hidden(false)
        .require_git(false)
        .git_ignore(!no_ignore)
        .git_exclude(!no_ignore)
        .git_global(!no_ignore)
        .ignore(!no_ignore)
        .parents(!no_ignore)
        .follow_links(false)
        .skip_stdout(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            entry.file_name() != ".git"
                && within.as_ref().is_none_or(|seen| {
                    entry.depth() == 0 || entry.path().parent().is_some_and(|p| seen.contains(p))
                })
        });
    for entry in builder.build() {
        each(entry.map_err(|e| crate::util::output::escape(&e.to_string())));
    }
}

/// How a path is reported: as walked, without a leading `./`, escaped for terminals.
fn shown(path: &Path) -> String {
    let path = path.strip_prefix(".").unwrap_or(path);
    crate::util::output::escape(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns() -> Patterns {
        Patterns::build([("key".to_string(), &b"sk-live-0123456789"[..])])
            .unwrap()
            .patterns
            .unwrap()
    }

    #[test]
    fn lines_and_binary() {
        let p = patterns();
        let text =
            b"one\ntwo sk-live-0123456789 sk-live-0123456789\nthree\nc2stbGl2ZS0wMTIzNDU2Nzg5\n";
        let mut scanner = Scanner::new(&p);
        match scanner.scan(&text[..]).unwrap() {
            Scanned::Text(found) => assert_eq!(found, [(2, 0), (4, 0)]),
            Scanned::Binary => panic!("text taken for binary"),
        }
        let mut binary = b"sk-live-0123456789\0".to_vec();
        binary.extend_from_slice(&[b'x'; 10_000]);
        assert!(matches!(
            scanner.scan(&binary[..]).unwrap(),
            Scanned::Binary
        ));
        // A NUL after the first 8 KiB does not make a file binary.
        let mut late = vec![b'x'; BINARY_PEEK];
        late.extend_from_slice(b"\n\0 sk-live-0123456789");
        assert!(matches!(scanner.scan(&late[..]).unwrap(), Scanned::Text(f) if f == [(2, 0)]));
    }

    #[test]
    fn shown_paths() {
        assert_eq!(shown(Path::new("./a/b.txt")), "a/b.txt");
        assert_eq!(shown(Path::new("src/x")), "src/x");
    }
}
