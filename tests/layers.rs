//! Layers only look down: `cli` -> features (exec, rotate, doctor, ... over policy, oauth,
//! audit, mask, scan, envfile) -> `store` -> `backend` -> `manifest` -> `crypto` -> `model`
//! -> `error`/`exit` -> `util`. This test reads src/ and fails when a file names
//! `crate::X` (in code or in a doc link) for a module X of a higher layer, when a top-level
//! module has no layer, or when files import each other in a cycle. Unit tests
//! (`#[cfg(test)] mod ...`) may reach anywhere and are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module's layer; a module may use its own layer and the ones below.
const LAYERS: &[(&str, u8)] = &[
    ("util", 0),
    ("exit", 0),
    ("error", 1),
    ("model", 2),
    ("crypto", 3),
    ("manifest", 4),
    ("backend", 5),
    ("store", 6),
    // features that others build on
    ("audit", 7),
    ("envfile", 7),
    ("mask", 7),
    ("scan", 7),
    ("policy", 7),
    ("oauth", 7),
    // features that combine them
    ("exec", 8),
    ("rotate", 8),
    ("doctor", 8),
    ("broker", 8),
    ("sandbox", 8),
    ("mcp", 8),
    ("gitmerge", 8),
    ("cli", 9),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every .rs file under src/, as a path relative to src/ ("store/mod.rs"), with its text
/// up to its first unit-test module.
fn sources() -> BTreeMap<String, String> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read src/") {
            let path = entry.expect("read src/").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).expect("read a source file");
                let rel = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, without_unit_tests(&text).to_string());
            }
        }
    }
    files
}

fn without_unit_tests(text: &str) -> &str {
    let mut at = 0;
    while let Some(found) = text[at..].find("#[cfg(test)]") {
        let start = at + found;
        let rest = text[start + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod ") || rest.starts_with("pub mod ") {
            return &text[..start];
        }
        at = start + 1;
    }
    text
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module paths a file names: `crate::a::b::c` gives [a, b, c]; `crate::a::{b, c::d}`
/// gives [a, b] and [a, c, d].
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find("crate::") {
        let start = at + found;
        at = start + "crate::".len();
        if text[..start].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let mut parts = Vec::new();
        let mut rest = &text[at..];
        loop {
            let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
            if len == 0 {
                break;
            }
            parts.push(rest[..len].to_string());
            rest = &rest[len..];
            if let Some(next) = rest.strip_prefix("::") {
                rest = next;
            } else {
                break;
            }
        }
        if let Some(inner) = rest.strip_prefix('{') {
            let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
            for item in inner.split(',') {
                let item: Vec<String> = item
                    .trim()
                    .split(" as ")
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty() && s != "self")
                    .collect();
                let mut path = parts.clone();
                path.extend(item);
                paths.push(path);
            }
        }
        if !parts.is_empty() {
            paths.push(parts);
        }
    }
    paths
}

/// The file that defines the longest prefix of `parts`: a/b.rs or a/b/mod.rs.
fn module_file(files: &BTreeMap<String, String>, parts: &[String]) -> Option<String> {
    (1..=parts.len()).rev().find_map(|i| {
        let base = parts[..i].join("/");
        [format!("{base}.rs"), format!("{base}/mod.rs")]
            .into_iter()
            .find(|f| files.contains_key(f))
    })
}

fn top_module(file: &str) -> &str {
    let first = file.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

#[test]
fn every_top_level_module_has_a_layer() {
    let unassigned: BTreeSet<String> = sources()
        .keys()
        .map(|f| top_module(f).to_string())
        .filter(|m| !matches!(m.as_str(), "lib" | "main") && layer(m).is_none())
        .collect();
    assert!(
        unassigned.is_empty(),
        "give these modules a layer in tests/layers.rs: {unassigned:?}"
    );
}

#[test]
fn no_module_imports_from_a_layer_above() {
    let files = sources();
    let mut upward = Vec::new();
    for (file, text) in &files {
        let Some(own) = layer(top_module(file)) else {
            continue;
        };
        for path in crate_paths(text) {
            if let Some(theirs) = layer(&path[0])
                && theirs > own
            {
                upward.push(format!("{file} uses crate::{}", path.join("::")));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports from a layer above:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_import_cycle_between_files() {
    let files = sources();
    let mut edges: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in &files {
        let targets = crate_paths(text)
            .iter()
            .filter_map(|p| module_file(&files, p))
            .filter(|t| t != file)
            .collect();
        edges.insert(file, targets);
    }
    // A cycle exists when some file reaches itself: depth-first search with colours.
    fn visit<'a>(
        file: &'a str,
        edges: &'a BTreeMap<&str, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(file) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|f| *f == file).unwrap();
                let mut cycle: Vec<String> = path[from..].iter().map(|f| f.to_string()).collect();
                cycle.push(file.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(file, 1);
        path.push(file);
        for next in edges.get(file).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(file, 2);
        None
    }
    let mut state = BTreeMap::new();
    for file in edges.keys() {
        if let Some(cycle) = visit(file, &edges, &mut state, &mut Vec::new()) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_imports() {
    // So that the tests above cannot pass by reading nothing.
    let paths = crate_paths(
        "use crate::store::{self, Txn, reader::Reader};\nx = crate::util::fs::read(p);",
    );
    let shown: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        shown,
        [
            "store",
            "store::Txn",
            "store::reader::Reader",
            "store",
            "util::fs::read"
        ]
    );
    assert!(sources().len() > 30);
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/lib.rs")
            .exists()
    );
}
