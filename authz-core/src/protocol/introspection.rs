//! Introspection (RFC 7662): what a presented token is, and whether it is active — live by
//! the one rule of `protocol::live`, for access and refresh tokens alike.

use serde::Serialize;
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims};

use crate::crypto::sha256_hex;
use crate::error::Result;
use crate::protocol::live::{self, Audience};
use crate::state::AppState;
use crate::store::RefreshTokenRecord;

/// What a token string turned out to be.
pub(crate) enum Found {
    Access(Box<AccessTokenClaims>),
    Refresh(Box<RefreshTokenRecord>),
    Nothing,
}

pub(crate) async fn find(state: &AppState, token: &str, hint: Option<&str>) -> Result<Found> {
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
    /// RFC 9449 §6.2: the key a DPoP-bound token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<shared::claims::Confirmation>,
}

/// `POST /introspect` (RFC 7662 §2.1): is the token active, and what does it say? Active means
/// live (`protocol::live`), for access and refresh tokens alike.
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
                // RFC 9449 §6.2: a bound token is a DPoP token.
                token_type: Some(if c.cnf.is_some() { "DPoP" } else { "Bearer" }),
                exp: Some(c.exp),
                iat: Some(c.iat),
                sub: Some(c.sub),
                aud: Some(c.aud),
                iss: Some(c.iss),
                jti: Some(c.jti),
                sid: c.sid,
                cnf: c.cnf,
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
