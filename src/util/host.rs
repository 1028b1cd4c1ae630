//! Who and where: the `user@host` that history events and audit lines record.

/// This process's user name from `/etc/passwd` (as `id -un` finds it when `$USER` is
/// unset, in containers and cron), else `uid N`.
fn user_from_passwd() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)? == uid.to_string()).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// `user@host`, for rotation history.
pub fn user_at_host() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(user_from_passwd);
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    crate::util::output::escape(&format!("{user}@{host}"))
}
