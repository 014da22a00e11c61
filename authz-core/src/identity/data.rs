//! What a user sees and controls about their own account (issue 17): the applications they
//! connected (and revoking one), their sessions, the export of everything stored about them,
//! and deleting the account (GDPR Art. 15, 17, 20 style requests).
//!
//! - A connected app is a client holding a live grant (a refresh-token family that is neither
//!   revoked nor past its end) or a remembered consent. Revoking it ends each of its grants
//!   the way RFC 7009 revocation does (`protocol::revocation::end_client_grant`: refresh tokens
//!   revoked, the grant's access tokens refused, resource servers told) and forgets the
//!   consent, so the next authorization asks again.
//! - The export holds the profile, sessions, grants, consents, API keys (never secrets or
//!   hashes) and the audit events about the user.
//! - Deleting the account ends every session first (signalled like a logout), then removes
//!   the user and everything keyed by them in one transaction. Audit events stay (they are
//!   the security record), with the user's id, not the account.

use crate::events::kinds;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Config;
use crate::config::cimd::CimdConfig;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::events::audit::RequestContext;
use crate::store::{AuditEvent, AuditQuery, Outcome, User};
use crate::store::{ClientCache, Store};

/// One client the user connected.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectedApp {
    pub client_id: String,
    pub name: String,
    /// Who vouches for a metadata-document client: the host of its URL.
    pub host: Option<String>,
    pub verified: bool,
    pub scopes: Vec<String>,
    pub resources: Vec<String>,
    /// First and last time a token was issued through a grant (or the consent was given).
    pub first_used: Option<i64>,
    pub last_used: Option<i64>,
    /// A grant is live (the app can get tokens without asking).
    pub active_grant: bool,
}

/// The clients the user connected, by name.
pub async fn connected_apps(
    store: &dyn Store,
    cimd: &CimdConfig,
    now: i64,
    user: &User,
) -> Result<Vec<ConnectedApp>> {
    let tokens = store.user_refresh_tokens(&user.id, now).await?;
    let consents = store.user_consents(&user.id).await?;
    // API keys are the user's own clients, shown apart.
    let mut by_client: BTreeMap<String, ConnectedApp> = BTreeMap::new();
    for t in &tokens {
        let app = by_client
            .entry(t.client_id.clone())
            .or_insert_with(|| empty(&t.client_id));
        app.first_used = Some(app.first_used.map_or(t.created_at, |f| f.min(t.created_at)));
        app.last_used = Some(app.last_used.map_or(t.created_at, |l| l.max(t.created_at)));
        let live = t.used_at.is_none() && t.expires_at > now;
        app.active_grant |= live;
        if live {
            merge(&mut app.scopes, t.scope.split(' '));
            merge(&mut app.resources, t.resources.iter().map(String::as_str));
        }
    }
    for c in &consents {
        let app = by_client
            .entry(c.client_id.clone())
            .or_insert_with(|| empty(&c.client_id));
        merge(&mut app.scopes, c.scope.split(' '));
        if !c.resource.is_empty() {
            merge(&mut app.resources, [c.resource.as_str()]);
        }
        let given = c.created_at.unwrap_or(c.updated_at);
        app.first_used = Some(app.first_used.map_or(given, |f| f.min(given)));
        app.last_used = Some(app.last_used.map_or(c.updated_at, |l| l.max(c.updated_at)));
    }
    let mut apps = Vec::with_capacity(by_client.len());
    for (id, mut app) in by_client {
        match store.get_client(&id).await? {
            Some(c) if c.owner_id.is_some() => continue,
            Some(c) => {
                app.name = c.name.clone();
                app.host = crate::clients::cimd::document_host(&c);
                app.verified = crate::clients::cimd::is_verified(cimd, &c);
            }
            None => continue,
        }
        apps.push(app);
    }
    apps.sort_by_key(|a| a.name.to_lowercase());
    Ok(apps)
}

fn empty(client_id: &str) -> ConnectedApp {
    ConnectedApp {
        client_id: client_id.to_owned(),
        name: client_id.to_owned(),
        host: None,
        verified: false,
        scopes: Vec::new(),
        resources: Vec::new(),
        first_used: None,
        last_used: None,
        active_grant: false,
    }
}

fn merge<'a>(into: &mut Vec<String>, items: impl IntoIterator<Item = &'a str>) {
    for i in items {
        if !i.is_empty() && !into.iter().any(|x| x == i) {
            into.push(i.to_owned());
        }
    }
    into.sort();
}

