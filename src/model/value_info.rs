//! What a value says about itself, read without storing the value: a JWT's expiry, a Google
//! service-account key's account and key id.
//!
//! A token that expires is due for rotation when it expires, whatever the store's default
//! period says, so `add`, `import` and `rotate` look at each value and record what they can
//! read in the credential's entry (where the entry MAC covers it). Only public facts are
//! kept: never a claim other than `exp`, never the private key. Anything that does not
//! parse cleanly is simply not recognized.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::util::output::escape;

/// Values larger than this are not inspected: tokens and key files are a few KiB.
const MAX_INSPECTED: usize = 64 * 1024;

/// What was read from a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueInfo {
    pub format: ValueFormat,
    /// A JWT's `exp` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// A service-account key's `client_email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_email: Option<String>,
    /// A service-account key's `private_key_id` (the key's public id, not the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueFormat {
    Jwt,
    GoogleServiceAccount,
}

impl ValueFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueFormat::Jwt => "jwt",
            ValueFormat::GoogleServiceAccount => "google-service-account",
        }
    }

    /// For people: `JWT`, `Google service-account key`.
    pub fn describe(self) -> &'static str {
        match self {
            ValueFormat::Jwt => "JWT",
            ValueFormat::GoogleServiceAccount => "Google service-account key",
        }
    }
}

/// Recognize a value: a JWT or a Google service-account key file. `None` for anything else.
pub fn inspect(value: &[u8]) -> Option<ValueInfo> {
    if value.len() > MAX_INSPECTED {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.starts_with('{') {
        service_account(text)
    } else {
        jwt(text)
    }
}

/// `header.payload.signature`, each part base64url; the header a JSON object with `alg`.
fn jwt(text: &str) -> Option<ValueInfo> {
    #[derive(Deserialize)]
    struct Header {
        #[allow(dead_code)]
        alg: String,
    }
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<serde_json::Value>,
    }
    let mut parts = text.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || header.is_empty() || payload.is_empty() {
        return None;
    }
    let base64url = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b))
    };
    if ![header, payload, signature].into_iter().all(base64url) {
        return None;
    }
    let engine = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // JSON objects only (serde would also take `[..]` for a struct).
    let decode = |part: &str| {
        engine
            .decode(part)
            .ok()
            .map(Zeroizing::new)
            .filter(|json| json.trim_ascii_start().starts_with(b"{"))
    };
    serde_json::from_slice::<Header>(&decode(header)?).ok()?;
    let claims: Claims = serde_json::from_slice(&decode(payload)?).ok()?;
    let expires_at = claims
        .exp
        .and_then(|exp| exp.as_f64())
        .filter(|exp| exp.is_finite())
        // NumericDate may have a fraction; the manifest keeps whole seconds.
        .and_then(|exp| Timestamp::from_second(exp.floor() as i64).ok());
    Some(ValueInfo {
        format: ValueFormat::Jwt,
        expires_at,
        client_email: None,
        private_key_id: None,
    })
}

/// A key file made by `gcloud iam service-accounts keys create`.
fn service_account(text: &str) -> Option<ValueInfo> {
    // Only these fields are deserialized: the private key is skipped, never copied.
    #[derive(Deserialize)]
    struct KeyFile {
        #[serde(rename = "type")]
        kind: String,
        client_email: Option<String>,
        private_key_id: Option<String>,
    }
    let key: KeyFile = serde_json::from_str(text).ok()?;
    if key.kind != "service_account" {
        return None;
    }
    Some(ValueInfo {
        format: ValueFormat::GoogleServiceAccount,
        expires_at: None,
        client_email: key.client_email.and_then(|s| printable(s, 320)),
        private_key_id: key.private_key_id.and_then(|s| printable(s, 128)),
    })
}

/// Keep text that will be printed and stored only when it is short and plain.
fn printable(text: String, max: usize) -> Option<String> {
    (!text.is_empty() && text.len() <= max && escape(&text) == text).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn jwt_expiry() {
        let t = token(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"sub":"x","exp":1893456000}"#,
        );
        let info = inspect(t.as_bytes()).unwrap();
        assert_eq!(info.format, ValueFormat::Jwt);
        assert_eq!(
            info.expires_at,
            Some("2030-01-01T00:00:00Z".parse().unwrap())
        );
        // A fractional NumericDate, padding, and a trailing newline are all fine.
        let t = format!(
            "{}.{}.sig==\n",
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"exp":1893456000.75}"#)
        );
        assert_eq!(
            inspect(t.as_bytes()).unwrap().expires_at,
            Some("2030-01-01T00:00:00Z".parse().unwrap())
        );
        // A JWT without exp is still recognized, without an expiry.
        let t = token(r#"{"alg":"RS256"}"#, r#"{"sub":"x"}"#);
        assert_eq!(inspect(t.as_bytes()).unwrap().expires_at, None);
        let t = token(r#"{"alg":"RS256"}"#, r#"{"exp":"soon"}"#);
        assert_eq!(inspect(t.as_bytes()).unwrap().expires_at, None);
        let t = token(r#"{"alg":"RS256"}"#, r#"{"exp":1e300}"#);
        assert_eq!(inspect(t.as_bytes()).unwrap().expires_at, None);
    }

    #[test]
    fn not_jwts() {
        for value in [
            "sk-proj-abc.def.ghi",
            "a.b",
            "a.b.c.d",
            "",
            "ghp_0123456789",
            "{}",
            "not json at all {",
        ] {
            assert_eq!(inspect(value.as_bytes()), None, "{value}");
        }
        // Header not JSON with alg; payload not an object.
        assert_eq!(inspect(token(r#"{"typ":"JWT"}"#, "{}").as_bytes()), None);
        assert_eq!(inspect(token(r#"{"alg":"x"}"#, "[1]").as_bytes()), None);
        assert_eq!(inspect(&[0xff, b'.', b'a', b'.', b'b']), None);
    }

    #[test]
    fn service_account_key() {
        let key = r#"{
  "type": "service_account",
  "project_id": "demo",
  "private_key_id": "0123456789abcdef0123456789abcdef01234567",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
  "client_email": "bot@demo.iam.gserviceaccount.com",
  "client_id": "1234"
}"#;
        let info = inspect(key.as_bytes()).unwrap();
        assert_eq!(info.format, ValueFormat::GoogleServiceAccount);
        assert_eq!(
            info.client_email.as_deref(),
            Some("bot@demo.iam.gserviceaccount.com")
        );
        assert_eq!(
            info.private_key_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(info.expires_at, None);
        let json = serde_json::to_string(&info).unwrap();
        assert!(!json.contains("PRIVATE"), "{json}");
        // Other JSON, and odd text in the fields, is not recorded.
        assert_eq!(inspect(br#"{"type":"authorized_user"}"#), None);
        let odd = r#"{"type":"service_account","client_email":"a\u001b[2Jb"}"#;
        assert_eq!(inspect(odd.as_bytes()).unwrap().client_email, None);
    }
}
