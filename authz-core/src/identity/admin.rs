//! Administrative operations on users: validation, hashing and audit in one place, shared by
//! the CLI, the console and the seed. Each returns what it changed. Clients are administered
//! in `clients::admin`, keys by `keys::KeyAdmin`.

use crate::events::kinds;
use shared::secret::Password;

// Moved to `clients::admin` (LAYERING.md); the old paths stay until every branch names the new.
pub use crate::clients::admin::{
    Pruned, add_client, delete_client, parse_scopes, prune_clients, rotate_client_secret,
    validate_redirect_uri,
};
use crate::config::Config;
use crate::crypto::random_id;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::identity::IdentityServices;
use crate::policy::password::check_policy;
use crate::store::{AuditEvent, Outcome, User, UserStore};

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

fn validate_roles(config: &Config, roles: &[String]) -> Result<()> {
    if roles.is_empty() {
        return Err(Error::Invalid("give at least one role".to_owned()));
    }
    for r in roles {
        if !config.roles.contains_key(r) {
            let known: Vec<&str> = config.roles.keys().map(String::as_str).collect();
            return Err(Error::Invalid(format!(
                "unknown role {r:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

async fn audit(events: &Events, kind: &str, actor: &str, f: impl FnOnce(AuditEvent) -> AuditEvent) {
    let event = AuditEvent::new(events.now(), kind, Outcome::Success).actor(actor);
    events.audit(f(event)).await;
}

async fn user_by_name(store: &dyn UserStore, username: &str) -> Result<User> {
    store
        .get_user_by_username(username)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {username:?}")))
}

pub async fn add_user(
    svc: IdentityServices<'_>,
    actor: &str,
    username: &str,
    password: &Password,
    roles: Vec<String>,
    policy: Policy,
) -> Result<User> {
    validate_username(username)?;
    validate_roles(svc.config, &roles)?;
    if policy == Policy::Enforce {
        check_policy(&svc.config.password_policy, username, password.expose())?;
    }
    if svc.store.get_user_by_username(username).await?.is_some() {
        return Err(Error::Conflict(format!("user {username:?}")));
    }
    let now = svc.now();
    let user = User {
        id: random_id("usr_"),
        username: username.to_owned(),
        password_hash: svc.passwords.hash(password).await?,
        roles,
        email: None,
        display_name: None,
        disabled_at: None,
        credentials_changed_at: None,
        password_change_required: false,
        factors_epoch: 0,
        created_at: now,
        updated_at: now,
    };
    svc.store.create_user(&user).await?;
    audit(svc.events, kinds::USER_CREATED, actor, |e| {
        e.subject(&user.id)
            .details(serde_json::json!({ "username": user.username, "roles": user.roles }))
    })
    .await;
    Ok(user)
}

pub async fn set_roles(
    store: &dyn UserStore,
    config: &Config,
    events: &Events,
    actor: &str,
    username: &str,
    roles: Vec<String>,
) -> Result<User> {
    validate_roles(config, &roles)?;
    let user = user_by_name(store, username).await?;
    store.set_user_roles(&user.id, &roles, events.now()).await?;
    audit(events, kinds::USER_ROLES_CHANGED, actor, |e| {
        e.subject(&user.id)
            .details(serde_json::json!({ "from": user.roles, "to": roles }))
    })
    .await;
    user_by_name(store, username).await
}

/// Disable (or re-enable) a user. Disabling ends every session, revokes every refresh token
/// and removes every passkey at once (enabling again does not bring them back); the user's
/// API keys stop authenticating while the owner is disabled.
pub async fn set_disabled(
    store: &dyn UserStore,
    events: &Events,
    actor: &str,
    username: &str,
    disabled: bool,
) -> Result<User> {
    let user = user_by_name(store, username).await?;
    let now = events.now();
    let details = if disabled {
        let r = store.disable_user(&user.id, now).await?;
        serde_json::json!({
            "sessions_ended": r.sessions_ended,
            "refresh_tokens_revoked": r.refresh_tokens_revoked,
            "passkeys_removed": r.passkeys_removed,
        })
    } else {
        store.enable_user(&user.id, now).await?;
        serde_json::json!({})
    };
    let kind = if disabled {
        kinds::USER_DISABLED
    } else {
        kinds::USER_ENABLED
    };
    audit(events, kind, actor, |e| {
        e.subject(&user.id).details(details)
    })
    .await;
    if disabled {
        events
            .signal(crate::events::ssf::Signal::AccountDisabled { user: &user.id })
            .await;
    }
    user_by_name(store, username).await
}

/// An administrator's password reset (`authz user passwd`). A new password ends everything
/// granted with the old one (RFC 9700 §4.14, OWASP: invalidate sessions on credential change):
/// every session, every refresh token, every API key and every passkey of the user, in one
/// transaction, and tokens authenticated before now are refused wherever this server checks
/// them.
pub async fn set_password(
    svc: IdentityServices<'_>,
    actor: &str,
    username: &str,
    password: &Password,
) -> Result<()> {
    let user = user_by_name(svc.store, username).await?;
    let reset = PasswordChange::AdminReset { temporary: false };
    change_password(svc, actor, &user, password, reset).await?;
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
    svc: IdentityServices<'_>,
    actor: &str,
    user: &User,
    password: &Password,
    kind: PasswordChange,
) -> Result<crate::store::AccountRevocation> {
    let by_admin = matches!(kind, PasswordChange::AdminReset { .. });
    let by_user = !by_admin;
    // A directory user's password is the directory's: one set here would sign nobody in
    // (`identity::directory::decides`), so the user is told where to change it; an
    // administrator's reset still ends what it ends, without asking for a new password.
    let directory_user = crate::identity::directory::linked_subject(svc, user)
        .await?
        .is_some();
    if by_user && directory_user {
        return Err(Error::Invalid(
            "your password is kept by your directory (LDAP / Active Directory): change it there"
                .into(),
        ));
    }
    check_policy(
        &svc.config.password_policy,
        &user.username,
        password.expose(),
    )?;
    let hash = svc.passwords.hash(password).await?;
    let now = svc.now();
    let new = crate::store::NewCredentials {
        password_hash: &hash,
        revoke_api_keys: by_admin,
        remove_passkeys: kind != PasswordChange::ByUser,
        change_required: !directory_user && kind == PasswordChange::AdminReset { temporary: true },
        // The user's own change replaces the password they proved, not one set meanwhile.
        replaces: by_user.then_some(user.password_hash.as_str()),
    };
    let mut r = svc.store.reset_credentials(&user.id, &new, now).await?;
    if by_user && !r.found {
        return Err(Error::Conflict(
            "the password was changed meanwhile: sign in again".into(),
        ));
    }
    let extra = serde_json::json!({
        "by": if by_admin { "admin" } else { "user" },
        "temporary": new.change_required,
    });
    credentials_ended(svc, kinds::USER_PASSWORD_CHANGED, actor, user, &r, extra).await;
    r.password_hash = r.found.then_some(hash);
    Ok(r)
}

/// End everything `user` holds — sessions, refresh tokens, API keys, passkeys, links to upstream
/// providers (not the directory's) — in one transaction, as an administrator's password reset
/// does, keeping their password: for a remedy taken elsewhere (the directory reset or changed
/// the password: issue 26 LDAP reviews 5 N1, 6 B1). Tokens authenticated before `at` are void.
/// Audited (`why`) and signalled.
pub async fn end_credentials(
    svc: IdentityServices<'_>,
    actor: &str,
    user: &User,
    why: &str,
    at: i64,
) -> Result<crate::store::AccountRevocation> {
    let new = crate::store::NewCredentials {
        password_hash: &user.password_hash,
        revoke_api_keys: true,
        remove_passkeys: true,
        change_required: false,
        replaces: None,
    };
    let r = svc.store.reset_credentials(&user.id, &new, at).await?;
    let extra = serde_json::json!({ "why": why });
    credentials_ended(svc, kinds::USER_SESSIONS_ENDED, actor, user, &r, extra).await;
    Ok(r)
}

/// After `reset_credentials` took `r` from `user`: the revoked API keys leave the client cache,
/// the remedy is audited as `kind` (its counts, and `extra`), and Shared Signals say the
/// password credential changed.
async fn credentials_ended(
    svc: IdentityServices<'_>,
    kind: &str,
    actor: &str,
    user: &User,
    r: &crate::store::AccountRevocation,
    extra: serde_json::Value,
) {
    for key in &r.api_keys_revoked {
        svc.clients.invalidate(key);
    }
    let mut details = serde_json::json!({
        "sessions_ended": r.sessions_ended,
        "refresh_tokens_revoked": r.refresh_tokens_revoked,
        "api_keys_revoked": r.api_keys_revoked.len(),
        "passkeys_removed": r.passkeys_removed,
        "identities_unlinked": r.identities_unlinked,
    });
    if let (Some(d), serde_json::Value::Object(more)) = (details.as_object_mut(), extra) {
        d.extend(more);
    }
    audit(svc.events, kind, actor, |e| {
        e.subject(&user.id).details(details)
    })
    .await;
    let changed = crate::events::ssf::Signal::CredentialChange {
        user: &user.id,
        credential: "password",
        client_id: None,
    };
    svc.events.signal(changed).await;
}

/// Set (or clear) a user's email address, released with the `email` scope.
pub async fn set_email(
    store: &dyn UserStore,
    events: &Events,
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
    let user = user_by_name(store, username).await?;
    store.set_user_email(&user.id, email, events.now()).await?;
    audit(events, kinds::USER_EMAIL_CHANGED, actor, |e| {
        e.subject(&user.id)
    })
    .await;
    Ok(())
}
