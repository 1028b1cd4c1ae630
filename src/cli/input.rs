//! Reading a secret value: a hidden prompt with confirmation on a terminal, else all of
//! stdin (one trailing newline stripped), or a file's exact bytes. Never from argv.

use std::io::{IsTerminal, Read};
use std::path::Path;

use secrecy::SecretSlice;
use zeroize::Zeroizing;

use crate::cli::context::Ctx;
use crate::error::{Error, Result};
use crate::model::credential::CredentialName;
use crate::util::prompt;

/// Largest value accepted: secrets, not payloads.
pub const MAX_VALUE: usize = 16 * 1024 * 1024;

pub fn read_value(
    ctx: &Ctx,
    name: &CredentialName,
    from_file: Option<&Path>,
) -> Result<SecretSlice<u8>> {
    let value = if let Some(path) = from_file {
        let mut bytes = Zeroizing::new(Vec::new());
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_VALUE as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        bytes
    } else if std::io::stdin().is_terminal() {
        if !ctx.may_prompt() {
            return Err(no_value(name, "prompting is off"));
        }
        let typed = prompt::hidden(&format!("Value for {name}"), Some("Again"), "the value")
            .map_err(|e| Error::io("cannot read the value", e))?;
        Zeroizing::new(typed.as_bytes().to_vec())
    } else {
        let mut bytes = Zeroizing::new(Vec::new());
        std::io::stdin()
            .lock()
            .take(MAX_VALUE as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read the value from stdin", e))?;
        let strip = if bytes.ends_with(b"\r\n") {
            2
        } else {
            usize::from(bytes.ends_with(b"\n"))
        };
        let keep = bytes.len() - strip;
        bytes.truncate(keep);
        bytes
    };
    if value.is_empty() {
        return Err(match from_file {
            Some(path) => Error::Usage(format!(
                "the value for {name} is empty: {} is empty",
                path.display()
            )),
            None => no_value(name, "stdin was empty"),
        });
    }
    if value.len() > MAX_VALUE {
        return Err(Error::ValueTooLarge {
            name: name.to_string(),
        });
    }
    Ok(SecretSlice::from(value.to_vec()))
}

/// No value was given: say the ways to give one (never "the value is empty" for a stdin
/// that CI left closed).
fn no_value(name: &CredentialName, why: &'static str) -> Error {
    Error::NoValue {
        name: name.to_string(),
        why,
    }
}

/// Ask before a destructive change (`rm`, `recipients rm`, `doctor --reseal`). Without a
/// terminal to ask on, refuse (exit 2): there, destructive means `--yes`. `Ok(false)`
/// when the person said no.
pub fn confirm_destructive(may_prompt: bool, question: &str, what: &str) -> Result<bool> {
    if !may_prompt {
        return Err(Error::NeedsConfirmation {
            what: what.to_string(),
        });
    }
    confirm(question, false)
}

/// A yes/no question on the terminal.
pub fn confirm(question: &str, default: bool) -> Result<bool> {
    prompt::confirm(question, default).map_err(|e| Error::io("cannot read the answer", e))
}
