//! TLS toward upstreams: rustls with the ring provider, the Mozilla roots built in
//! (webpki-roots), plus the certificates in `SSL_CERT_FILE` when it is set, as curl and
//! OpenSSL add them (a company CA, a test CA on loopback).

use std::sync::Arc;

use rustls::RootCertStore;

use crate::error::{Error, Result};
use crate::util::http::{ENV_CERT_FILE, extra_anchors};

/// The built-in roots plus `SSL_CERT_FILE`'s.
pub fn root_store() -> Result<RootCertStore> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra_anchors().map_err(Error::Usage)? {
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
