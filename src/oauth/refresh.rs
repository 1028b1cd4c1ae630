//! The refresh-token grant (RFC 6749 section 6) for `authorization_code` credentials, whose
//! stored value is what `agentcred login` obtained: the refresh token (and, for a
//! confidential client, its client secret), as a small JSON record ([`Stored`]).
//!
//! A server that rotates refresh tokens invalidates the old one the moment it answers, so
//! the new one is the only valid one. Order of work, under the credential's refresh lock
//! (the token cache's, so concurrent `token`/`exec` make one request):
//!
//! 1. read the stored value again (another process may have rotated it while this one
//!    waited) and look at the cache again with it;
//! 2. begin the store transaction (its exclusive lock) *before* the request, so that
//!    nothing needs waiting for between the answer and the write;
//! 3. send the request; on a rotated token, stage it and commit at once;
//! 4. only then cache the access token and hand it out.
//!
//! A process killed after step 3's commit loses nothing: the store has the new token. The
//! one window left is between the server's answer and the commit (a local disk write,
//! milliseconds): a kill there loses the new token, and the next run reports
//! `invalid_grant` and asks for `agentcred login`. No client can close that window alone;
//! servers that keep the previous token valid for a grace period close it from their side.

use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::manifest::Event;
use crate::model::credential::CredentialName;
use crate::store::Store;

use super::*;

/// The stored value of an `authorization_code` credential. Not `Debug`.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl Drop for Stored {
    fn drop(&mut self) {
        self.refresh_token.zeroize();
        self.client_secret.zeroize();
    }
}

impl Stored {
    /// Read a stored value. The message never quotes it.
    pub fn parse(name: &CredentialName, value: &[u8]) -> Result<Stored> {
        serde_json::from_slice(value).map_err(|_| Error::OAuthLoginNeeded {
            name: name.to_string(),
            detail: "its stored value is not a login record (was it replaced by hand?)".into(),
        })
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("strings always serialize")),
        )
    }
}

/// Kill the process at a named point, for the crash tests (debug builds only).
pub(super) fn fault(point: &str) {
    if cfg!(debug_assertions)
        && std::env::var_os("AGENTCRED_TEST_FAULT").is_some_and(|v| v == point)
    {
        std::process::abort();
    }
}

/// A valid access token for an `authorization_code` credential: the cache's, or one
/// obtained with the refresh token (storing a rotated one first).
pub(super) fn access_token(
    cache: &TokenCache,
    name: &CredentialName,
    config: &ClientConfig,
    value: &SecretSlice<u8>,
    verbose: bool,
) -> Result<SecretSlice<u8>> {
    token(cache, name, config, value, verbose).map(Token::into_value)
}

