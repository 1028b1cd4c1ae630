//! Reading a secret value: a hidden prompt with confirmation on a terminal, else all of
//! stdin (one trailing newline stripped), or a file's exact bytes. Never from argv.

use std::io::{IsTerminal, Read};
use std::path::Path;

use secrecy::SecretSlice;
use zeroize::Zeroizing;

use crate::cli::context::Ctx;
use crate::error::{Error, Result};
use crate::model::credential::CredentialName;

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
            return Err(Error::Usage(
                "no value: pipe it on stdin or use --from-file (prompting is off)".into(),
            ));
        }
        let typed = dialoguer::Password::new()
            .with_prompt(format!("Value for {name}"))
            .with_confirmation("Again", "The two values differ")
            .interact()
            .map_err(|e| {
                Error::io(
                    "cannot read the value",
                    std::io::Error::other(e.to_string()),
                )
            })?;
        Zeroizing::new(typed.into_bytes())
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
        return Err(Error::Usage(format!("the value for {name} is empty")));
    }
    if value.len() > MAX_VALUE {
        return Err(Error::Usage(format!(
            "the value for {name} is larger than 16 MiB"
        )));
    }
    Ok(SecretSlice::from(value.to_vec()))
}
