//! A credential's upstream (CONTRACT section 10): the API it is for, the header that
//! carries it, and the variable through which programs find that API. `exec --broker`
//! hands a program a placeholder and a local base URL instead of the value; the broker
//! (the `broker` module) puts the value on the wire, toward this upstream only.
//!
//! The upstream is a field of the manifest entry, so the entry's MAC covers it: only a
//! recipient of the store can point a credential at a host.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::model::credential::EnvVarName;
use crate::util::output::escape;

/// The longest upstream URL or header template accepted.
const MAX_TEXT: usize = 512;

/// Where a credential may be used, and how it is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// An `https` origin with an optional path prefix (`https://api.openai.com/v1`), or
    /// `http` to a loopback address. No query, fragment or user info; no trailing `/`.
    pub url: String,
    /// `Name: template`, the template holding `{}` (the value) or `{base64}` (the value
    /// base64-encoded, for `Authorization: Basic {base64}` with a `user:password` value).
    pub header: String,
    /// The variable through which programs find the API (`OPENAI_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url_env: Option<EnvVarName>,
}

/// An upstream URL split into what the broker needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `https` or `http`.
    pub scheme: String,
    /// `host[:port]`, as written.
    pub authority: String,
    /// The host alone (for the audit log and the loopback check).
    pub host: String,
    /// The path prefix, empty or starting with `/`, never ending with `/`.
    pub prefix: String,
}

/// How the header value is made from the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderTemplate {
    /// The header name, lowercase.
    pub name: String,
    pub before: String,
    pub encoding: Encoding,
    pub after: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    Base64,
}

impl HeaderTemplate {
    /// The header value for `secret`. Zeroized when dropped.
    pub fn value(&self, secret: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            self.before.len() + secret.len() * 2 + self.after.len(),
        ));
        out.extend_from_slice(self.before.as_bytes());
        match self.encoding {
            Encoding::Raw => out.extend_from_slice(secret),
            Encoding::Base64 => {
                let encoded = Zeroizing::new(BASE64.encode(secret));
                out.extend_from_slice(encoded.as_bytes());
            }
        }
        out.extend_from_slice(self.after.as_bytes());
        out
    }
}

impl Upstream {
    /// Check every part, as `add` and `edit` do before storing it (and the broker before
    /// using it).
    pub fn new(url: &str, header: &str, base_url_env: Option<&str>) -> Result<Upstream> {
        let upstream = Upstream {
            url: url.trim_end_matches('/').to_string(),
            header: header.trim().to_string(),
            base_url_env: base_url_env.map(EnvVarName::parse).transpose()?,
        };
        upstream.origin()?;
        upstream.header_template()?;
        Ok(upstream)
    }

    pub fn origin(&self) -> Result<Origin> {
        parse_origin(&self.url)
    }

    pub fn header_template(&self) -> Result<HeaderTemplate> {
        parse_header(&self.header)
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.url, self.header)?;
        if let Some(var) = &self.base_url_env {
            write!(f, ", base URL in {var}")?;
        }
        f.write_str(")")
    }
}

/// The header a route gets when none is named.
pub const DEFAULT_HEADER: &str = "Authorization: Bearer {}";

/// What `add` or `edit` asked for: keep the upstream, set one, change parts of it, or
/// remove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamChange {
    Keep,
    /// A whole route (a `--provider` preset).
    Set(Upstream),
    /// The parts named; the others stay as they are (`edit --upstream URL` keeps the
    /// header and the base-URL variable), or take their defaults on a new route.
    Update {
        url: Option<String>,
        header: Option<String>,
        base_url_env: Option<String>,
    },
    Remove,
}

