//! API keys: credentials a user creates for their bots. A key is a confidential client owned
//! by the user (`clients.owner_id`), used with the standard `client_credentials` grant; its
//! tokens carry the owner as `sub` and the key as `client_id`, with at most the key's scopes
//! and never more than the owner's roles allow at the time of use. Secrets are 256-bit,
//! stored as SHA-256, shown once.
//!
//! What a key may carry, checked at creation:
//! - only scopes the token that asks for it holds (through token exchange, at most the subject
//!   token's): a client the user approved for `keys:write` alone cannot mint a key that reads
//!   the user's notes;
//! - only scopes the owner's roles grant now;
//! - never `keys:write` (no key mints keys) and no OIDC scope.
//!
//! A key speaks for its owner for up to a year, so creating one needs a [`RecentSignIn`]: the
//! one re-authentication rule (`identity::session::recent_sign_in`) applied to the session
//! behind the request — the console's, or the asking token's `sid` through the management API
//! and the MCP tool — whichever way the key is asked for. The type makes the rule impossible
//! to skip: outside this crate a proof comes only from that function.
//!
//! Keys stop working at once when their owner is disabled or deleted (checked at every use), and
//! an administrator's password reset revokes them (`admin::set_password`).

use crate::events::kinds;
use serde::Serialize;
use shared::ScopeSet;
use shared::scope::OIDC_SCOPES;
use shared::secret::ClientSecret;

use crate::clients::ClientServices;
use crate::clients::admin;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::store::{
    AuditEvent, AuthMethod, Client, ClientCache, ClientSettings, ClientStore, GrantType, Outcome,
    User,
};

/// Live keys a user may hold at once.
pub(crate) const MAX_KEYS_PER_USER: usize = 20;
const MAX_DAYS: i64 = 365;

/// A key as its owner sees it (never the secret, except once at creation).
#[derive(Debug, Serialize)]
pub struct KeyView {
    pub key_id: String,
    pub name: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub active: bool,
}

/// The answer to a creation: the credentials for `client_credentials`, shown once.
#[derive(Debug, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: KeyView,
    /// Use as `client_id` …
    pub client_id: String,
    /// … and as `client_secret` (HTTP Basic) with `grant_type=client_credentials`.
    pub client_secret: ClientSecret,
}

/// Proof that a session of a user is a fresh sign-in with every factor the user has (and the
/// second factor their role may require): made only by `identity::session::recent_sign_in`.
#[derive(Debug)]
pub struct RecentSignIn {
    sid: String,
    user_id: String,
}

impl RecentSignIn {
    /// For `identity::session::recent_sign_in`, once it has applied the rule.
    pub(crate) fn new(sid: &str, user_id: &str) -> Self {
        Self {
            sid: sid.to_owned(),
            user_id: user_id.to_owned(),
        }
    }
}

/// The scope no API key may carry: keys would mint keys.
pub const KEYS_WRITE: &str = "keys:write";

fn view(c: &Client, now: i64) -> KeyView {
    KeyView {
        key_id: c.id.clone(),
        name: c.name.clone(),
        scope: c.scopes.to_string(),
        created_at: c.created_at,
        expires_at: c.expires_at,
        revoked_at: c.revoked_at,
        active: c.is_live(now),
    }
}

