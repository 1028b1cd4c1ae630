//! `exec --broker`: which selected credentials are brokered and which go in raw, the
//! broker for the program's lifetime, and the variables the program gets instead of the
//! values (CONTRACT section 10).
//!
//! This is the exec side of the broker (it reads manifest entries and mints OAuth tokens);
//! the proxy itself ([`super::Broker`]) knows nothing of the store.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretSlice};

use super::{AuditFn, Broker, Config, DEFAULT_MAX_REQUEST_BODY, RouteConfig, SecretSource};
use crate::error::{Error, Result};
use crate::manifest::Entry;
use crate::mask::Patterns;
use crate::model::credential::{CredentialName, Kind};

/// One selected credential and its value, as `exec` reads them.
pub type Selected = (CredentialName, Entry, SecretSlice<u8>);

/// The selection split: injected as usual (raw), or brokered.
pub struct Split {
    pub raw: Vec<Selected>,
    pub brokered: Vec<Selected>,
}

/// Split the selection for `--broker`: a credential named in `raw` is injected as usual;
/// every other one must have an upstream, or the whole run is refused (exit 2) naming
/// those without, since running the program with a key it was meant not to hold is worse
/// than not running it.
pub fn split(selected: Vec<Selected>, raw: &[CredentialName]) -> Result<Split> {
    let chosen: BTreeSet<&str> = selected.iter().map(|(n, _, _)| n.as_str()).collect();
    if let Some(stray) = raw.iter().find(|n| !chosen.contains(n.as_str())) {
        return Err(Error::Usage(format!(
            "--raw {stray}: it is not among the selected credentials"
        )));
    }
    let missing: Vec<&str> = selected
        .iter()
        .filter(|(name, entry, _)| entry.upstream.is_none() && !raw.contains(name))
        .map(|(name, _, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        let one = missing.len() == 1;
        return Err(Error::Usage(format!(
            "--broker: {} {} no upstream, so {} cannot be brokered; give {} one (edit or add --force with --provider P or --upstream URL), or pass {} as is with --raw {}",
            missing.join(", "),
            if one { "has" } else { "have" },
            if one { "it" } else { "they" },
            if one { "it" } else { "each" },
            if one { "it" } else { "them" },
            missing.join(","),
        )));
    }
    let (raw, brokered) = selected
        .into_iter()
        .partition(|(name, _, _)| raw.contains(name));
    Ok(Split { raw, brokered })
}

/// A running broker and what the program gets from it.
pub struct Session {
    broker: Broker,
    /// Variables to set in the program's environment: placeholders and base URLs.
    env: Vec<(OsString, OsString)>,
    /// Every real value the broker holds (API keys, OAuth client secrets): no variable of
    /// the program's may contain one.
    guard: Option<Patterns>,
    /// For `-v`: one line per brokered credential.
    pub summary: Vec<String>,
}

impl Session {
    /// Start the broker for `brokered` (from [`split`]); `audit` gets each request.
    /// `store` lets an `authorization_code` credential's token be refreshed (its refresh
    /// token, which the server may rotate, is written back there).
    pub fn start(
        brokered: Vec<Selected>,
        audit: Option<AuditFn>,
        store: Option<crate::oauth::StoreAccess>,
    ) -> Result<Session> {
        let mut routes = Vec::with_capacity(brokered.len());
        let mut guarded: Vec<(String, SecretSlice<u8>)> = Vec::new();
        let mut vars: Vec<(String, Option<String>)> = Vec::new();
        for (name, entry, value) in brokered {
            let Some(upstream) = entry.upstream.as_deref().cloned() else {
                continue;
            };
            if entry.kind == Kind::Oauth2 {
                for secret in crate::oauth::secrets_of(&entry, &value) {
                    guarded.push((name.to_string(), secret));
                }
            } else {
                guarded.push((name.to_string(), value.clone()));
            }
            vars.push((
                entry.env.to_string(),
                upstream.base_url_env.as_ref().map(ToString::to_string),
            ));
            let (secret, scrub_also) = if entry.kind == Kind::Oauth2 {
                let scrub_also = crate::oauth::secrets_of(&entry, &value);
                let (name, entry, client_secret) = (name.clone(), entry.clone(), value.clone());
                let store = store.clone();
                let mint = move || {
                    crate::oauth::mint_for_broker(store.as_ref(), &name, &entry, &client_secret)
                        .map_err(|e| e.to_string())
                };
                (SecretSource::Minted(Arc::new(mint)), scrub_also)
            } else {
                (SecretSource::Static(value), Vec::new())
            };
            routes.push(RouteConfig {
                name: name.to_string(),
                upstream,
                secret,
                scrub_also,
            });
        }
        let broker = Broker::start(Config {
            routes,
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            audit,
        })?;
        let mut env = Vec::new();
        let mut summary = Vec::new();
        for (route, (key_var, base_var)) in broker.routes().iter().zip(vars) {
            env.push((OsString::from(&key_var), OsString::from(&route.placeholder)));
            let shown = format!("http://127.0.0.1:{}/…/{}", broker.port(), route.name);
            match base_var {
                Some(base_var) => {
                    env.push((OsString::from(&base_var), OsString::from(&route.base_url)));
                    summary.push(format!(
                        "{} through the broker ({key_var} holds a placeholder, {base_var}={shown})",
                        route.name
                    ));
                }
                None => summary.push(format!(
                    "{} through the broker ({key_var} holds a placeholder; the upstream names no base-URL variable, the program must be told {shown})",
                    route.name
                )),
            }
        }
        let guard =
            Patterns::build(guarded.iter().map(|(n, v)| (n.clone(), v.expose_secret())))?.patterns;
        Ok(Session {
            broker,
            env,
            guard,
            summary,
        })
    }

    #[allow(dead_code)] // the API of MCP's http_request (issue 18)
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Put the placeholders and base URLs into the program's environment `env` (over any
    /// inherited variable of the same name), and drop every variable that holds a
    /// brokered value (one the user exported under another name, say). Returns a warning
    /// for each dropped one.
    pub fn apply(&self, env: &mut Vec<(OsString, OsString)>) -> Vec<String> {
        env.retain(|(key, _)| !self.env.iter().any(|(k, _)| k == key));
        let mut warnings = Vec::new();
        if let Some(guard) = &self.guard {
            env.retain(|(key, value)| match holder(guard, value) {
                Some(name) => {
                    warnings.push(format!(
                        "warning: not passing {} to the program: it holds the value of {name}, which is brokered",
                        crate::util::output::escape(&key.to_string_lossy())
                    ));
                    false
                }
                None => true,
            });
        }
        env.extend(self.env.iter().cloned());
        warnings
    }

    /// Stop the broker, once the program has ended (waits for the audit log).
    pub fn stop(self) {
        self.broker.stop();
    }
}

/// The label of the first value (in any encoded form) found in `text`.
fn holder<'p>(guard: &'p Patterns, text: &OsStr) -> Option<&'p str> {
    let mut found = None;
    let mut redactor = crate::mask::Redactor::new(guard);
    let mut emit = |piece: crate::mask::Piece<'_>| -> std::result::Result<(), ()> {
        if let crate::mask::Piece::Found { label, .. } = piece {
            found.get_or_insert(label);
        }
        Ok(())
    };
    let _ = redactor.feed(text.as_bytes(), &mut emit);
    let _ = redactor.finish(&mut emit);
    found.map(|label| &guard.labels()[label])
}