/// [`access_token`] with what is known of its lifetime (for the broker).
pub(super) fn token(
    cache: &TokenCache,
    name: &CredentialName,
    config: &ClientConfig,
    value: &SecretSlice<u8>,
    verbose: bool,
) -> Result<Token> {
    let say = |text: String| {
        if verbose {
            eprintln!("agentcred: {name}: {text}");
        }
    };
    let client = Client {
        name,
        config,
        secret: value,
        client_secret: None,
        refresh_token: None,
    };
    if let Some(token) = cache.fresh(&client) {
        say(format!(
            "using the cached access token ({})",
            token.expiry()
        ));
        return Ok(token);
    }
    let _lock = cache.lock(name)?;
    let store = cache.store;
    let (entry, value) = {
        let reader = store.reader(cache.identity)?;
        let entry = reader.entry(name)?;
        let value = reader.value(name, &entry)?;
        (entry, value)
    };
    let client = Client {
        name,
        config,
        secret: &value,
        client_secret: None,
        refresh_token: None,
    };
    if let Some(token) = cache.fresh(&client) {
        say(format!(
            "using the access token another agentcred just obtained ({})",
            token.expiry()
        ));
        return Ok(token);
    }
    let stored = Stored::parse(name, value.expose_secret())?;
    let Some(refresh_token) = stored.refresh_token.as_deref() else {
        return Err(Error::OAuthLoginNeeded {
            name: name.to_string(),
            detail: "nobody has logged in yet".into(),
        });
    };
    let mut txn = store.begin(cache.identity)?;
    if txn.entry(name).map(|e| &e.sha256) != Some(&entry.sha256) {
        return Err(Error::OAuth {
            name: name.to_string(),
            detail: "it was changed while its token was being refreshed; try again".into(),
        });
    }
    let mut body = Zeroizing::new(String::from("grant_type=refresh_token&refresh_token="));
    body.push_str(&form_encode(refresh_token.as_bytes()));
    // No scope: RFC 6749 section 6 then means the scope the person granted, where a
    // repeated one could ask for more than the server let the refresh token carry.
    let client = Client {
        name,
        config,
        secret: &value,
        client_secret: stored.client_secret.as_deref().map(str::as_bytes),
        refresh_token: Some(refresh_token.as_bytes()),
    };
    let mut token = request(&client, body)?;
    report_type(cache, &client, &token);
    fault("oauth-refresh-received");
    let rotated = token
        .refresh_token
        .take()
        .filter(|new| new.as_str() != refresh_token);
    let current = match rotated {
        Some(new) => {
            let next = Stored {
                refresh_token: Some(new.to_string()),
                client_secret: stored.client_secret.clone(),
            };
            let bytes = next.to_bytes();
            put_value(&mut txn, name, &bytes, None)?;
            txn.commit().map_err(|e| Error::OAuthLoginNeeded {
                name: name.to_string(),
                detail: format!(
                    "the server rotated its refresh token but the new one could not be stored: {e}"
                ),
            })?;
            say("stored the refresh token the server rotated".into());
            fault("oauth-refresh-stored");
            SecretSlice::from(bytes.to_vec())
        }
        None => {
            drop(txn);
            value.clone()
        }
    };
    say(format!("obtained a new access token ({})", token.expiry()));
    let client = Client {
        name,
        config,
        secret: &current,
        client_secret: None,
        refresh_token: None,
    };
    cache_token(cache, &client, &token, &say);
    Ok(token)
}

/// Stage `value` as the credential's new value in `txn` (`rotated_at` moves; a login is
/// recorded in its history). The caller commits.
pub(super) fn put_value(
    txn: &mut crate::store::Txn,
    name: &CredentialName,
    value: &[u8],
    event: Option<Event>,
) -> Result<()> {
    let at = crate::model::rotation::now();
    txn.replace_value(
        name,
        value,
        at,
        event
            .as_ref()
            .map(|e| (e.action.as_str(), e.reason.clone())),
    )?;
    Ok(())
}

/// Store what a login obtained: the refresh token becomes the value (keeping the client
/// secret), an event records the login, and the access token goes to the cache.
pub(super) fn store_login(
    store: &Store,
    identity: &crate::crypto::identity::Identity,
    name: &CredentialName,
    config: &ClientConfig,
    client_secret: Option<String>,
    mut token: Token,
    event: Event,
) -> Result<()> {
    let Some(refresh_token) = token.refresh_token.take() else {
        return Err(Error::OAuth {
            name: name.to_string(),
            detail: "the server issued no refresh token (some servers want the offline_access scope: add it with `agentcred edit` or `add --force --scope`)".into(),
        });
    };
    let stored = Stored {
        refresh_token: Some(refresh_token.to_string()),
        client_secret,
    };
    let bytes = stored.to_bytes();
    let store_id;
    {
        let lock_cache = TokenCache::new(store, identity, "");
        let _lock = lock_cache.lock(name)?;
        let mut txn = store.begin(identity)?;
        store_id = txn.store_id().to_owned();
        put_value(&mut txn, name, &bytes, Some(event))?;
        txn.commit()?;
    }
    let value = SecretSlice::from(bytes.to_vec());
    let client = Client {
        name,
        config,
        secret: &value,
        client_secret: None,
        refresh_token: None,
    };
    let cache = TokenCache::new(store, identity, &store_id);
    cache_token(&cache, &client, &token, &|_| {});
    Ok(())
}
