//! Revocation (RFC 7009) and introspection (RFC 7662): what a presented token is, and ending
//! the grant behind it.
//!
//! Revocation reaches the presenting client's own grant and nothing else (RFC 7009 §2.1:
//! "SHOULD also invalidate … tokens based on the same authorization grant"): a refresh token's
//! family, and that client's grant in the session — its other refresh tokens, and its access
//! tokens wherever this server checks them (`oauth::live`). A cookie-less grant session (the
//! password grant) belongs to one client and ends entirely; a browser session outlives it, so
//! the user stays signed in and other clients' grants keep working. Tokens of other clients
//! and unknown tokens are answered like success and left alone (RFC 7009 §2.2: the client
//! cannot tell, so it cannot probe). Logout (`end_grant`) is what ends a whole session.

use serde::Serialize;
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims};

use crate::crypto::sha256_hex;
use crate::error::Result;
use crate::oauth::grant::RequestContext;
use crate::oauth::live::{self, Audience};
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

/// Log a grant out: its whole session (if any) and every refresh token of it.
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
        let end = state.store.end_session(sid, now).await?;
        ended = end.ended;
        revoked += end.refresh_tokens_revoked;
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
    let (subject, sid, family, token_type) = match find(state, token, hint).await? {
        Found::Refresh(r) if r.client_id == client.id => {
            (r.user_id, r.sid, Some(r.family_id), "refresh_token")
        }
        Found::Access(c) if c.client_id == client.id => (c.sub, c.sid, None, "access_token"),
        _ => return Ok(()),
    };
    let mut ev = AuditEvent::new(state.now(), "token.revoked", Outcome::Success)
        .subject(&subject)
        .client(&client.id)
        .details(serde_json::json!({ "token_type": token_type, "sid": sid }));
    ev.ip = ctx.ip.clone();
    state.audit(ev).await;
    end_client_grant(state, &client.id, sid.as_deref(), family.as_deref(), ctx).await?;
    Ok(())
}

/// End `client_id`'s grant (see the module docs).
async fn end_client_grant(
    state: &AppState,
    client_id: &str,
    sid: Option<&str>,
    family: Option<&str>,
    ctx: &RequestContext,
) -> Result<()> {
    let now = state.now();
    let mut revoked = 0;
    let mut session_ended = false;
    let mut grant_revoked = false;
    if let Some(f) = family {
        revoked += state.store.revoke_refresh_family(f, now).await?;
    }
    if let Some(sid) = sid {
        match state.store.get_session_by_sid(sid).await? {
            Some(s) if s.client_id.as_deref() == Some(client_id) => {
                let end = state.store.end_session(sid, now).await?;
                session_ended = end.ended;
                revoked += end.refresh_tokens_revoked;
            }
            Some(_) => {
                // Access tokens of this grant could live this long; refuse them until then.
                let keep_until = now + state.config.max_signed_token_ttl() + 60;
                revoked += state
                    .store
                    .revoke_grant(sid, client_id, now, keep_until)
                    .await?;
                grant_revoked = true;
            }
            None => {}
        }
    }
    let mut ev = AuditEvent::new(now, "grant.revoked", Outcome::Success)
        .actor(format!("client:{client_id}"))
        .client(client_id)
        .details(serde_json::json!({
            "sid": sid, "family_id": family, "reason": "revoked",
            "session_ended": session_ended, "client_grant_revoked": grant_revoked,
            "refresh_tokens_revoked": revoked,
        }));
    ev.ip = ctx.ip.clone();
    state.audit(ev).await;
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

/// `POST /introspect` (RFC 7662 §2.1): is the token active, and what does it say? Active means
/// live (`oauth::live`), for access and refresh tokens alike.
pub async fn introspect(
    state: &AppState,
    token: &str,
    hint: Option<&str>,
) -> Result<Introspection> {
    let now = state.now();
    Ok(match find(state, token, hint).await? {
        Found::Access(_) => {
            let Ok(live) = live::access_token(state, token, Audience::Any).await? else {
                return Ok(Introspection::default());
            };
            let c = live.claims;
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
            let unspent = r.used_at.is_none() && r.revoked_at.is_none() && r.expires_at > now;
            let client = state.clients.get(&*state.store, &r.client_id, now).await?;
            let live = match (&client, unspent) {
                (Some((c, _)), true) => live::refresh_token(state, &r, c).await?.is_ok(),
                _ => false,
            };
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
