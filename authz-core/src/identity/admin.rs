//! Administrative operations on users, clients and keys: validation, hashing and audit in one
//! place, shared by the CLI (and later the management API). Each returns what it changed.

use crate::events::kinds;
use shared::secret::{ClientSecret, Password};
use shared::{ErrorCode, ScopeSet};

use crate::crypto::{random_id, random_secret, sha256_hex};
use crate::error::{Error, Result};
use crate::keys::{Activation, SigningAlg, Withdrawal};
use crate::policy::password::check_policy;
use crate::protocol::redirect_uri::{self, Registrant};
use crate::protocol::resource::validate_resource_uri;
use crate::state::AppState;
use crate::store::{
    AuditEvent, AuthMethod, Client, ClientSettings, DYNAMIC_CLIENTS, GrantType, Outcome,
    Registration, User,
};

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
        password_hash: state.passwords.hash(password).await?,
        roles,
        email: None,
        disabled_at: None,
        credentials_changed_at: None,
        password_change_required: false,
        factors_epoch: 0,
        created_at: now,
        updated_at: now,
    };
    state.store.create_user(&user).await?;
    audit(state, kinds::USER_CREATED, actor, |e| {
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
    audit(state, kinds::USER_ROLES_CHANGED, actor, |e| {
        e.subject(&user.id)
            .details(serde_json::json!({ "from": user.roles, "to": roles }))
    })
    .await;
    user_by_name(state, username).await
}

/// Disable (or re-enable) a user. Disabling ends every session, revokes every refresh token
/// and removes every passkey at once (enabling again does not bring them back); the user's
/// API keys stop authenticating while the owner is disabled.
pub async fn set_disabled(
    state: &AppState,
    actor: &str,
    username: &str,
    disabled: bool,
) -> Result<User> {
    let user = user_by_name(state, username).await?;
    let now = state.now();
    let details = if disabled {
        let r = state.store.disable_user(&user.id, now).await?;
        serde_json::json!({
            "sessions_ended": r.sessions_ended,
            "refresh_tokens_revoked": r.refresh_tokens_revoked,
            "passkeys_removed": r.passkeys_removed,
        })
    } else {
        state.store.enable_user(&user.id, now).await?;
        serde_json::json!({})
    };
    let kind = if disabled {
        kinds::USER_DISABLED
    } else {
        kinds::USER_ENABLED
    };
    audit(state, kind, actor, |e| e.subject(&user.id).details(details)).await;
    if disabled {
        crate::events::ssf::emit(
            state,
            crate::events::ssf::Signal::AccountDisabled { user: &user.id },
        )
        .await;
    }
    user_by_name(state, username).await
}

/// An administrator's password reset (`authz user passwd`). A new password ends everything
/// granted with the old one (RFC 9700 §4.14, OWASP: invalidate sessions on credential change):
/// every session, every refresh token, every API key and every passkey of the user, in one
/// transaction, and tokens authenticated before now are refused wherever this server checks
/// them.
pub async fn set_password(
    state: &AppState,
    actor: &str,
    username: &str,
    password: &Password,
) -> Result<()> {
    let user = user_by_name(state, username).await?;
    let reset = PasswordChange::AdminReset { temporary: false };
    change_password(state, actor, &user, password, reset).await?;
    Ok(())
}

/// Who changes a password, which decides what else goes with the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    /// An administrator's reset: the user's API keys and passkeys go too (whoever held the
    /// account may have planted them); `temporary`: the user must choose another password at
    /// the next sign-in.
    AdminReset { temporary: bool },
    /// The user's own change (the caller checked the current password): sessions and refresh
    /// tokens end, the user's API keys and passkeys stay.
    ByUser,
    /// The user's own change, asking for their passkeys to go too (in the same transaction).
    ByUserRemovingPasskeys,
}

