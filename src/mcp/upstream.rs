//! `http_request` through the broker (CONTRACT section 10): the tool checks what the model
//! asked for (allow list, rotation policy, path, headers, placeholders) and then sends the
//! one request through a broker session started for that credential alone, so the broker
//! sets the real header toward the credential's upstream only, follows no redirect,
//! refuses its placeholder and scrubs the value out of the answer. The session lives for
//! one call: the value is read afresh each time and is not kept between calls.

use std::sync::{Arc, Mutex};

use secrecy::SecretSlice;

use crate::audit::{self, Draft};
use crate::broker::session::Session;
use crate::broker::{AuditEvent, AuditFn};
use crate::error::{Error, Result};
use crate::manifest::Entry;
use crate::model::credential::CredentialName;

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

/// The upstream's answer, scrubbed by the broker. `body` holds at most
/// [`MAX_RESPONSE_BODY`] bytes.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    /// Where a redirect pointed (not followed).
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub truncated: bool,
}

/// The host of the credential's route; `None` when it has none.
pub fn host(entry: &Entry) -> Option<String> {
    Some(entry.upstream.as_ref()?.origin().ok()?.host)
}

/// The header the route sets (lowercase), which the model may not send itself.
pub fn credential_header(entry: &Entry) -> Option<String> {
    Some(entry.upstream.as_ref()?.header_template().ok()?.name)
}

/// `path?query`, the query percent-encoded (RFC 3986 unreserved characters kept).
pub fn path_and_query(request: &Request) -> String {
    let mut out = request.path.clone();
    for (i, (key, value)) in request.query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        encode(&mut out, key);
        out.push('=');
        encode(&mut out, value);
    }
    out
}

fn encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Send one request with the credential's value (an oauth2 credential's client secret:
/// the broker mints the token). The broker's audit event for it is written to the log
/// as `draft` (the request, its status and the decision as outcome); the answer is only
/// returned once that event is written.
pub fn send(
    store: &crate::oauth::StoreAccess,
    draft: &Draft,
    name: &CredentialName,
    entry: &Entry,
    value: &SecretSlice<u8>,
    request: &Request,
) -> Result<Response> {
    let written: Arc<Mutex<Vec<Result<()>>>> = Arc::default();
    let callback: AuditFn = {
        let (root, draft, written) = (store.root.clone(), draft.clone(), written.clone());
        Box::new(move |event: AuditEvent| {
            let decision = event.decision.as_str();
            let draft = Draft {
                request: Some(audit::Request {
                    method: event.method,
                    host: event.host,
                    path: event.path,
                    status: event.status,
                    decision: decision.into(),
                }),
                ..draft.clone()
            };
            let result = audit::append(&root, &draft, decision).map(|_| ());
            if let Ok(mut written) = written.lock() {
                written.push(result);
            }
        })
    };
    let session = Session::start(
        vec![(name.clone(), entry.clone(), value.clone())],
        Some(callback),
        Some(store.clone()),
    )?;
    let reply = session.broker().send(
        name.as_str(),
        &request.method,
        &path_and_query(request),
        &request.headers,
        &request.body,
        MAX_RESPONSE_BODY,
    );
    // Waits until the broker has handed over its audit event.
    session.stop();
    let reply = reply?;
    let outcomes = std::mem::take(&mut *written.lock().map_err(|_| audit_missing())?);
    match outcomes.into_iter().next() {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(e),
        None => return Err(audit_missing()),
    }
    let header = |wanted: &str| {
        reply
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.clone())
    };
    Ok(Response {
        status: reply.status,
        content_type: header("content-type"),
        location: header("location"),
        truncated: reply.truncated,
        body: reply.body,
    })
}

fn audit_missing() -> Error {
    Error::io(
        "the request was not audited",
        std::io::Error::other("the broker reported no event"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_percent_encoded() {
        let request = Request {
            method: "GET".into(),
            path: "/v1/search".into(),
            query: vec![("q".into(), "a b&c=d/é".into()), ("n".into(), "5".into())],
            headers: Vec::new(),
            body: Vec::new(),
        };
        assert_eq!(
            path_and_query(&request),
            "/v1/search?q=a%20b%26c%3Dd%2F%C3%A9&n=5"
        );
    }
}
