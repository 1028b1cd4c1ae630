//! Who and where: the `user@host` that history events and audit lines record.

/// `user@host`, for rotation history and the audit log.
pub fn user_at_host() -> String {
    // The account (getpwuid, through NSS like `id -un`), not `$USER`: the audit log records
    // who ran the command, and the environment is whatever the caller made it. Without an
    // account entry (a container's arbitrary uid), `uid N`.
    let uid = nix::unistd::Uid::current();
    let user = match nix::unistd::User::from_uid(uid) {
        Ok(Some(account)) => account.name,
        _ => format!("uid {uid}"),
    };
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    crate::util::output::escape(&format!("{user}@{host}"))
}
