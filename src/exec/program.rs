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

/// What to run after [`check_program`]: a path, and, for a hash-pinned program, the open
/// file that was hashed (to be kept open until the program starts: `path` names it).
pub struct Checked {
    pub path: PathBuf,
    pub opened: Option<OpenedProgram>,
}

/// Refuse to give an agent's credentials to anything but its pinned program, run under
/// its pinned name (`invoked`: CMD as typed; a multi-call binary is another program under
/// another name), and, when a hash is pinned, to that program changed: the file is hashed
/// and run through one open descriptor, so a rename between the two cannot swap it.
pub fn check_program(chosen: &Chosen, program: &Program, invoked: &OsStr) -> Result<Checked> {
    let Some(pinned) = &chosen.agent.program else {
        return Ok(Checked {
            path: program.found.clone(),
            opened: None,
        });
    };
    let wrong = |shown: String| Error::WrongProgram {
        agent: chosen.name.to_string(),
        pinned: escape(pinned),
        program: shown,
    };
    if program.canonical != Path::new(pinned) {
        return Err(wrong(escape(&program.canonical.to_string_lossy())));
    }
    let expected_name = chosen
        .agent
        .program_name
        .as_deref()
        .or_else(|| program_basename(OsStr::new(pinned)));
    let invoked_name = program_basename(invoked);
    if invoked_name != expected_name {
        return Err(wrong(format!(
            "{} run as {}",
            escape(pinned),
            escape(invoked_name.unwrap_or("?"))
        )));
    }
    let Some(expected) = &chosen.agent.program_sha256 else {
        return Ok(Checked {
            path: program.canonical.clone(),
            opened: None,
        });
    };
    let opened = OpenedProgram::open(&program.canonical)?;
    if !integrity::tags_equal(&opened.sha256, expected) {
        return Err(Error::ProgramChanged {
            agent: chosen.name.to_string(),
            program: escape(pinned),
        });
    }
    Ok(Checked {
        path: opened.run_path(),
        opened: Some(opened),
    })
}
