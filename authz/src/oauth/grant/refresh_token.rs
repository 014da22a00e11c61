//! Refresh Token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).
//!
//! 1. The token exists (looked up by SHA-256), belongs to this client, is not revoked or expired.
//! 2. A token that was already used is a replay: the whole family is revoked and audited.
//! 3. The user still exists and is enabled; scopes are re-checked against current roles.
//! 4. Requested scope ⊆ the grant's scope (RFC 6749 §6); resource ∈ the grant's resources.
//! 5. Rotate atomically: of two concurrent uses exactly one wins, the loser revokes the family.
//! 6. New access token and new refresh token in the same family (absolute lifetime kept).

use shared::ScopeSet;

use super::{Issued, RequestContext, audit_issued, user_allowed_scopes};
use crate::crypto::sha256_hex;
use crate::error::{Error, Result};
use crate::oauth::form::Form;
use crate::oauth::issuer::{RefreshGrant, Subject, TokenResponse};
use crate::oauth::resource::select_audience;
use crate::state::AppState;
use crate::store::{AuditEvent, Client, GrantType, Outcome, RefreshTokenRecord, RotateOutcome};

const INVALID: &str = "the refresh token is invalid, expired or revoked";

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    let presented = form.require("refresh_token")?;
    let hash = sha256_hex(presented);
    let now = state.now();
    let Some(record) = state.store.get_refresh_token(&hash).await? else {
        return Err(Error::invalid_grant(INVALID));
    };
    if record.client_id != client.id {
        return Err(Error::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if record.used_at.is_some() {
        reuse_detected(state, ctx, &record, now).await?;
        return Err(Error::invalid_grant(INVALID));
    }
    if record.revoked_at.is_some() || record.expires_at <= now || record.family_expires_at <= now {
        return Err(Error::invalid_grant(INVALID));
    }
    let user = match state.store.get_user(&record.user_id).await? {
        Some(u) if u.disabled_at.is_none() => u,
        _ => {
            state
                .store
                .revoke_refresh_family(&record.family_id, now)
                .await?;
            return Err(Error::invalid_grant(
                "the account is disabled or no longer exists",
            ));
        }
    };

    let grant_scope = ScopeSet::parse(&record.scope).map_err(Error::internal)?;
    let allowed = user_allowed_scopes(state, &user, client).intersection(&grant_scope);
    let scope = match form.get("scope") {
        Some(raw) => {
            let req = ScopeSet::parse(raw)
                .map_err(|e| Error::invalid_scope(format!("malformed scope: {e}")))?;
            let beyond = req.difference(&grant_scope);
            if !beyond.is_empty() {
                return Err(Error::invalid_scope(format!(
                    "scope exceeds the original grant (RFC 6749 §6): {beyond}"
                )));
            }
            state.scopes.resolve(Some(raw), &allowed, &[])?
        }
        // The grant's scope, less whatever the user's roles no longer allow.
        None if allowed.is_empty() => {
            return Err(Error::invalid_scope(
                "none of the grant's scopes is still permitted",
            ));
        }
        None => allowed,
    };
    let default = record.resources.first().cloned().unwrap_or_default();
    let aud = select_audience(&form.all("resource"), &record.resources, client, &default)?;

    let grant = RefreshGrant {
        client,
        user: &user,
        scope: &record.scope,
        resources: record.resources.clone(),
        auth_time: record.auth_time,
        sid: record.sid.as_deref(),
        family: Some((&record.family_id, record.family_expires_at)),
    };
    let next = state.issuer.refresh_token(grant, now);
    match state
        .store
        .rotate_refresh_token(&hash, &next.record, now)
        .await?
    {
        RotateOutcome::Rotated => {}
        RotateOutcome::NotFound => return Err(Error::invalid_grant(INVALID)),
        RotateOutcome::Reused(old) => {
            audit_reuse(state, ctx, &old, now).await;
            return Err(Error::invalid_grant(INVALID));
        }
    }
    let access = state.issuer.access_token(
        Subject::User {
            user: &user,
            auth_time: record.auth_time,
            sid: record.sid.as_deref(),
        },
        client,
        &aud,
        &scope,
        now,
    )?;
    let issued = Issued {
        grant: GrantType::RefreshToken,
        client,
        subject: &user.id,
        aud: &aud,
        scope: &scope,
        refresh: true,
    };
    audit_issued(state, ctx, issued).await;
    Ok(state.issuer.response(access, &scope, Some(next.token)))
}

async fn reuse_detected(
    state: &AppState,
    ctx: &RequestContext,
    record: &RefreshTokenRecord,
    now: i64,
) -> Result<()> {
    state
        .store
        .revoke_refresh_family(&record.family_id, now)
        .await?;
    audit_reuse(state, ctx, record, now).await;
    Ok(())
}

async fn audit_reuse(
    state: &AppState,
    ctx: &RequestContext,
    record: &RefreshTokenRecord,
    now: i64,
) {
    tracing::warn!(family = %record.family_id, client = %record.client_id,
        "refresh token reuse detected; family revoked");
    let mut ev = AuditEvent::new(now, "refresh.reuse_detected", Outcome::Failure)
        .subject(&record.user_id)
        .client(&record.client_id)
        .details(serde_json::json!({ "family_id": record.family_id, "family_revoked": true }));
    ev.ip = ctx.ip.clone();
    state.audit(ev).await;
}
