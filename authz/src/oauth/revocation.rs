//! Revocation (RFC 7009) and introspection (RFC 7662): what a presented token is, and ending
//! the grant behind it.
//!
//! Revoking a refresh token revokes its whole family and ends the session (grant) it belongs
//! to; revoking an access token ends its session, whose refresh tokens go with it (RFC 7009
//! §2.1: "SHOULD also invalidate … tokens based on the same authorization grant"). Resource
//! servers learn of it through `sid`. Tokens of other clients and unknown tokens are answered
//! like success and left alone (RFC 7009 §2.2: the client cannot tell, so it cannot probe).

use serde::Serialize;
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims};

use crate::crypto::sha256_hex;
use crate::error::Result;
use crate::oauth::grant::RequestContext;
use crate::state::AppState;
use crate::store::{AuditEvent, Client, Outcome, RefreshTokenRecord};

/// What a token string turned out to be.
enum Found {
    Access(Box<AccessTokenClaims>),
    Refresh(Box<RefreshTokenRecord>),
    Nothing,
}

async fn find(state: &AppState, token: &str, hint: Option<&str>) -> Result<Found> {
    let as_access = |state: &AppState| {
        state
            .keys
            .current()
            .verify_own::<AccessTokenClaims>(
                token,
                ACCESS_TOKEN_TYP,
                &state.config.issuer,
                Some(state.now()),
            )
            .map(|c| Found::Access(Box::new(c)))
    };
    // The hint only orders the lookups (RFC 7009 §2.1).
    if hint != Some("refresh_token")
        && let Some(f) = as_access(state)
    {
        return Ok(f);
    }
    if let Some(r) = state.store.get_refresh_token(&sha256_hex(token)).await? {
        return Ok(Found::Refresh(Box::new(r)));
    }
    Ok(as_access(state).unwrap_or(Found::Nothing))
}

/// End a grant: its session (if any) and every refresh token of it.
pub async fn end_grant(
    state: &AppState,
    sid: Option<&str>,
    family: Option<&str>,
    reason: &str,
    actor: &str,
    ctx: &RequestContext,
) -> Result<bool> {
    let now = state.now();
    let mut revoked = 0;
    let mut ended = false;
    if let Some(f) = family {
        revoked += state.store.revoke_refresh_family(f, now).await?;
    }
    if let Some(sid) = sid {
        ended = state.store.end_session(sid, now).await?;
        revoked += state.store.revoke_session_refresh_tokens(sid, now).await?;
    }
    if ended || revoked > 0 {
        let mut ev = AuditEvent::new(now, "grant.revoked", Outcome::Success)
            .actor(actor)
            .details(serde_json::json!({
                "sid": sid, "family_id": family, "reason": reason,
                "session_ended": ended, "refresh_tokens_revoked": revoked,
            }));
        ev.ip = ctx.ip.clone();
        state.audit(ev).await;
    }
    Ok(ended || revoked > 0)
}

/// `POST /revoke` for an authenticated `client`.
pub async fn revoke(
    state: &AppState,
    client: &Client,
    token: &str,
    hint: Option<&str>,
    ctx: &RequestContext,
) -> Result<()> {
    let actor = format!("client:{}", client.id);
    match find(state, token, hint).await? {
        Found::Refresh(r) if r.client_id == client.id => {
            let mut ev = AuditEvent::new(state.now(), "token.revoked", Outcome::Success)
                .subject(&r.user_id)
                .client(&client.id)
                .details(serde_json::json!({ "token_type": "refresh_token" }));
            ev.ip = ctx.ip.clone();
            state.audit(ev).await;
            end_grant(
                state,
                r.sid.as_deref(),
                Some(&r.family_id),
                "revoked",
                &actor,
                ctx,
            )
            .await?;
        }
        Found::Access(c) if c.client_id == client.id => {
            let mut ev = AuditEvent::new(state.now(), "token.revoked", Outcome::Success)
                .subject(&c.sub)
                .client(&client.id)
                .details(serde_json::json!({ "token_type": "access_token", "sid": c.sid }));
            ev.ip = ctx.ip.clone();
            state.audit(ev).await;
            end_grant(state, c.sid.as_deref(), None, "revoked", &actor, ctx).await?;
        }
        _ => {}
    }
    Ok(())
}

/// The RFC 7662 §2.2 response.
#[derive(Debug, Default, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

async fn session_live(state: &AppState, sid: Option<&str>) -> Result<bool> {
    Ok(match sid {
        None => true,
        Some(sid) => state
            .store
            .get_session_by_sid(sid)
            .await?
            .is_some_and(|s| s.ended_at.is_none()),
    })
}

/// `POST /introspect` (RFC 7662 §2.1): is the token active, and what does it say?
pub async fn introspect(
    state: &AppState,
    token: &str,
    hint: Option<&str>,
) -> Result<Introspection> {
    let now = state.now();
    Ok(match find(state, token, hint).await? {
        Found::Access(c) => {
            let user_ok = match c.sub.strip_prefix(shared::claims::CLIENT_SUBJECT_PREFIX) {
                Some(_) => true,
                None => state
                    .store
                    .get_user(&c.sub)
                    .await?
                    .is_some_and(|u| u.disabled_at.is_none()),
            };
            if !user_ok || !session_live(state, c.sid.as_deref()).await? {
                return Ok(Introspection::default());
            }
            Introspection {
                active: true,
                scope: Some(c.scope),
                client_id: Some(c.client_id),
                username: c.preferred_username,
                token_type: Some("Bearer"),
                exp: Some(c.exp),
                iat: Some(c.iat),
                sub: Some(c.sub),
                aud: Some(c.aud),
                iss: Some(c.iss),
                jti: Some(c.jti),
                sid: c.sid,
            }
        }
        Found::Refresh(r) => {
            let live = r.used_at.is_none()
                && r.revoked_at.is_none()
                && r.expires_at > now
                && session_live(state, r.sid.as_deref()).await?;
            if !live {
                return Ok(Introspection::default());
            }
            Introspection {
                active: true,
                scope: Some(r.scope),
                client_id: Some(r.client_id),
                token_type: Some("refresh_token"),
                exp: Some(r.expires_at),
                iat: Some(r.created_at),
                sub: Some(r.user_id),
                iss: Some(state.config.issuer.clone()),
                sid: r.sid,
                ..Default::default()
            }
        }
        Found::Nothing => Introspection::default(),
    })
}
