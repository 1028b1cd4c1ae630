//! Who and where: the `user@host` that history events and audit lines record.

/// `user@host`, for rotation history.
pub fn user_at_host() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    crate::util::output::escape(&format!("{user}@{host}"))
}
