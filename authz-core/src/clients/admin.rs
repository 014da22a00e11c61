//! Administrative operations on clients: registering one under every rule a registration must
//! meet (administrators, the console, RFC 7591 registration and API keys all come here),
//! rotating a secret, deleting, and pruning the self-registered clients nobody uses. Each is
//! audited and returns what it changed.

use crate::events::kinds;
use shared::secret::ClientSecret;
use shared::{ErrorCode, ScopeSet};

use crate::clients::ClientServices;
use crate::config::BrowserConfig;
use crate::crypto::{random_id, random_secret, sha256_hex};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::policy::redirect_uri::{self, Registrant};
use crate::policy::resource::validate_resource_uri;
use crate::store::{
    AuditEvent, AuthMethod, Client, ClientCache, ClientSettings, ClientStore, DYNAMIC_CLIENTS,
    GrantType, Outcome, Registration,
};

async fn audit(events: &Events, kind: &str, actor: &str, f: impl FnOnce(AuditEvent) -> AuditEvent) {
    let event = AuditEvent::new(events.now(), kind, Outcome::Success).actor(actor);
    events.audit(f(event)).await;
}

/// A client's scopes as an administrator writes them (separated by spaces or commas).
pub fn parse_scopes(text: &str) -> Result<ScopeSet> {
    let tokens = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty());
    ScopeSet::from_tokens(tokens).map_err(|e| Error::Invalid(format!("scopes: {e}")))
}

/// A redirect URI an administrator registers (`policy::redirect_uri`, the one rule for all).
pub fn validate_redirect_uri(uri: &str) -> Result<()> {
    redirect_uri::validate(uri, Registrant::Admin).map_err(Error::Invalid)
}

/// Register a client with `settings` under `id` (generated when `None`), checking every rule a
/// registration must meet; a confidential client's secret is returned once and stored hashed.
pub async fn add_client(
    svc: ClientServices<'_>,
    actor: &str,
    id: Option<String>,
    new: ClientSettings,
) -> Result<(Client, Option<ClientSecret>)> {
    add_client_for(svc, actor, id, new, None).await
}

/// `add_client`, and with `session` (the sid of the owner's session that asks for it, as for
/// an API key) stored only while that session is live, in the same transaction that takes
/// the session's row (`ClientStore::create_client_in_session`): a client asked for from a
/// session that a password reset or disabling ended is not created (`Conflict`).
pub(crate) async fn add_client_for(
    svc: ClientServices<'_>,
    actor: &str,
    id: Option<String>,
    mut new: ClientSettings,
    session: Option<&str>,
) -> Result<(Client, Option<ClientSecret>)> {
    let id = id.unwrap_or_else(|| random_id("cl_"));
    let id_ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if id.is_empty() || id.len() > 64 || !id_ok {
        return Err(Error::Invalid(
            "client id must be 1-64 characters of A-Z a-z 0-9 . _ -".into(),
        ));
    }
    new.name = new.name.trim().to_owned();
    let name = &new.name;
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "client name must be 1-100 printable characters".into(),
        ));
    }
    if new.grant_types.is_empty() {
        return Err(Error::Invalid("give at least one grant type".into()));
    }
    if new.auth_method == AuthMethod::PrivateKeyJwt {
        crate::clients::assertion::validate_key_source(&new)?;
    }
    let public = new.auth_method == AuthMethod::None;
    if public && new.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(Error::Invalid(
            "a public client cannot use client_credentials".into(),
        ));
    }
    if public && new.skip_consent {
        // RFC 8252 §8.6: nothing proves a public client's identity, so skipping consent would
        // let any local program obtain its tokens without the user noticing.
        return Err(Error::Invalid(
            "a public client cannot skip consent: any program can use its client_id with a \
             loopback redirect (RFC 8252 §8.6)"
                .into(),
        ));
    }
    let unknown = new.scopes.difference(
        &svc.scopes
            .supported()
            .union(&ScopeSet::parse("openid").unwrap_or_default()),
    );
    if !unknown.is_empty() {
        return Err(Error::Invalid(format!("unknown scopes: {unknown}")));
    }
    if new.resources.is_empty() {
        new.resources = vec![svc.config.default_resource.clone()];
    }
    for r in new.resources.iter().chain(&new.serves_resource) {
        validate_resource_uri(r).map_err(Error::Invalid)?;
    }
    if new.grant_types.contains(&GrantType::TokenExchange) && new.serves_resource.is_none() {
        return Err(Error::Invalid(
            "token exchange needs --serves-resource: the resource whose tokens it exchanges".into(),
        ));
    }
    for u in new
        .redirect_uris
        .iter()
        .chain(&new.post_logout_redirect_uris)
    {
        validate_redirect_uri(u)?;
    }
    if new.grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(Error::Invalid(
            "the authorization_code grant needs at least one redirect URI".into(),
        ));
    }
    // Secrets only for the methods that use one.
    let uses_secret = matches!(
        new.auth_method,
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
    );
    let secret = uses_secret.then(|| ClientSecret::new(random_secret()));
    let now = svc.now();
    let client = Client {
        id,
        secret_hash: secret.as_ref().map(|s| sha256_hex(s.expose())),
        settings: new,
        revoked_at: None,
        created_at: now,
        updated_at: now,
        metadata_fetched_at: None,
        metadata_expires_at: None,
        last_used_at: None,
    };
    if client.registration == Registration::Dynamic {
        let cap = svc.config.browser.registration_max_clients;
        if !svc
            .store
            .create_client_within(&client, DYNAMIC_CLIENTS, cap)
            .await?
        {
            return Err(Error::oauth(
                ErrorCode::InvalidClientMetadata,
                format!(
                    "this server already holds the most self-registered clients it allows \
                     ({cap}); try again later, or ask its operator"
                ),
            ));
        }
    } else if let Some(sid) = session {
        if !svc.store.create_client_in_session(&client, sid).await? {
            return Err(Error::Conflict(
                "this sign-in has ended (the account's password changed, it was disabled, or \
                 it signed out): sign in again"
                    .into(),
            ));
        }
    } else {
        svc.store.create_client(&client).await?;
    }
    audit(svc.events, kinds::CLIENT_CREATED, actor, |e| {
        e.client(&client.id).details(serde_json::json!({
            "auth_method": client.auth_method.as_str(),
            "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "scopes": client.scopes.to_string(),
        }))
    })
    .await;
    Ok((client, secret))
}