impl UpstreamChange {
    /// Apply to an entry's upstream (for `add` and `edit`). A file credential cannot be
    /// brokered: its value goes to a file, not into a header.
    pub fn apply(
        self,
        kind: crate::model::credential::Kind,
        upstream: &mut Option<Box<Upstream>>,
    ) -> Result<()> {
        let new = match self {
            UpstreamChange::Keep => return Ok(()),
            UpstreamChange::Remove => {
                *upstream = None;
                return Ok(());
            }
            UpstreamChange::Set(new) => new,
            UpstreamChange::Update {
                url,
                header,
                base_url_env,
            } => {
                let current = upstream.as_deref();
                let Some(url) = url.or_else(|| current.map(|u| u.url.clone())) else {
                    return Err(Error::Usage(
                        "--header and --base-url-env change a route: this credential has none; give --upstream URL or --provider"
                            .into(),
                    ));
                };
                let header = header
                    .or_else(|| current.map(|u| u.header.clone()))
                    .unwrap_or_else(|| DEFAULT_HEADER.to_string());
                let base_url_env = base_url_env.or_else(|| {
                    current.and_then(|u| u.base_url_env.as_ref().map(ToString::to_string))
                });
                Upstream::new(&url, &header, base_url_env.as_deref())?
            }
        };
        if kind == crate::model::credential::Kind::File {
            return Err(Error::Usage(
                "a file credential cannot have an upstream: the broker sends a value in a header"
                    .into(),
            ));
        }
        *upstream = Some(Box::new(new));
        Ok(())
    }
}

fn bad(what: &str, text: &str, why: &str) -> Error {
    Error::Usage(format!("invalid upstream {what} {}: {why}", escape(text)))
}