/// Create a key for `owner`, asked for by a token carrying `asking` (see the module docs),
/// from a fresh sign-in of the owner's (`signed_in`: the console's session, or the asking
/// token's `sid`): the key is stored only while that session is live, in the transaction that
/// takes its row,
/// so a key asked for from a session a password reset or disabling ended is not created
/// (`Conflict`) — the remedy revokes the keys it sees, this sees the session ended.
pub async fn create(
    svc: ClientServices<'_>,
    owner: &User,
    signed_in: &RecentSignIn,
    asking: &ScopeSet,
    name: &str,
    scope: &str,
    expires_in_days: Option<i64>,
) -> Result<CreatedKey> {
    let now = svc.now();
    if signed_in.user_id != owner.id {
        return Err(Error::internal("a sign-in proof of another user"));
    }
    let days = expires_in_days.unwrap_or(90);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::invalid_request(format!(
            "expires_in_days must be within 1..={MAX_DAYS}"
        )));
    }
    let requested = ScopeSet::parse(scope)
        .map_err(|e| Error::invalid_scope(format!("malformed scope: {e}")))?;
    if requested.is_empty() {
        return Err(Error::invalid_scope("give the key at least one scope"));
    }
    let oidc = ScopeSet::from_tokens(OIDC_SCOPES).unwrap_or_default();
    if requested.contains(KEYS_WRITE) {
        return Err(Error::invalid_scope(
            "keys:write cannot be given to an API key (a key cannot create keys)",
        ));
    }
    if !requested.intersection(&oidc).is_empty() {
        return Err(Error::invalid_scope(format!(
            "API keys carry no OpenID Connect scopes: {}",
            requested.intersection(&oidc)
        )));
    }
    let beyond_token = requested.difference(asking);
    if !beyond_token.is_empty() {
        return Err(Error::invalid_scope(format!(
            "a key can only carry scopes the requesting token holds; it lacks: {beyond_token}"
        )));
    }
    let owned = svc
        .config
        .role_scopes(owner.roles.iter().map(String::as_str));
    let beyond_roles = requested.difference(&owned);
    if !beyond_roles.is_empty() {
        return Err(Error::invalid_scope(format!(
            "a key can only carry scopes you hold: {beyond_roles}"
        )));
    }
    let live = svc
        .store
        .list_clients_owned_by(&owner.id)
        .await?
        .iter()
        .filter(|c| c.is_live(now))
        .count();
    if live >= MAX_KEYS_PER_USER {
        return Err(Error::invalid_request(format!(
            "at most {MAX_KEYS_PER_USER} active keys per user; revoke one first"
        )));
    }
    let (client, secret) = admin::add_client_for(
        svc,
        &owner.username,
        Some(crate::crypto::random_id("ak_")),
        ClientSettings {
            name: name.trim().to_owned(),
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::ClientCredentials],
            scopes: requested.clone(),
            owner_id: Some(owner.id.clone()),
            expires_at: Some(now + days * 86_400),
            ..Default::default()
        },
        Some(signed_in.sid.as_str()),
    )
    .await
    .map_err(|e| match e {
        Error::Invalid(m) => Error::invalid_request(m),
        other => other,
    })?;
    let secret = secret.ok_or_else(|| Error::internal("API key without a secret"))?;
    audit(svc.events, kinds::API_KEY_CREATED, owner, &client).await;
    Ok(CreatedKey {
        key: view(&client, now),
        client_id: client.id.clone(),
        client_secret: secret,
    })
}

pub async fn list(store: &dyn ClientStore, now: i64, owner: &User) -> Result<Vec<KeyView>> {
    Ok(store
        .list_clients_owned_by(&owner.id)
        .await?
        .iter()
        .map(|c| view(c, now))
        .collect())
}

/// Revoke one of `owner`'s keys: it stops authenticating at once (on every replica, on
/// PostgreSQL), and resource servers hear of it (`crate::events::ssf`).
pub async fn revoke(
    store: &dyn ClientStore,
    clients: &ClientCache,
    events: &Events,
    owner: &User,
    key_id: &str,
) -> Result<KeyView> {
    let key = store
        .get_client(key_id)
        .await?
        .filter(|c| c.owner_id.as_deref() == Some(owner.id.as_str()))
        .ok_or_else(|| Error::NotFound(format!("API key {key_id:?}")))?;
    let now = events.now();
    store.revoke_client(&key.id, now).await?;
    clients.invalidate(&key.id);
    audit(events, kinds::API_KEY_REVOKED, owner, &key).await;
    let revoked = crate::events::ssf::Signal::CredentialChange {
        user: &owner.id,
        credential: "api-key",
        client_id: Some(&key.id),
    };
    events.signal(revoked).await;
    let mut key = key;
    key.revoked_at.get_or_insert(now);
    Ok(view(&key, now))
}

async fn audit(events: &Events, kind: &str, owner: &User, key: &Client) {
    let ev = AuditEvent::new(events.now(), kind, Outcome::Success)
        .actor(&owner.username)
        .subject(&owner.id)
        .client(&key.id)
        .details(serde_json::json!({ "name": key.name, "scope": key.scopes.to_string() }));
    events.audit(ev).await;
}