/// A self-registered client pruned, or that would be (`dry_run`), and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pruned {
    pub client_id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// `never_used` or `idle`.
    pub reason: &'static str,
}

/// Delete the self-registered clients nobody uses (RFC 7591 registrations are free, so they
/// pile up): never used `registration_unused_ttl_secs` after registering, or idle for
/// `registration_idle_ttl_days` with no live grant left. Each deletion is audited.
pub async fn prune_clients(
    store: &dyn ClientStore,
    clients: &ClientCache,
    events: &Events,
    b: &BrowserConfig,
    actor: &str,
    dry_run: bool,
) -> Result<Vec<Pruned>> {
    let now = events.now();
    let found = store
        .prunable_clients(
            now - b.registration_unused_ttl_secs,
            now - b.registration_idle_ttl_days * 86_400,
            now,
        )
        .await?;
    let mut pruned = Vec::with_capacity(found.len());
    for c in found {
        let p = Pruned {
            reason: if c.last_used_at.is_none() {
                "never_used"
            } else {
                "idle"
            },
            client_id: c.id.clone(),
            name: c.name.clone(),
            created_at: c.created_at,
            last_used_at: c.last_used_at,
        };
        if !dry_run && store.delete_client(&c.id).await? {
            clients.invalidate(&c.id);
            audit(events, kinds::CLIENT_PRUNED, actor, |e| {
                e.client(&c.id).details(
                    serde_json::json!({ "reason": p.reason, "last_used_at": p.last_used_at }),
                )
            })
            .await;
        }
        pruned.push(p);
    }
    Ok(pruned)
}

/// A new secret for a confidential client (shown once; the old one stops working). Never for
/// an API key: its secret would let whoever sees it act as the user who owns the key, so
/// administrators revoke API keys and never take them over (every path: console, CLI).
pub async fn rotate_client_secret(
    store: &dyn ClientStore,
    clients: &ClientCache,
    events: &Events,
    actor: &str,
    id: &str,
) -> Result<ClientSecret> {
    let client = store
        .get_client(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("client {id:?}")))?;
    if client.owner_id.is_some() {
        let ev = AuditEvent::new(
            events.now(),
            kinds::CLIENT_SECRET_ROTATION_REFUSED,
            Outcome::Failure,
        )
        .actor(actor)
        .client(id);
        events.audit(ev).await;
        return Err(Error::Invalid(format!(
            "client {id:?} is a user's API key: its secret is not rotated by an administrator \
             (that would let you act as the user); revoke the key instead, and the user can \
             create a new one"
        )));
    }
    if client.is_public() || client.auth_method == AuthMethod::PrivateKeyJwt {
        return Err(Error::Invalid(format!(
            "client {id:?} authenticates with {} and has no secret",
            client.auth_method.as_str()
        )));
    }
    let secret = ClientSecret::new(random_secret());
    store
        .set_client_secret(id, &sha256_hex(secret.expose()), events.now())
        .await?;
    clients.invalidate(id);
    audit(events, kinds::CLIENT_SECRET_ROTATED, actor, |e| {
        e.client(id)
    })
    .await;
    Ok(secret)
}

pub async fn delete_client(
    store: &dyn ClientStore,
    clients: &ClientCache,
    events: &Events,
    actor: &str,
    id: &str,
) -> Result<()> {
    let deleted = store.delete_client(id).await?;
    clients.invalidate(id);
    if !deleted {
        return Err(Error::NotFound(format!("client {id:?}")));
    }
    audit(events, kinds::CLIENT_DELETED, actor, |e| e.client(id)).await;
    Ok(())
}
