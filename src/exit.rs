//! The exit codes README documents ("Exit codes"), in one place.
//!
//! Scripts branch on these numbers, so they are part of the public interface: a change here
//! is a breaking change, and the unit tests below pin every value.

use std::process::ExitCode;

/// Every way `agentcred` can end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// Any error not listed below (a name that exists, a network failure, an I/O error).
    Failure,
    /// Unknown flag, bad duration, invalid name or environment variable.
    Usage,
    /// A credential is overdue (`due --check`, `exec --deny-overdue`).
    Overdue,
    /// Credential, agent or store not found.
    NotFound,
    /// Cannot unlock: no identity, wrong passphrase, identity file too open.
    Locked,
    /// Damaged or swapped secret file, bad manifest, broken audit chain.
    Integrity,
    /// An agent is not allowed a credential.
    Denied,
    /// `exec`: the command exists but cannot be run.
    NotExecutable,
    /// `exec`: the command does not exist.
    CommandNotFound,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Overdue => 3,
            Exit::NotFound => 4,
            Exit::Locked => 5,
            Exit::Integrity => 6,
            Exit::Denied => 7,
            Exit::NotExecutable => 126,
            Exit::CommandNotFound => 127,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn codes_match_the_contract() {
        let table = [
            (Exit::Success, 0),
            (Exit::Failure, 1),
            (Exit::Usage, 2),
            (Exit::Overdue, 3),
            (Exit::NotFound, 4),
            (Exit::Locked, 5),
            (Exit::Integrity, 6),
            (Exit::Denied, 7),
            (Exit::NotExecutable, 126),
            (Exit::CommandNotFound, 127),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
