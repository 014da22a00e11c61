//! Refresh Token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).
//!
//! 1. The token exists (looked up by SHA-256), is not revoked or expired, and belongs to this
//!    client; a used token presented by another client is reuse (the family is revoked).
//! 2. The grant is live (`protocol::live`): the user exists, is enabled and has not changed their
//!    password since the grant; its session has not ended; the client's grant was not revoked.
//! 3. Scopes are re-checked against current roles; requested scope ⊆ the grant's scope
//!    (RFC 6749 §6); the audience is the grant's resource (RFC 8707 §2.2).
//! 4. Rotate atomically, under the grant's lock (`RefreshTokenStore::rotate_refresh_token`):
//!    of two concurrent first uses exactly one rotates. A token used moments ago by this same
//!    client (within `refresh_retry_grace_secs`) whose successor is still unused is a retry — an
//!    editor and its agent sharing a token, or a response lost in transit: the answer carries
//!    the same successor, so the family stays linear. Any other reuse revokes the family.
//! 5. New access token, and the successor refresh token in the same family (absolute lifetime
//!    kept).

use crate::events::kinds;
use shared::secret::RefreshToken;
use shared::{ErrorCode, ScopeSet};

use crate::crypto::sha256_hex;
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::keys::issuer::{RefreshGrant, Subject, TokenResponse};
use crate::policy::scope;
use crate::protocol::form::Form;
use crate::protocol::grant::{Issued, audit_issued, user_allowed_scopes};
use crate::protocol::live::{self, Dead};
use crate::protocol::resource::select_audience;
use crate::state::AppState;
use crate::store::{
    AuditEvent, Client, GrantType, Outcome, RefreshTokenRecord, RotateOutcome, Rotation,
};

const INVALID: &str = "the refresh token is invalid, expired or revoked";

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    let presented = form.require("refresh_token")?;
    let hash = sha256_hex(presented);
    let now = ctx.now;
    // 1. The token, bound to its client.
    let Some(record) = state.store.get_refresh_token(&hash).await? else {
        return Err(Error::invalid_grant(INVALID));
    };
    if record.client_id != client.id {
        if record.used_at.is_some() {
            // A spent token in another client's hands: it leaked (RFC 9700 §4.14.2).
            reuse_detected(state, ctx, &record, now).await?;
        }
        return Err(Error::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if record.revoked_at.is_some() || record.expires_at <= now || record.family_expires_at <= now {
        return Err(Error::invalid_grant(INVALID));
    }
    // RFC 9449 §5: a refresh token bound to a DPoP key needs a proof with that key. Checked
    // before anything is rotated, so a stolen bound token burns nothing.
    let bound = match record.dpop_jkt.as_deref() {
        None => None,
        Some(stored) => match ctx.dpop_jkt {
            Some(jkt) if jkt.matches(stored) => Some(jkt),
            Some(_) => {
                return Err(Error::oauth(
                    ErrorCode::InvalidDpopProof,
                    "the refresh token is bound to another DPoP key",
                ));
            }
            None => {
                return Err(Error::oauth(
                    ErrorCode::InvalidDpopProof,
                    "the refresh token is DPoP-bound: a DPoP proof with its key is required",
                ));
            }
        },
    };
    // 2. The grant is still live.
    let (user, amr) = match live::refresh_token(state, &record, client).await? {
        Ok(live) => live,
        Err(dead) => {
            if matches!(dead, Dead::UserGone | Dead::CredentialsChanged) {
                state
                    .store
                    .revoke_refresh_family(&record.family_id, now)
                    .await?;
            }
            return Err(Error::invalid_grant(dead.description()));
        }
    };

    // 3. Scope and audience.
    let grant_scope = ScopeSet::parse(&record.scope).map_err(Error::internal)?;
    let allowed = user_allowed_scopes(state, &user, client).intersection(&grant_scope);
    // Absent: the grant's scope, less whatever the user's roles no longer allow.
    let scope = scope::narrow(
        form.get("scope"),
        &grant_scope,
        &allowed,
        "scope exceeds the original grant (RFC 6749 §6)",
    )?;
    let default = record.resources.first().cloned().unwrap_or_default();
    let aud = select_audience(&form.all("resource"), &record.resources, client, &default)?;

    // 4. Rotate (or answer a retry).
    let grant = RefreshGrant {
        client,
        user: &user,
        scope: &record.scope,
        resources: record.resources.clone(),
        auth_time: record.auth_time,
        sid: record.sid.as_deref(),
        family: Some((&record.family_id, record.family_expires_at)),
        // The successor keeps the family's binding (RFC 9449 §5).
        dpop_jkt: bound,
    };
    let next = state.issuer.refresh_token(grant, now);
    let grace = state.config.refresh_retry_grace_secs;
    let sealed = (grace > 0).then(|| {
        state
            .master
            .seal(record.token_hash.as_bytes(), next.token.expose().as_bytes())
    });
    let rotation = Rotation {
        old: &record,
        successor: &next.record,
        sealed_successor: sealed.as_deref(),
        retry_since: (grace > 0).then(|| now - grace),
        now,
    };
    let refresh = match state.store.rotate_refresh_token(&rotation).await? {
        RotateOutcome::Rotated => next.token,
        RotateOutcome::Retry { sealed_successor } => {
            let token = state
                .master
                .open(record.token_hash.as_bytes(), &sealed_successor)
                .map_err(|e| Error::internal(format!("sealed refresh successor: {e}")))?;
            let token = String::from_utf8(token).map_err(Error::internal)?;
            audit_retry(state, ctx, &record, now).await;
            RefreshToken::new(token)
        }
        RotateOutcome::NotFound | RotateOutcome::GrantEnded => {
            return Err(Error::invalid_grant(INVALID));
        }
        RotateOutcome::Reused(old) => {
            audit_reuse(state, ctx, &old, now).await;
            return Err(Error::invalid_grant(INVALID));
        }
    };
    // 5. The new access token.
    let access = state.issuer.access_token(
        Subject::User {
            user: &user,
            auth_time: record.auth_time,
            sid: record.sid.as_deref(),
            amr: &amr,
        },
        client,
        &aud,
        &scope,
        ctx.dpop_jkt,
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
    Ok(state
        .issuer
        .response(access, &scope, Some(refresh), ctx.dpop_jkt))
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
    let ev = AuditEvent::new(now, kinds::REFRESH_REUSE_DETECTED, Outcome::Failure)
        .subject(&record.user_id)
        .client(&record.client_id)
        .details(serde_json::json!({ "family_id": record.family_id, "family_revoked": true }))
        .ctx(ctx);
    state.audit(ev).await;
}

async fn audit_retry(
    state: &AppState,
    ctx: &RequestContext,
    record: &RefreshTokenRecord,
    now: i64,
) {
    let ev = AuditEvent::new(now, kinds::REFRESH_RETRIED, Outcome::Success)
        .subject(&record.user_id)
        .client(&record.client_id)
        .details(serde_json::json!({
            "family_id": record.family_id,
            "used_secs_ago": record.used_at.map(|u| now - u),
        }))
        .ctx(ctx);
    state.audit(ev).await;
}
