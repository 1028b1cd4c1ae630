//! `agentcred unlock` and `agentcred lock`: cache the decrypted identity in the Linux
//! kernel keyring for a while, and drop it (see [`crate::crypto::unlock_cache`]).

use clap::Args;

use crate::cli::context::Ctx;
use crate::crypto::identity;
use crate::crypto::unlock_cache;
use crate::error::Error;
use crate::store::value_cache;
use crate::util::output::escape;

/// The longest unlock: a cache that outlives a working day stops being one.
const MAX_SECONDS: u64 = 7 * 24 * 3600;

/// Cache your decrypted identity for a while, so commands stop asking for the passphrase
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred unlock --for 15m      # asks for the passphrase once (or takes AGENTCRED_PASSPHRASE)
  agentcred exec -- mybot          # no passphrase needed until it expires
  agentcred lock                   # forget it now

Linux only: the identity is kept in the kernel keyring of this login session, never on disk.")]
pub struct UnlockArgs {
    /// How long: 90s, 15m, 8h or 1d (at most 7d)
    #[arg(long = "for", value_name = "DUR", default_value = "15m", value_parser = parse_lifetime)]
    lifetime: Lifetime,
}

/// Forget the cached identity (undo `agentcred unlock`) and the store's value cache
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  agentcred lock

Also removes the store's value cache (cache/values: the age values this machine
decrypted, sealed with the store key); the next command decrypts from secrets/ again.")]
pub struct LockArgs {}

/// How long an unlock lasts, in seconds, with the text the user gave.
#[derive(Clone, Debug)]
pub struct Lifetime {
    seconds: u64,
    text: String,
}

pub fn parse_lifetime(input: &str) -> Result<Lifetime, String> {
    let bad = |reason: &str| {
        Error::InvalidValue {
            what: "duration",
            input: escape(input),
            reason: reason.into(),
        }
        .to_string()
    };
    let digits = input.bytes().take_while(u8::is_ascii_digit).count();
    let amount: u64 = input[..digits]
        .parse()
        .map_err(|_| bad("expected a number and a unit: 90s, 15m, 8h or 1d"))?;
    let unit = match &input[digits..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad("the unit must be s, m, h or d")),
    };
    match amount.checked_mul(unit) {
        Some(0) => Err(bad("it must be longer than zero")),
        Some(seconds) if seconds <= MAX_SECONDS => Ok(Lifetime {
            seconds,
            text: input.to_string(),
        }),
        _ => Err(bad("it is longer than 7d")),
    }
}

fn unavailable() -> Error {
    Error::Unsupported(
        "unlock and lock need the Linux kernel keyring, which this system does not have; set AGENTCRED_PASSPHRASE instead".into(),
    )
}

impl UnlockArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        if !unlock_cache::AVAILABLE {
            return Err(unavailable().into());
        }
        let Some((path, bytes)) = identity::passphrase_file()? else {
            eprintln!(
                "nothing to unlock: your identity has no passphrase (it is in the keychain, a plain file or AGENTCRED_IDENTITY)"
            );
            return Ok(());
        };
        let seconds = usize::try_from(self.lifetime.seconds).unwrap_or(usize::MAX);
        identity::cache_unlocked(&path, &bytes, ctx.unlock(), seconds)?;
        let until = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(
                i64::try_from(self.lifetime.seconds).unwrap_or(i64::MAX),
            ))
            .map(crate::util::output::rfc3339)
            .unwrap_or_default();
        eprintln!(
            "unlocked {} for {} (until {until}); `agentcred lock` forgets it sooner",
            path.display(),
            self.lifetime.text
        );
        Ok(())
    }
}

impl LockArgs {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<()> {
        // The store's value cache goes too: what it holds opens with the store key alone.
        match value_cache::remove(&ctx.store_dir) {
            Ok(true) => eprintln!(
                "removed the value cache of {}",
                escape(&ctx.store_dir.display().to_string())
            ),
            Ok(false) => {}
            Err(e) => {
                return Err(Error::io(
                    format!(
                        "cannot remove the value cache of {}",
                        escape(&ctx.store_dir.display().to_string())
                    ),
                    e,
                )
                .into());
            }
        }
        if !unlock_cache::AVAILABLE {
            return Err(unavailable().into());
        }
        let Some((path, bytes)) = identity::passphrase_file()? else {
            eprintln!("nothing to lock: your identity has no passphrase");
            return Ok(());
        };
        if unlock_cache::remove(&bytes)? {
            eprintln!("locked {}", path.display());
        } else {
            eprintln!("{} was not unlocked", path.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_lifetime;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("1s").unwrap().seconds, 1);
        assert_eq!(parse_lifetime("15m").unwrap().seconds, 900);
        assert_eq!(parse_lifetime("8h").unwrap().seconds, 28_800);
        assert_eq!(parse_lifetime("7d").unwrap().seconds, 604_800);
        for bad in [
            "",
            "m",
            "0s",
            "8d",
            "15",
            "15min",
            "-1s",
            "99999999999999999999s",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