/// Set `user`'s password (policy enforced) and end what the old one granted, in one
/// transaction; audited and signalled (SSF credential change). The user's own change
/// replaces `user.password_hash` only: `Conflict` if it changed meanwhile.
pub async fn change_password(
    state: &AppState,
    actor: &str,
    user: &User,
    password: &Password,
    kind: PasswordChange,
) -> Result<crate::store::AccountRevocation> {
    check_policy(
        &state.config.password_policy,
        &user.username,
        password.expose(),
    )?;
    let hash = state.passwords.hash(password).await?;
    let now = state.now();
    let by_admin = matches!(kind, PasswordChange::AdminReset { .. });
    let by_user = !by_admin;
    let new = crate::store::NewCredentials {
        password_hash: &hash,
        revoke_api_keys: by_admin,
        remove_passkeys: kind != PasswordChange::ByUser,
        change_required: kind == PasswordChange::AdminReset { temporary: true },
        // The user's own change replaces the password they proved, not one set meanwhile.
        replaces: by_user.then_some(user.password_hash.as_str()),
    };
    let mut r = state.store.reset_credentials(&user.id, &new, now).await?;
    if by_user && !r.found {
        return Err(Error::Conflict(
            "the password was changed meanwhile: sign in again".into(),
        ));
    }
    for key in &r.api_keys_revoked {
        state.clients.invalidate(key);
    }
    audit(state, kinds::USER_PASSWORD_CHANGED, actor, |e| {
        e.subject(&user.id).details(serde_json::json!({
            "sessions_ended": r.sessions_ended,
            "refresh_tokens_revoked": r.refresh_tokens_revoked,
            "api_keys_revoked": r.api_keys_revoked.len(),
            "passkeys_removed": r.passkeys_removed,
            "by": if by_admin { "admin" } else { "user" },
            "temporary": new.change_required,
        }))
    })
    .await;
    let changed = crate::events::ssf::Signal::CredentialChange {
        user: &user.id,
        credential: "password",
        client_id: None,
    };
    crate::events::ssf::emit(state, changed).await;
    r.password_hash = r.found.then_some(hash);
    Ok(r)
}

/// A client's scopes as an administrator writes them (separated by spaces or commas).
pub fn parse_scopes(text: &str) -> Result<ScopeSet> {
    let tokens = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty());
    ScopeSet::from_tokens(tokens).map_err(|e| Error::Invalid(format!("scopes: {e}")))
}

/// A redirect URI an administrator registers (`protocol::redirect_uri`, the one rule for all).
pub fn validate_redirect_uri(uri: &str) -> Result<()> {
    redirect_uri::validate(uri, Registrant::Admin).map_err(Error::Invalid)
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
    audit(state, kinds::USER_EMAIL_CHANGED, actor, |e| {
        e.subject(&user.id)
    })
    .await;
    Ok(())
}

/// Register a client with `settings` under `id` (generated when `None`), checking every rule a
/// registration must meet; a confidential client's secret is returned once and stored hashed.
pub async fn add_client(
    state: &AppState,
    actor: &str,
    id: Option<String>,
    new: ClientSettings,
) -> Result<(Client, Option<ClientSecret>)> {
    add_client_for(state, actor, id, new, None).await
}

