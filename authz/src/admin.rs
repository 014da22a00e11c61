//! Administrative operations on users, clients and keys: validation, hashing and audit in one
//! place, shared by the CLI (and later the management API). Each returns what it changed.

use shared::ScopeSet;
use shared::secret::{ClientSecret, Password};

use crate::crypto::{random_id, random_secret, sha256_hex};
use crate::error::{Error, Result};
use crate::keys::SigningAlg;
use crate::oauth::resource::validate_resource_uri;
use crate::password::check_policy;
use crate::state::AppState;
use crate::store::{AuditEvent, AuthMethod, Client, GrantType, Outcome, Registration, User};

/// Whether the password policy applies (it always does, except for `seed-demo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Enforce,
    /// Demo accounts only: the demo passwords are deliberately weak and public.
    BypassForDemo,
}

fn validate_username(username: &str) -> Result<()> {
    let ok_chars = username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if username.is_empty() || username.len() > 64 || !ok_chars {
        return Err(Error::Invalid(
            "username must be 1-64 characters of A-Z a-z 0-9 . _ @ -".to_owned(),
        ));
    }
    Ok(())
}

fn validate_roles(state: &AppState, roles: &[String]) -> Result<()> {
    if roles.is_empty() {
        return Err(Error::Invalid("give at least one role".to_owned()));
    }
    for r in roles {
        if !state.config.roles.contains_key(r) {
            let known: Vec<&str> = state.config.roles.keys().map(String::as_str).collect();
            return Err(Error::Invalid(format!(
                "unknown role {r:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

async fn audit(
    state: &AppState,
    kind: &str,
    actor: &str,
    f: impl FnOnce(AuditEvent) -> AuditEvent,
) {
    state
        .audit(f(
            AuditEvent::new(state.now(), kind, Outcome::Success).actor(actor)
        ))
        .await;
}

async fn user_by_name(state: &AppState, username: &str) -> Result<User> {
    state
        .store
        .get_user_by_username(username)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {username:?}")))
}

pub async fn add_user(
    state: &AppState,
    actor: &str,
    username: &str,
    password: &Password,
    roles: Vec<String>,
    policy: Policy,
) -> Result<User> {
    validate_username(username)?;
    validate_roles(state, &roles)?;
    if policy == Policy::Enforce {
        check_policy(&state.config.password_policy, username, password.expose())?;
    }
    if state.store.get_user_by_username(username).await?.is_some() {
        return Err(Error::Conflict(format!("user {username:?}")));
    }
    let now = state.now();
    let user = User {
        id: random_id("usr_"),
        username: username.to_owned(),
        password_hash: state.passwords.hash(password.expose()).await?,
        roles,
        email: None,
        disabled_at: None,
        created_at: now,
        updated_at: now,
    };
    state.store.create_user(&user).await?;
    audit(state, "user.created", actor, |e| {
        e.subject(&user.id)
            .details(serde_json::json!({ "username": user.username, "roles": user.roles }))
    })
    .await;
    Ok(user)
}

pub async fn set_roles(
    state: &AppState,
    actor: &str,
    username: &str,
    roles: Vec<String>,
) -> Result<User> {
    validate_roles(state, &roles)?;
    let user = user_by_name(state, username).await?;
    state
        .store
        .set_user_roles(&user.id, &roles, state.now())
        .await?;
    audit(state, "user.roles_changed", actor, |e| {
        e.subject(&user.id)
            .details(serde_json::json!({ "from": user.roles, "to": roles }))
    })
    .await;
    user_by_name(state, username).await
}

pub async fn set_disabled(
    state: &AppState,
    actor: &str,
    username: &str,
    disabled: bool,
) -> Result<User> {
    let user = user_by_name(state, username).await?;
    let now = state.now();
    state
        .store
        .set_user_disabled(&user.id, disabled.then_some(now), now)
        .await?;
    let revoked = if disabled {
        state
            .store
            .revoke_user_refresh_tokens(&user.id, now)
            .await?
    } else {
        0
    };
    let kind = if disabled {
        "user.disabled"
    } else {
        "user.enabled"
    };
    audit(state, kind, actor, |e| {
        e.subject(&user.id)
            .details(serde_json::json!({ "refresh_tokens_revoked": revoked }))
    })
    .await;
    user_by_name(state, username).await
}

pub async fn set_password(
    state: &AppState,
    actor: &str,
    username: &str,
    password: &Password,
) -> Result<()> {
    let user = user_by_name(state, username).await?;
    check_policy(&state.config.password_policy, username, password.expose())?;
    let hash = state.passwords.hash(password.expose()).await?;
    let now = state.now();
    state.store.set_user_password(&user.id, &hash, now).await?;
    // A new password ends every existing grant (RFC 9700 §4.14: revoke on credential change).
    let revoked = state
        .store
        .revoke_user_refresh_tokens(&user.id, now)
        .await?;
    audit(state, "user.password_changed", actor, |e| {
        e.subject(&user.id)
            .details(serde_json::json!({ "refresh_tokens_revoked": revoked }))
    })
    .await;
    Ok(())
}

/// A client to register.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub id: Option<String>,
    pub name: String,
    pub auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub scopes: String,
    pub resources: Vec<String>,
    pub always_issue_refresh: bool,
    pub post_logout_redirect_uris: Vec<String>,
    pub skip_consent: bool,
    pub registration: Registration,
    pub owner_id: Option<String>,
    pub expires_at: Option<i64>,
    pub may_introspect: bool,
    pub serves_resource: Option<String>,
}

/// RFC 6749 §3.1.2 / RFC 9700 §2.1: absolute, no fragment; https, or http on loopback only.
pub fn validate_redirect_uri(uri: &str) -> Result<()> {
    let url =
        url::Url::parse(uri).map_err(|e| Error::Invalid(format!("redirect URI {uri:?}: {e}")))?;
    if url.fragment().is_some() {
        return Err(Error::Invalid(format!(
            "redirect URI {uri:?} must not have a fragment"
        )));
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(Error::Invalid(format!(
            "redirect URI {uri:?} must be https (http only on loopback)"
        ))),
        // Private-use schemes for native apps (RFC 8252 §7.1) must contain a dot.
        s if s.contains('.') => Ok(()),
        _ => Err(Error::Invalid(format!(
            "redirect URI {uri:?} has an unsupported scheme"
        ))),
    }
}

/// Set (or clear) a user's email address, released with the `email` scope.
pub async fn set_email(
    state: &AppState,
    actor: &str,
    username: &str,
    email: Option<&str>,
) -> Result<()> {
    if let Some(e) = email {
        let (local, domain) = e.split_once('@').unwrap_or(("", ""));
        if e.len() > 254
            || local.is_empty()
            || !domain.contains('.')
            || e.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::Invalid(format!("{e:?} is not an email address")));
        }
    }
    let user = user_by_name(state, username).await?;
    state
        .store
        .set_user_email(&user.id, email, state.now())
        .await?;
    audit(state, "user.email_changed", actor, |e| e.subject(&user.id)).await;
    Ok(())
}

pub async fn add_client(
    state: &AppState,
    actor: &str,
    new: NewClient,
) -> Result<(Client, Option<ClientSecret>)> {
    let id = new.id.unwrap_or_else(|| random_id("cl_"));
    let id_ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if id.is_empty() || id.len() > 64 || !id_ok {
        return Err(Error::Invalid(
            "client id must be 1-64 characters of A-Z a-z 0-9 . _ -".into(),
        ));
    }
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "client name must be 1-100 printable characters".into(),
        ));
    }
    if new.grant_types.is_empty() {
        return Err(Error::Invalid("give at least one grant type".into()));
    }
    let public = new.auth_method == AuthMethod::None;
    if public && new.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(Error::Invalid(
            "a public client cannot use client_credentials".into(),
        ));
    }
    let scopes =
        ScopeSet::parse(&new.scopes).map_err(|e| Error::Invalid(format!("scopes: {e}")))?;
    let unknown = scopes.difference(
        &state
            .scopes
            .supported()
            .union(&ScopeSet::parse("openid").unwrap_or_default()),
    );
    if !unknown.is_empty() {
        return Err(Error::Invalid(format!("unknown scopes: {unknown}")));
    }
    let resources = if new.resources.is_empty() {
        vec![state.config.default_resource.clone()]
    } else {
        new.resources
    };
    for r in resources.iter().chain(&new.serves_resource) {
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
    let secret = (!public).then(|| ClientSecret::new(random_secret()));
    let now = state.now();
    let client = Client {
        id,
        name,
        secret_hash: secret.as_ref().map(|s| sha256_hex(s.expose())),
        auth_method: new.auth_method,
        grant_types: new.grant_types,
        redirect_uris: new.redirect_uris,
        scopes,
        resources,
        always_issue_refresh: new.always_issue_refresh,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        skip_consent: new.skip_consent,
        registration: new.registration,
        owner_id: new.owner_id,
        expires_at: new.expires_at,
        revoked_at: None,
        may_introspect: new.may_introspect,
        serves_resource: new.serves_resource,
        created_at: now,
        updated_at: now,
    };
    state.store.create_client(&client).await?;
    audit(state, "client.created", actor, |e| {
        e.client(&client.id).details(serde_json::json!({
            "auth_method": client.auth_method.as_str(),
            "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "scopes": client.scopes.to_string(),
        }))
    })
    .await;
    Ok((client, secret))
}

