//! Who and where: the `user@host` that history events and audit lines record.

use std::io::BufRead;
use std::path::Path;

/// `user@host`, for rotation history and the audit log.
pub fn user_at_host() -> String {
    // The account (like `id -un`), not `$USER`: the audit log records who ran the
    // command, and the environment is whatever the caller made it. Without an account
    // entry (a container's arbitrary uid), `uid N`.
    let uid = rustix::process::getuid().as_raw();
    let user = account_name(Path::new("/etc/passwd"), uid).unwrap_or_else(|| format!("uid {uid}"));
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    crate::util::output::escape(&format!("{user}@{host}"))
}

/// The name of the account `uid`: from `passwd` (the local account file) when it has the
/// account, else from NSS (`getpwuid_r`) for accounts kept elsewhere (LDAP, sssd,
/// systemd's dynamic users).
///
/// Local accounts first, as Go's `os/user` does without cgo: NSS asks `nscd`'s socket
/// twice and reads `nsswitch.conf` before it reads the same file, about 0.1 ms of every
/// audited command (`exec` included) on the test VM, where the whole overhead allowed is
/// 1 ms (docs/performance.md). Most `nsswitch.conf` files put `files` first, so the
/// answer is the one NSS gives; where another source comes first (RHEL's `sssd`
/// profile: `sss files systemd`), it still is unless that source gives a local uid
/// another name, which this would not see.
fn account_name(passwd: &Path, uid: u32) -> Option<String> {
    if let Some(name) = std::fs::File::open(passwd)
        .ok()
        .and_then(|file| local_account(std::io::BufReader::new(file), uid))
    {
        return Some(name);
    }
    nss_account(uid).ok().flatten()
}

/// The name NSS gives the account `uid` (`getpwuid_r`).
fn nss_account(uid: u32) -> nix::Result<Option<String>> {
    let account = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))?;
    Ok(account.map(|account| account.name))
}

/// The name on the first line of a `passwd` file (`name:password:uid:gid:...`) whose uid
/// is `uid`, as glibc's `files` source reads it: leading blanks are skipped; lines that
/// are then empty, comments (`#`) or NIS markers (`+`, `-`) are not accounts, nor is a
/// line without a numeric uid and gid.
fn local_account(mut input: impl BufRead, uid: u32) -> Option<String> {
    let number = |field: &[u8]| std::str::from_utf8(field).ok()?.parse::<u32>().ok();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let mut fields = line.trim_ascii().split(|b| *b == b':');
        let (Some(name), Some(uid_field), Some(gid_field)) =
            (fields.next(), fields.nth(1), fields.next())
        else {
            continue;
        };
        if name.is_empty() || matches!(name[0], b'#' | b'+' | b'-') {
            continue;
        }
        if number(gid_field).is_some() && number(uid_field) == Some(uid) {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lookup(text: &str, uid: u32) -> Option<String> {
        local_account(text.as_bytes(), uid)
    }

    #[test]
    fn the_first_account_with_the_uid_is_its_name() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                      toor:x:0:0::/root:/bin/sh\n\
                      ci:x:1000:1000::/home/ci:/bin/sh";
        assert_eq!(lookup(passwd, 0).as_deref(), Some("root"));
        assert_eq!(lookup(passwd, 1).as_deref(), Some("daemon"));
        // The last line needs no newline.
        assert_eq!(lookup(passwd, 1000).as_deref(), Some("ci"));
        assert_eq!(lookup(passwd, 1001), None);
    }

    #[test]
    fn comments_nis_markers_and_broken_lines_are_not_accounts() {
        let passwd = "#root:x:0:0::/:/bin/sh\n\
                      +:x:0:0:::\n\
                      -bad:x:0:0:::\n\
                      :x:0:0:::\n\
                      short:x\n\
                      wrong:x:zero:0:::\n\
                      big:x:99999999999:0:::\r\n\
                      \n\
                      nogid:x:0::::\n\
                      badgid:x:0:root:::\n\
                      \t  \n\
                      \t#tab:x:0:0:::\n\
                      crlf:x:7:7::/:/bin/sh\r\n\
                      \t  indented:x:8:8::/:/bin/sh\n\
                      real:x:0:0::/root:/bin/sh\n";
        assert_eq!(lookup(passwd, 0).as_deref(), Some("real"));
        assert_eq!(lookup(passwd, 7).as_deref(), Some("crlf"));
        assert_eq!(lookup(passwd, 8).as_deref(), Some("indented"));
        assert_eq!(lookup(passwd, 99), None);
    }

    #[test]
    fn without_a_readable_passwd_file_nss_answers() {
        let dir = tempfile::tempdir().unwrap();
        let me = rustix::process::getuid().as_raw();
        let expected = nss_account(me).unwrap();
        assert_eq!(account_name(&dir.path().join("none"), me), expected);
        std::fs::write(
            dir.path().join("passwd"),
            format!("someone:x:{me}:0::/:/bin/sh\n"),
        )
        .unwrap();
        assert_eq!(
            account_name(&dir.path().join("passwd"), me).as_deref(),
            Some("someone")
        );
    }

    #[test]
    fn the_local_answer_is_the_one_nss_gives_here() {
        // On this machine (a stock nsswitch.conf), for every account in /etc/passwd.
        let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some(uid) = line.split(':').nth(2).and_then(|u| u.parse::<u32>().ok()) else {
                continue;
            };
            assert_eq!(lookup(&text, uid), nss_account(uid).unwrap(), "uid {uid}");
        }
    }

    proptest! {
        #[test]
        fn any_file_is_read_without_panic_and_a_found_name_is_on_a_line_with_the_uid(
            text in proptest::collection::vec(any::<u8>(), 0..400),
            uid in 0u32..4,
        ) {
            if let Some(name) = local_account(&text[..], uid) {
                let line = format!("{name}:");
                prop_assert!(String::from_utf8_lossy(&text).contains(&line));
            }
        }

        #[test]
        fn an_account_among_others_is_found(
            before in proptest::collection::vec(("[a-z_][a-z0-9_-]{0,12}", 1u32..60000), 0..8),
            name in "[a-z_][a-z0-9_-]{0,12}",
        ) {
            let mut text = String::new();
            for (other, uid) in &before {
                text.push_str(&format!("{other}:x:{uid}:{uid}::/home/{other}:/bin/sh\n"));
            }
            text.push_str(&format!("{name}:x:0:0::/root:/bin/sh\n"));
            prop_assert_eq!(lookup(&text, 0), Some(name));
        }
    }
}
