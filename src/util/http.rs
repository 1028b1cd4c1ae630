//! How agentcred talks to servers (OAuth token endpoints, Vault): HTTPS only, except plain
//! HTTP to a loopback address where nothing leaves the machine; one overall timeout per
//! request; never a redirect (a credential is only ever sent to the URL configured);
//! proxies from the environment, but never for the machine itself. Certificates are checked
//! against the Mozilla roots built in (webpki-roots), not the system store.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use crate::util::output::escape;

/// Whether a URL's host is the machine itself: 127.0.0.0/8, ::1 (or an IPv4-mapped
/// loopback address), or `localhost`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// An HTTP client for one server: `loopback` allows plain HTTP and skips proxies.
pub fn agent(loopback: bool, timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .https_only(!loopback)
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(if loopback {
            None
        } else {
            ureq::Proxy::try_from_env()
        })
        .user_agent(concat!("agentcred/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A transport failure in words. No secret can be in these: ureq's errors name the URL at
/// most, and agentcred's URLs hold no credentials.
pub fn describe_transport(
    endpoint: &str,
    e: ureq::Error,
    timeout: Duration,
    max_response: u64,
) -> String {
    match e {
        ureq::Error::Timeout(_) => {
            format!("{endpoint} did not answer within {} s", timeout.as_secs())
        }
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            format!("{endpoint} refused the connection")
        }
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
            format!("{endpoint} did not answer within {} s", timeout.as_secs())
        }
        ureq::Error::HostNotFound => format!("cannot find the host of {endpoint}"),
        ureq::Error::BodyExceedsLimit(_) => {
            format!("{endpoint} answered with more than {max_response} bytes")
        }
        ureq::Error::RequireHttpsOnly(_) => format!("{endpoint} is not https"),
        e => format!("cannot reach {endpoint}: {}", escape(&e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "localhost",
            "LOCALHOST.",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "128.0.0.1",
            "localhost.example.com",
            "[::2]",
            "example.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