/// Revoke everything `client_id` holds from the user, and forget the consent. `NotFound`
/// when the client holds nothing of the user's.
pub async fn revoke_app(
    store: &dyn Store,
    events: &Events,
    config: &Config,
    user: &User,
    client_id: &str,
    ctx: &RequestContext,
) -> Result<u64> {
    let tokens = store.user_refresh_tokens(&user.id, ctx.now).await?;
    let mine: Vec<_> = tokens.iter().filter(|t| t.client_id == client_id).collect();
    let mut families: Vec<(&str, Option<&str>)> = mine
        .iter()
        .map(|t| (t.family_id.as_str(), t.sid.as_deref()))
        .collect();
    families.sort_unstable();
    families.dedup();
    let forgotten = store.forget_consents(&user.id, client_id).await?;
    if families.is_empty() && forgotten == 0 {
        return Err(Error::NotFound(format!("connected app {client_id:?}")));
    }
    let mut revoked = 0;
    for (family, sid) in families {
        let reason = "revoked_by_user";
        revoked += crate::identity::grants::end_client_grant(
            store,
            events,
            config,
            crate::identity::grants::ClientGrant {
                client_id,
                sid,
                family: Some(family),
            },
            reason,
            ctx,
        )
        .await?;
    }
    let ev = AuditEvent::new(ctx.now, kinds::APP_REVOKED, Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .client(client_id)
        .details(serde_json::json!({
            "refresh_tokens_revoked": revoked, "consents_forgotten": forgotten,
        }))
        .ctx(ctx);
    events.audit(ev).await;
    Ok(revoked)
}

/// End the user's other sessions (browser and grant sessions), keeping `keep_sid`.
pub async fn end_other_sessions(
    store: &dyn Store,
    events: &Events,
    user: &User,
    keep_sid: Option<&str>,
    reason: &str,
    ctx: &RequestContext,
) -> Result<usize> {
    let sessions = store.user_sessions(&user.id).await?;
    let mut ended = 0;
    for s in sessions.iter().filter(|s| Some(s.sid.as_str()) != keep_sid) {
        crate::identity::session::end(store, events, s, reason, ctx).await?;
        ended += 1;
    }
    Ok(ended)
}

/// The most audit events an export carries (newest first).
const EXPORT_AUDIT_LIMIT: i64 = 5_000;

/// Everything stored about the user, as JSON (no secret, no hash).
pub async fn export(
    store: &dyn Store,
    events: &Events,
    issuer: &str,
    user: &User,
) -> Result<serde_json::Value> {
    let now = events.now();
    events.flush().await;
    let sessions: Vec<_> = store
        .user_sessions(&user.id)
        .await?
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "sid": s.sid, "kind": if s.client_id.is_some() { "grant" } else { "browser" },
                "client_id": s.client_id, "started_at": s.created_at, "last_seen_at": s.last_seen_at,
                "expires_at": s.expires_at, "amr": s.amr, "user_agent": s.user_agent, "ip": s.ip,
            })
        })
        .collect();
    let grants: Vec<_> = store
        .user_refresh_tokens(&user.id, now)
        .await?
        .into_iter()
        .map(|t| {
            serde_json::json!({
                "client_id": t.client_id, "family_id": t.family_id, "scope": t.scope,
                "resources": t.resources, "issued_at": t.created_at, "expires_at": t.expires_at,
                "used_at": t.used_at,
            })
        })
        .collect();
    let consents = store.user_consents(&user.id).await?;
    let api_keys = crate::clients::api_keys::list(store, now, user).await?;
    let two_factor = store.get_totp(&user.id).await?;
    let q = AuditQuery {
        subject: Some(user.id.clone()),
        limit: EXPORT_AUDIT_LIMIT,
        ..AuditQuery::default()
    };
    let audit = store.query_audit(&q).await?;
    Ok(serde_json::json!({
        "exported_at": now,
        "issuer": issuer,
        "profile": {
            "id": user.id, "username": user.username, "email": user.email, "roles": user.roles,
            "created_at": user.created_at, "updated_at": user.updated_at,
            "disabled_at": user.disabled_at, "password_changed_at": user.credentials_changed_at,
        },
        "two_factor": {
            "enabled": two_factor.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
            "confirmed_at": two_factor.and_then(|t| t.confirmed_at),
            "recovery_codes_left": store.recovery_codes_left(&user.id).await?,
        },
        "sessions": sessions,
        "grants": grants,
        "consents": consents,
        "api_keys": api_keys,
        "audit_events": audit,
    }))
}

/// Delete the account (the caller checked the password and second factor, and that
/// deletion is allowed): sessions end (signalled), then the user and what is keyed by them go.
pub async fn delete_account(
    store: &dyn Store,
    clients: &ClientCache,
    events: &Events,
    user: &User,
    ctx: &RequestContext,
) -> Result<()> {
    end_other_sessions(store, events, user, None, "account_deleted", ctx).await?;
    let keys = store.list_clients_owned_by(&user.id).await?;
    if !store.delete_user(&user.id).await? {
        return Err(Error::NotFound("account".into()));
    }
    for k in &keys {
        clients.invalidate(&k.id);
    }
    let ev = AuditEvent::new(ctx.now, kinds::USER_DELETED, Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .details(serde_json::json!({ "by": "user", "api_keys_deleted": keys.len() }))
        .ctx(ctx);
    events.audit(ev).await;
    events
        .signal(crate::events::ssf::Signal::AccountDisabled { user: &user.id })
        .await;
    Ok(())
}
