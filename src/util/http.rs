//! How agentcred talks to servers (OAuth token endpoints, Vault): HTTPS only, except plain
//! HTTP to a loopback address where nothing leaves the machine; one overall timeout per
//! request; never a redirect (a credential is only ever sent to the URL configured);
//! proxies from the environment, but never for the machine itself. Certificates are checked
//! against the Mozilla roots built in (webpki-roots), not the system store; when
//! `SSL_CERT_FILE` names a PEM file, its certificates are the roots instead, as for curl
//! (ureq cannot add to the built-in set; the broker, which builds its own rustls
//! configuration, adds them to it).

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

/// The variable naming a PEM file of trust anchors.
pub const ENV_CERT_FILE: &str = "SSL_CERT_FILE";

/// The certificates in `SSL_CERT_FILE` (none when it is unset or empty). A file that
/// cannot be read or holds no certificate is an error (one line naming it): silently
/// trusting something else than asked would look like a server problem.
pub fn extra_anchors() -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let Some(path) = std::env::var_os(ENV_CERT_FILE).filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let shown = escape(&path.to_string_lossy());
    let bytes =
        std::fs::read(&path).map_err(|e| format!("cannot read {ENV_CERT_FILE} {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("{ENV_CERT_FILE} {shown} is not a PEM certificate file"))?;
    if certs.is_empty() {
        return Err(format!("{ENV_CERT_FILE} {shown} holds no certificate"));
    }
    Ok(certs)
}

/// The TLS settings for ureq: the built-in roots, or `SSL_CERT_FILE`'s (a warning when it
/// cannot be used, and the built-in roots).
fn tls_config() -> ureq::tls::TlsConfig {
    let builder = ureq::tls::TlsConfig::builder();
    match extra_anchors() {
        Ok(certs) if certs.is_empty() => builder.build(),
        Ok(certs) => builder
            .root_certs(ureq::tls::RootCerts::new_with_certs(
                &certs
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                    .collect::<Vec<_>>(),
            ))
            .build(),
        Err(e) => {
            eprintln!("warning: {e}; using the built-in roots");
            builder.build()
        }
    }
}

/// An HTTP client for one server: `loopback` allows plain HTTP and skips proxies.
pub fn agent(loopback: bool, timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls_config())
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
