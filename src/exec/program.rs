//! The program `exec` runs: found like `execvp`, pinned by its canonical path and hash, and
//! the error env(1) would give when it cannot be started.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::util::hash::sha256_reader;
use crate::util::output::escape;

/// Where `execvp` looks when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The file name of CMD as given (`./bin/mybot` -> `mybot`), when it is text.
pub fn program_basename(program: &OsStr) -> Option<&str> {
    Path::new(program).file_name().and_then(OsStr::to_str)
}

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

/// Multi-call binaries: one file that is `sh`, `ls`, `wget` and the rest, by the name it is
/// run as. Pinning one by its own name would pin every applet.
const MULTI_CALL: &[&str] = &["busybox", "toybox"];

/// A pin: the canonical path, and the name the program is run as (its file name as given,
/// which a multi-call binary dispatches on: `deploy` for a symlink to busybox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub path: String,
    pub name: String,
}

/// Resolve `--program PATH` for `agent add`: through `PATH` when it has no `/`, to the
/// canonical path that will be pinned, and the name it is run as. Not found is exit 4; it
/// must be text to be stored; a multi-call binary is pinned by an applet's name only.
pub fn pin_program(program: &OsStr, path_var: Option<&OsStr>) -> Result<Pin> {
    let name = program_basename(program)
        .ok_or_else(|| Error::Usage("the program's file name is not UTF-8 text".into()))?
        .to_string();
    if MULTI_CALL.contains(&name.as_str()) {
        return Err(Error::Usage(format!(
            "{name} is a multi-call binary: pinning it pins every program it can be; pin the one it runs as (a symlink named like it, such as /usr/local/bin/deploy)"
        )));
    }
    let path = pin_path(program, path_var)?;
    Ok(Pin { path, name })
}

fn pin_path(program: &OsStr, path_var: Option<&OsStr>) -> Result<String> {
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

/// A pinned program opened once: hashed through this file, and run through it
/// (`/dev/fd/N`), so that what runs is what was hashed, whatever is renamed over its path
/// meanwhile. The descriptor is kept open across `exec` (a script's interpreter opens it
/// by that name; the program inherits one read-only descriptor of its own file).
pub struct OpenedProgram {
    pub file: std::fs::File,
    pub sha256: String,
}

impl OpenedProgram {
    pub fn open(path: &Path) -> Result<Self> {
        let shown = || format!("cannot read {}", escape(&path.to_string_lossy()));
        let file = std::fs::File::open(path).map_err(|e| Error::io(shown(), e))?;
        let sha256 = sha256_reader(&file).map_err(|e| Error::io(shown(), e))?;
        rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::empty())
            .map_err(|e| Error::io(shown(), e.into()))?;
        Ok(OpenedProgram { file, sha256 })
    }

    /// The name that runs this open file.
    pub fn run_path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/dev/fd/{}", self.file.as_raw_fd()))
    }
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
