//! The JWT bearer grant (RFC 7523 section 2.1) for service-account keys such as Google's:
//! the stored value is the key file (JSON with `client_email`, `private_key` as PKCS#8 PEM,
//! `private_key_id`, `token_uri`); each token request carries an assertion signed with
//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 section 3.3) that lives an hour at
//! most. The key never leaves agentcred; programs get the access token.
//!
//! Signing uses the pure-Rust `rsa` crate, already built for age's SSH recipients: only
//! its `pem` and `sha2` features are added (one more small crate, `pem-rfc7468`), where
//! `ring` would bring a C/assembly build of its own.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::model::credential::CredentialName;

use super::*;

/// How long an assertion is valid (RFC 7523 section 3: the server may refuse longer).
const ASSERTION_LIFETIME: i64 = 3600;
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A service-account key file, as far as the grant needs it. Not `Debug`.
#[derive(Deserialize)]
pub struct KeyFile {
    pub client_email: String,
    private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub token_uri: String,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_key);
    }
}

impl KeyFile {
    /// Read a key file; the message never quotes it.
    pub fn parse(name: &CredentialName, value: &[u8]) -> Result<KeyFile> {
        serde_json::from_slice(value).map_err(|e| Error::InvalidValue {
            what: "service-account key",
            input: name.to_string(),
            reason: format!(
                "it is not a JSON key file with client_email, private_key and token_uri ({})",
                e.classify_name()
            ),
        })
    }

    fn signing_key(&self, name: &CredentialName) -> Result<SigningKey<Sha256>> {
        let key =
            RsaPrivateKey::from_pkcs8_pem(&self.private_key).map_err(|_| Error::InvalidValue {
                what: "service-account key",
                input: name.to_string(),
                reason: "its private_key is not an RSA key in PKCS#8 PEM".into(),
            })?;
        Ok(SigningKey::<Sha256>::new(key))
    }
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
            serde_json::error::Category::Data => "a field is missing or of the wrong type",
        }
    }
}

/// The signed assertion: `header.claims.signature`, each base64url.
pub fn assertion(
    name: &CredentialName,
    key: &KeyFile,
    scope: Option<&str>,
    audience: &str,
    now: i64,
) -> Result<Zeroizing<String>> {
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = &key.private_key_id {
        header["kid"] = kid.clone().into();
    }
    let mut claims = serde_json::json!({
        "iss": key.client_email,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    });
    if let Some(scope) = scope {
        claims["scope"] = scope.into();
    }
    let mut jwt = Zeroizing::new(format!(
        "{}.{}",
        BASE64URL.encode(header.to_string()),
        BASE64URL.encode(claims.to_string())
    ));
    let signature = key.signing_key(name)?.sign(jwt.as_bytes());
    jwt.push('.');
    jwt.push_str(&BASE64URL.encode(signature.to_bytes()));
    Ok(jwt)
}

/// Mint an access token with the key in `client.secret`.
pub(super) fn request(client: &Client) -> Result<Token> {
    let key = KeyFile::parse(client.name, client.secret.expose_secret())?;
    let now = crate::model::rotation::now().as_second();
    let jwt = assertion(
        client.name,
        &key,
        client.config.scope.as_deref(),
        &client.config.token_url,
        now,
    )?;
    let mut body = Zeroizing::new(format!(
        "grant_type={}&assertion=",
        *form_encode(GRANT_TYPE.as_bytes())
    ));
    body.push_str(&jwt);
    super::request(client, body)
}
