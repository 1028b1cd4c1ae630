//! The program `exec` runs: found like `execvp`, pinned by its canonical path and hash, and
//! the error env(1) would give when it cannot be started.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::crypto::integrity;
use crate::error::{Error, Result};
use crate::policy::Chosen;
use crate::util::hash::sha256_reader;
use crate::util::output::escape;

pub use crate::util::fs::program_basename;

/// Where `execvp` looks when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// A program as `exec` runs it: the path found (like `execvp`: CMD with a `/` as given,
/// else the first executable `dir/CMD` along `PATH`, `./CMD` for an empty entry) and its
/// canonical form. `found` always has a `/`, so it is run as it is, never searched for
/// along `PATH` again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub found: PathBuf,
    pub canonical: PathBuf,
}

/// Resolve CMD like `execvp`, failing like `env(1)`: 127 when nothing is found, 126 when
/// what is found cannot be run.
pub fn resolve_program(program: &OsStr, path_var: Option<&OsStr>) -> Result<Program> {
    let shown = || escape(&program.to_string_lossy());
    let not_found = || Error::CommandNotFound { program: shown() };
    if program.is_empty() {
        return Err(not_found());
    }
    let candidates: Vec<PathBuf> = if program.as_encoded_bytes().contains(&b'/') {
        vec![PathBuf::from(program)]
    } else {
        let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
        std::env::split_paths(path_var)
            .map(|dir| {
                if dir.as_os_str().is_empty() {
                    Path::new(".").join(program)
                } else {
                    dir.join(program)
                }
            })
            .collect()
    };
    let mut seen_unrunnable = false;
    for candidate in candidates {
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() && is_executable(&candidate) => {
                let canonical = std::fs::canonicalize(&candidate)
                    .map_err(|e| Error::io(format!("cannot resolve {}", shown()), e))?;
                return Ok(Program {
                    found: candidate,
                    canonical,
                });
            }
            Ok(_) => seen_unrunnable = true,
            Err(_) => {}
        }
    }
    if seen_unrunnable {
        Err(Error::NotExecutable { program: shown() })
    } else {
        Err(not_found())
    }
}

fn is_executable(path: &Path) -> bool {
    rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
}

/// Resolve `--program PATH` for `agent add`: through `PATH` when it has no `/`, to the
/// canonical path that will be pinned. Not found is exit 4; it must be text to be stored.
pub fn pin_program(program: &OsStr, path_var: Option<&OsStr>) -> Result<String> {
    let resolved = resolve_program(program, path_var).map_err(|e| match e {
        Error::CommandNotFound { program } => Error::ProgramNotFound { program },
        Error::NotExecutable { program } => {
            Error::Usage(format!("program {program} is not an executable file"))
        }
        other => other,
    })?;
    resolved
        .canonical
        .into_os_string()
        .into_string()
        .map_err(|p| {
            Error::Usage(format!(
                "the program path {} is not UTF-8 text, which the manifest cannot hold",
                escape(&p.to_string_lossy())
            ))
        })
}

/// The SHA-256 (hex) of a program's file.
pub fn program_sha256(path: &Path) -> Result<String> {
    std::fs::File::open(path)
        .and_then(sha256_reader)
        .map_err(|e| {
            Error::io(
                format!("cannot read {}", escape(&path.to_string_lossy())),
                e,
            )
        })
}

/// Why a program could not be started, as env(1) reports it: 127 not found, 126 otherwise.
pub fn launch_error(program: &OsStr, error: io::Error) -> Error {
    let program = escape(&program.to_string_lossy());
    match error.kind() {
        io::ErrorKind::NotFound => Error::CommandNotFound { program },
        io::ErrorKind::PermissionDenied => Error::NotExecutable { program },
        _ => Error::NotExecutable {
            program: format!("{program}: {error}"),
        },
    }
}

/// Refuse to give an agent's credentials to anything but its pinned program (and, when a
/// hash is pinned, to that program changed). Returns the path to run: the checked one.
pub fn check_program(chosen: &Chosen, program: &Program) -> Result<PathBuf> {
    let Some(pinned) = &chosen.agent.program else {
        return Ok(program.found.clone());
    };
    if program.canonical != Path::new(pinned) {
        return Err(Error::WrongProgram {
            agent: chosen.name.to_string(),
            pinned: escape(pinned),
            program: escape(&program.canonical.to_string_lossy()),
        });
    }
    if let Some(expected) = &chosen.agent.program_sha256 {
        let actual = program_sha256(&program.canonical)?;
        if !integrity::tags_equal(&actual, expected) {
            return Err(Error::ProgramChanged {
                agent: chosen.name.to_string(),
                program: escape(pinned),
            });
        }
    }
    Ok(program.canonical.clone())
}