/// `add_client`, and with `session` (the sid of the owner's session that asks for it, as for
/// an API key) stored only while that session is live, in the same transaction that takes
/// the session's row (`ClientStore::create_client_in_session`): a client asked for from a
/// session that a password reset or disabling ended is not created (`Conflict`).
pub(crate) async fn add_client_for(
    state: &AppState,
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
        &state
            .scopes
            .supported()
            .union(&ScopeSet::parse("openid").unwrap_or_default()),
    );
    if !unknown.is_empty() {
        return Err(Error::Invalid(format!("unknown scopes: {unknown}")));
    }
    if new.resources.is_empty() {
        new.resources = vec![state.config.default_resource.clone()];
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
    let now = state.now();
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
        let cap = state.config.browser.registration_max_clients;
        if !state
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
        if !state.store.create_client_in_session(&client, sid).await? {
            return Err(Error::Conflict(
                "this sign-in has ended (the account's password changed, it was disabled, or \
                 it signed out): sign in again"
                    .into(),
            ));
        }
    } else {
        state.store.create_client(&client).await?;
    }
    audit(state, kinds::CLIENT_CREATED, actor, |e| {
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
pub async fn prune_clients(state: &AppState, actor: &str, dry_run: bool) -> Result<Vec<Pruned>> {
    let now = state.now();
    let b = &state.config.browser;
    let found = state
        .store
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
        if !dry_run && state.store.delete_client(&c.id).await? {
            state.clients.invalidate(&c.id);
            audit(state, kinds::CLIENT_PRUNED, actor, |e| {
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
pub async fn rotate_client_secret(state: &AppState, actor: &str, id: &str) -> Result<ClientSecret> {
    let client = state
        .store
        .get_client(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("client {id:?}")))?;
    if client.owner_id.is_some() {
        let ev = AuditEvent::new(
            state.now(),
            kinds::CLIENT_SECRET_ROTATION_REFUSED,
            Outcome::Failure,
        )
        .actor(actor)
        .client(id);
        state.audit(ev).await;
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
    state
        .store
        .set_client_secret(id, &sha256_hex(secret.expose()), state.now())
        .await?;
    state.clients.invalidate(id);
    audit(state, kinds::CLIENT_SECRET_ROTATED, actor, |e| e.client(id)).await;
    Ok(secret)
}

pub async fn delete_client(state: &AppState, actor: &str, id: &str) -> Result<()> {
    let deleted = state.store.delete_client(id).await?;
    state.clients.invalidate(id);
    if !deleted {
        return Err(Error::NotFound(format!("client {id:?}")));
    }
    audit(state, kinds::CLIENT_DELETED, actor, |e| e.client(id)).await;
    Ok(())
}

/// Rotate the signing key. By default the new key is published now and signs only after
/// `key_prepublish_secs` (every resource server has refetched the JWKS by then); with
/// `Activation::Now` it signs at once. Either way the previous key stays published until every
/// token it signed has expired. Returns the new kid and when it starts signing.
pub async fn rotate_keys(
    state: &AppState,
    actor: &str,
    alg: SigningAlg,
    now_or_later: KeySwitch,
) -> Result<(String, i64)> {
    let now = state.now();
    let activate_at = match now_or_later {
        KeySwitch::Now => now,
        KeySwitch::AfterPrepublication => now + state.config.key_prepublish_secs,
    };
    let publish_until = activate_at + state.config.max_signed_token_ttl() + 60;
    let when = match now_or_later {
        KeySwitch::Now => Activation::Now,
        KeySwitch::AfterPrepublication => Activation::At(activate_at),
    };
    let previous = state.keys.current().active.kid().to_owned();
    let kid =
        crate::keys::rotate(&*state.store, &state.master, alg, now, publish_until, when).await?;
    audit(state, kinds::KEY_ROTATED, actor, |e| {
        e.details(serde_json::json!({
            "kid": kid, "alg": alg.as_str(), "previous": previous,
            "activate_at": activate_at, "immediate": now_or_later == KeySwitch::Now,
            "previous_published_until": publish_until,
        }))
    })
    .await;
    state.reload_keys().await?;
    Ok((kid, activate_at))
}

/// Withdraw a signing key at once (`authz keys revoke <kid>`, the console's "Withdraw"; see
/// `keys::withdraw`): unpublished from the JWKS, the key ring reloaded here and, through the
/// database's change notification, on every replica. The active key is replaced first by a
/// new key of the configured algorithm, signing from now on. Tokens the key signed stop
/// verifying (here at once; at resource servers at their next JWKS fetch); refresh tokens are
/// not signed and keep working, yielding tokens under the new key.
pub async fn withdraw_key(state: &AppState, actor: &str, kid: &str) -> Result<Withdrawal> {
    let now = state.now();
    let publish_until = now + state.config.max_signed_token_ttl() + 60;
    let w = crate::keys::withdraw(
        &*state.store,
        &state.master,
        kid,
        state.config.signing_alg,
        now,
        publish_until,
    )
    .await?;
    audit(state, kinds::KEY_WITHDRAWN, actor, |e| {
        e.details(serde_json::json!({
            "kid": w.kid, "purpose": w.purpose.as_str(), "replaced_by": w.replaced_by,
        }))
    })
    .await;
    state.reload_keys().await?;
    Ok(w)
}

/// When a rotated key starts signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySwitch {
    /// After the pre-publication delay (the default of `authz keys rotate`).
    AfterPrepublication,
    /// At once (`authz keys rotate --now`): for a compromised key.
    Now,
}
