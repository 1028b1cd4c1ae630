//! TLS toward upstreams: rustls with the ring provider, the Mozilla roots built in
//! (webpki-roots), plus the certificates in `SSL_CERT_FILE` when it is set, as curl and
//! OpenSSL add them (a company CA, a test CA on loopback).

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Error, Result};

/// The variable naming a PEM file of extra trust anchors.
pub const ENV_CERT_FILE: &str = "SSL_CERT_FILE";

/// The certificates in `SSL_CERT_FILE` (none when it is unset or empty). A file that
/// cannot be read or holds no certificate is an error naming it: silently trusting less
/// than asked would look like a server problem.
pub fn extra_anchors() -> Result<Vec<CertificateDer<'static>>> {
    let Some(path) = std::env::var_os(ENV_CERT_FILE).filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let shown = crate::output::escape(&path.to_string_lossy());
    let bytes = std::fs::read(&path)
        .map_err(|e| Error::io(format!("cannot read {ENV_CERT_FILE} {shown}"), e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| {
            Error::Usage(format!(
                "{ENV_CERT_FILE} {shown} is not a PEM certificate file"
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Usage(format!(
            "{ENV_CERT_FILE} {shown} holds no certificate"
        )));
    }
    Ok(certs)
}

/// The built-in roots plus `SSL_CERT_FILE`'s.
pub fn root_store() -> Result<RootCertStore> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_anchors()? {
        roots.add(cert).map_err(|e| {
            Error::Usage(format!(
                "{ENV_CERT_FILE} holds a certificate that cannot be a trust anchor: {e}"
            ))
        })?;
    }
    Ok(roots)
}

/// The client configuration for upstream connections: HTTP/1.1 only (no ALPN h2).
pub fn client_config() -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(root_store()?)
        .with_no_client_auth();
    Ok(config)
}
