//! The seam between the `http_request` tool and the broker (CONTRACT section 10): the tool
//! checks what the model asked for (allow list, rotation policy, path, headers, the
//! placeholder) and audits it; an [`Upstream`] sends the one request along the
//! credential's route with the real header set, follows no redirect, and returns the
//! response scrubbed and capped. The tool scrubs it once more before the model sees it.

use secrecy::SecretSlice;

use crate::credential::CredentialName;
use crate::error::Result;
use crate::manifest::Entry;

/// The most response body handed to the model.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// The largest request body the model may send.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// One request, checked: `path` is absolute and stays under the route's base path.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The upstream's answer. `body` holds at most [`MAX_RESPONSE_BODY`] bytes.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    /// Where a redirect pointed (not followed).
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub truncated: bool,
}

/// Where a credential's requests go, and how one is sent.
pub trait Upstream {
    /// The host of the credential's route, for `list_credentials` and the audit log;
    /// `None` when it has no route.
    fn host(&self, entry: &Entry) -> Option<String>;
    /// The header the route sets (lowercase), which the model may not send itself.
    fn credential_header(&self, entry: &Entry) -> Option<String>;
    /// Send one request with the credential's value (for an oauth2 credential: its
    /// client secret; the route mints the token).
    fn send(
        &self,
        name: &CredentialName,
        entry: &Entry,
        value: &SecretSlice<u8>,
        request: &Request,
    ) -> Result<Response>;
}

/// No broker in this build: no credential has a route.
pub struct NoRoutes;

impl Upstream for NoRoutes {
    fn host(&self, _entry: &Entry) -> Option<String> {
        None
    }
    fn credential_header(&self, _entry: &Entry) -> Option<String> {
        None
    }
    fn send(
        &self,
        name: &CredentialName,
        _entry: &Entry,
        _value: &SecretSlice<u8>,
        _request: &Request,
    ) -> Result<Response> {
        Err(crate::error::Error::Unsupported(format!(
            "credential {name} has no upstream route"
        )))
    }
}