pub async fn rotate_client_secret(state: &AppState, actor: &str, id: &str) -> Result<ClientSecret> {
    let client = state
        .store
        .get_client(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("client {id:?}")))?;
    if client.is_public() {
        return Err(Error::Invalid(format!(
            "client {id:?} is public and has no secret"
        )));
    }
    let secret = ClientSecret::new(random_secret());
    state
        .store
        .set_client_secret(id, &sha256_hex(secret.expose()), state.now())
        .await?;
    state.clients.invalidate(id);
    audit(state, "client.secret_rotated", actor, |e| e.client(id)).await;
    Ok(secret)
}

pub async fn delete_client(state: &AppState, actor: &str, id: &str) -> Result<()> {
    let deleted = state.store.delete_client(id).await?;
    state.clients.invalidate(id);
    if !deleted {
        return Err(Error::NotFound(format!("client {id:?}")));
    }
    audit(state, "client.deleted", actor, |e| e.client(id)).await;
    Ok(())
}

/// Make a new signing key active; the previous one stays published until every token it signed
/// has expired. Returns the new kid.
pub async fn rotate_keys(state: &AppState, actor: &str, alg: SigningAlg) -> Result<String> {
    let now = state.now();
    let publish_until = now + state.config.max_signed_token_ttl() + 60;
    let previous = state.keys.current().active.kid().to_owned();
    let kid = crate::keys::rotate(&*state.store, &state.master, alg, now, publish_until).await?;
    audit(state, "key.rotated", actor, |e| {
        e.details(serde_json::json!({ "kid": kid, "alg": alg.as_str(), "previous": previous, "previous_published_until": publish_until }))
    })
    .await;
    state.reload_keys().await?;
    Ok(kid)
}