/// Parse an upstream URL: `https://host[:port][/prefix]`, or `http://` to loopback.
pub fn parse_origin(url: &str) -> Result<Origin> {
    let url = url.trim_end_matches('/');
    if url.len() > MAX_TEXT {
        return Err(bad("URL", &url[..64], "it is too long"));
    }
    if url.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(bad("URL", url, "it has spaces or characters outside ASCII"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("URL", url, "it has no scheme (https://...)"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(bad(
            "URL",
            url,
            "only https (or http to loopback) is allowed",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(bad("URL", url, "it may not have a query or fragment"));
    }
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("URL", url, "it needs a host, without user info"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => {
            let end = v6
                .find(']')
                .ok_or_else(|| bad("URL", url, "unclosed [ in the host"))?;
            format!("[{}]", &v6[..end])
        }
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
            .to_string(),
    };
    if let Some(port) = authority
        .strip_prefix(host.as_str())
        .and_then(|p| p.strip_prefix(':'))
        && port.parse::<u16>().is_err()
    {
        return Err(bad("URL", url, "the port is not a number"));
    }
    if scheme == "http" && !crate::util::http::is_loopback(&host) {
        return Err(bad(
            "URL",
            url,
            "plain http is only allowed to a loopback address; use https",
        ));
    }
    if prefix.contains("//") || prefix.split('/').any(|s| s == ".." || s == ".") {
        return Err(bad("URL", url, "its path has empty, . or .. segments"));
    }
    Ok(Origin {
        scheme,
        authority: authority.to_string(),
        host: host.to_ascii_lowercase(),
        prefix: prefix.to_string(),
    })
}

/// Parse `Name: template` with exactly one `{}` or `{base64}` in the template.
pub fn parse_header(text: &str) -> Result<HeaderTemplate> {
    let text = text.trim();
    if text.len() > MAX_TEXT {
        return Err(bad("header", &text[..64], "it is too long"));
    }
    let (name, template) = text.split_once(':').ok_or_else(|| {
        bad(
            "header",
            text,
            "write it as 'Name: template', e.g. 'Authorization: Bearer {}'",
        )
    })?;
    let name = name.trim();
    let template = template.trim();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(bad(
            "header",
            text,
            "the header name is not a valid HTTP token",
        ));
    }
    if matches!(
        name.to_ascii_lowercase().as_str(),
        "host" | "content-length" | "transfer-encoding" | "connection" | "upgrade" | "te"
    ) {
        return Err(bad("header", text, "that header cannot carry a credential"));
    }
    if template
        .bytes()
        .any(|b| !(b == b' ' || b.is_ascii_graphic()))
    {
        return Err(bad(
            "header",
            text,
            "the template has control or non-ASCII characters",
        ));
    }
    let (marker, encoding) = if template.contains("{base64}") {
        ("{base64}", Encoding::Base64)
    } else {
        ("{}", Encoding::Raw)
    };
    let mut parts = template.splitn(2, marker);
    let before = parts.next().unwrap_or_default();
    let after = parts.next().ok_or_else(|| {
        bad(
            "header",
            text,
            "the template needs {} (or {base64}) where the value goes",
        )
    })?;
    if after.contains("{}") || after.contains("{base64}") || before.contains("{}") {
        return Err(bad("header", text, "the value may appear only once"));
    }
    Ok(HeaderTemplate {
        name: name.to_ascii_lowercase(),
        before: before.to_string(),
        encoding,
        after: after.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let o = parse_origin("https://api.openai.com/v1/").unwrap();
        assert_eq!(
            o,
            Origin {
                scheme: "https".into(),
                authority: "api.openai.com".into(),
                host: "api.openai.com".into(),
                prefix: "/v1".into(),
            }
        );
        let o = parse_origin("http://127.0.0.1:8080").unwrap();
        assert_eq!((o.host.as_str(), o.prefix.as_str()), ("127.0.0.1", ""));
        let o = parse_origin("http://[::1]:9/x").unwrap();
        assert_eq!(
            (o.host.as_str(), o.authority.as_str()),
            ("[::1]", "[::1]:9")
        );
        for bad in [
            "http://api.openai.com",
            "ftp://x",
            "api.openai.com",
            "https://u:p@host",
            "https://host/v1?x=1",
            "https://host/a#b",
            "https://host:99999",
            "https:///v1",
            "https://host/a/../b",
            "https://ho st",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers() {
        let h = parse_header("Authorization: Bearer {}").unwrap();
        assert_eq!(h.name, "authorization");
        assert_eq!(&*h.value(b"k"), b"Bearer k");
        let h = parse_header("x-api-key:{}").unwrap();
        assert_eq!(&*h.value(b"k"), b"k");
        let h = parse_header("Authorization: Basic {base64}").unwrap();
        assert_eq!(&*h.value(b"u:p"), b"Basic dTpw");
        for bad in [
            "Authorization Bearer {}",
            "Authorization: Bearer",
            "Host: {}",
            "Bad Name: {}",
            "X: {} {}",
            "X: a\u{7}{}",
        ] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
    }

    /// Property: on any input of URL-ish characters the parsers do not panic, and what they
    /// accept keeps the invariants the broker relies on.
    #[test]
    fn parsers_hold_their_invariants_on_random_input() {
        const ALPHABET: &[u8] = b"hHtTpPsS:/[]@?#.%{}0123456789abcxyz-_ ~localhost\x7f";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut text: String = (0..len)
                .map(|_| char::from(ALPHABET[(next() % ALPHABET.len() as u64) as usize]))
                .collect();
            if next() % 2 == 0 {
                text.insert_str(
                    0,
                    ["https://", "http://", "http://127.0.0.1"][(next() % 3) as usize],
                );
            }
            if let Ok(origin) = parse_origin(&text) {
                assert!(
                    origin.scheme == "https"
                        || (origin.scheme == "http"
                            && crate::util::http::is_loopback(&origin.host)),
                    "{text}"
                );
                assert!(
                    !origin.prefix.ends_with('/') && !origin.authority.contains('@'),
                    "{text}"
                );
                assert!(!text.contains(['?', '#']), "{text}");
            }
            if let Ok(header) = parse_header(&text) {
                assert!(
                    !header.name.is_empty() && !header.name.contains(' '),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn upstream_checks_all_parts() {
        let u = Upstream::new("https://api.x/v1/", "x-api-key: {}", Some("X_BASE_URL")).unwrap();
        assert_eq!(u.url, "https://api.x/v1");
        assert!(Upstream::new("https://api.x", "x-api-key: {}", Some("PATH")).is_err());
        assert!(Upstream::new("https://api.x", "nothing", None).is_err());
    }
}
