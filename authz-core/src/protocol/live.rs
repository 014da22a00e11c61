//! One check for "this token is still live", used by every endpoint of this server that accepts
//! a token it issued: UserInfo, the management API, introspection, token exchange and the
//! refresh grant. A fix made here holds everywhere.
//!
//! A token *presented* to a resource endpoint of this server (UserInfo, the management API —
//! every endpoint a token's holder calls with it) goes through [`presented`]: live, and used as
//! its DPoP binding requires (RFC 9449 §7, `shared::dpop::binding`, the rule the MCP server
//! applies too). Introspection and token exchange look at a token for someone else (a resource
//! server asking about it; a `subject_token`), not a presentation by its holder, and use
//! [`access_token`] alone.
//!
//! An access token is live when:
//! 1. it is ours: signature by a published key, `typ` at+jwt, our `iss`, unexpired against the
//!    injected clock (RFC 9068 §4, RFC 8725);
//! 2. it is for the expected audience, where the caller expects one (RFC 8707);
//! 3. its client still exists and is live (not deleted; API keys not revoked or expired);
//! 4. for a user: the user exists, is enabled, and the grant was authenticated with the current
//!    credentials (RFC 9700 §4.14: a password reset ends earlier grants); for an API key, that
//!    user is its owner;
//! 5. its session (`sid`) has not ended, and this client's grant in it was not revoked
//!    (RFC 7009 §2.1, OIDC RP-Initiated Logout §2).
//!
//! A refresh token is live under the same rules 3–5 (its use and expiry are the rotation's).

use std::sync::Arc;

use http::HeaderValue;
use shared::claims::CLIENT_SUBJECT_PREFIX;
use shared::dpop::{Authorization, Binding, Presented, Refusal};
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims, ErrorCode, ScopeSet};

use crate::error::{ResourceRefusal, Result};
use crate::policy::dpop::DpopProof;
use crate::state::AppState;
use crate::store::{Client, RefreshTokenRecord, User};

/// A token presented to one of this server's resource endpoints, as sent: the `Authorization`
/// header (`Bearer` or `DPoP`, RFC 6750 §2.1, RFC 9449 §7.1) and the request's DPoP proof, if
/// any. [`presented`] parses and checks both.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    pub authorization: Option<HeaderValue>,
    pub proof: Option<DpopProof>,
}

/// The audience a caller requires.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// This server's own endpoints that serve any of our tokens (UserInfo, introspection).
    Any,
    Exactly(&'a str),
}

/// A live access token and what it speaks for.
#[derive(Debug)]
pub struct LiveAccess {
    pub claims: AccessTokenClaims,
    pub scope: ScopeSet,
    pub client: Arc<Client>,
    /// The user; `None` for a client acting for itself (`sub` = `client:<id>`).
    pub user: Option<User>,
}

/// Why a token is not live. `description` is safe to show the presenter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dead {
    /// Not ours, malformed, or expired.
    Invalid,
    WrongAudience,
    /// The client was deleted, or the API key revoked or expired.
    ClientGone,
    /// The user was deleted or disabled.
    UserGone,
    /// Authenticated before the user's last password change.
    CredentialsChanged,
    /// The session was logged out.
    SessionEnded,
    /// This client's grant in the session was revoked.
    GrantRevoked,
}

impl Dead {
    pub const fn description(self) -> &'static str {
        match self {
            Self::Invalid => "the access token is invalid or expired",
            Self::WrongAudience => "the access token is not for this API (wrong audience)",
            Self::ClientGone => "the client of this token was removed or revoked",
            Self::UserGone => "the account is disabled or no longer exists",
            Self::CredentialsChanged => "the password changed after this token was granted",
            Self::SessionEnded => "the session has ended",
            Self::GrantRevoked => "this grant was revoked",
        }
    }
}

/// Check an access token (see the module docs). Storage failures are `Err`; a dead token is
/// `Ok(Err(reason))`.
pub async fn access_token(
    state: &AppState,
    token: &str,
    audience: Audience<'_>,
) -> Result<std::result::Result<LiveAccess, Dead>> {
    let now = state.now();
    // 1. Ours, unexpired.
    let Some(claims) = state.keys.current().verify_own::<AccessTokenClaims>(
        token,
        ACCESS_TOKEN_TYP,
        &state.config.issuer,
        Some(now),
    ) else {
        return Ok(Err(Dead::Invalid));
    };
    // 2. Audience.
    if let Audience::Exactly(aud) = audience
        && claims.aud != aud
    {
        return Ok(Err(Dead::WrongAudience));
    }
    // 3. The client.
    let client = match state
        .clients
        .get(&*state.store, &claims.client_id, now)
        .await?
    {
        Some((c, _)) if c.is_live(now) => c,
        _ => return Ok(Err(Dead::ClientGone)),
    };
    // 4. The subject.
    let user = match claims.sub.strip_prefix(CLIENT_SUBJECT_PREFIX) {
        Some(id) if id == client.id && client.owner_id.is_none() => None,
        Some(_) => return Ok(Err(Dead::Invalid)),
        None => {
            if client.owner_id.as_ref().is_some_and(|o| *o != claims.sub) {
                // An API key's tokens speak for its owner only.
                return Ok(Err(Dead::Invalid));
            }
            let user = match live_user(state, &claims.sub).await? {
                Ok(u) => u,
                Err(dead) => return Ok(Err(dead)),
            };
            if !user.credentials_current_at(claims.auth_time.unwrap_or(claims.iat)) {
                return Ok(Err(Dead::CredentialsChanged));
            }
            Some(user)
        }
    };
    // 5. The session and this client's grant in it.
    if let Some(sid) = &claims.sid
        && let Err(dead) = grant_live(state, sid, &claims.client_id, claims.iat).await?
    {
        return Ok(Err(dead));
    }
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    Ok(Ok(LiveAccess {
        claims,
        scope,
        client,
        user,
    }))
}

/// A resource request to this server: the token in `Authorization` (`Bearer` or `DPoP`, RFC
/// 6750 §2.1, RFC 9449 §7.1) live for `audience` ([`access_token`]), presented as its binding
/// requires — an unbound token as Bearer; a bound one under DPoP with one proof for the
/// request's method and URI (this server's public URL of the endpoint), `ath` of the token, by
/// the key `cnf.jkt` names — and that proof's `jti` spent last (RFC 9449 §11.1). Refusals are
/// `Error::Resource` (401 with one challenge per scheme; 503 when the replay store is full).
pub async fn presented(
    state: &AppState,
    presentation: &Presentation,
    audience: Audience<'_>,
) -> Result<LiveAccess> {
    let dpop = state.dpop.enabled;
    let authorization = presentation
        .authorization
        .as_ref()
        .map(HeaderValue::as_bytes);
    let (scheme, token) = match Authorization::parse(authorization) {
        Authorization::Token(scheme, token) => (scheme, token),
        Authorization::Missing => return Err(ResourceRefusal::missing(dpop).into()),
        Authorization::Malformed(scheme) => {
            let d = "the Authorization header is malformed";
            return Err(ResourceRefusal::new(ErrorCode::InvalidToken, d, scheme, dpop).into());
        }
    };
    let live = match access_token(state, token, audience).await? {
        Ok(live) => live,
        Err(dead) => {
            let d = dead.description();
            return Err(ResourceRefusal::new(ErrorCode::InvalidToken, d, scheme, dpop).into());
        }
    };
    let now = state.now();
    let refused = |r: Refusal| {
        let mut refusal = ResourceRefusal::new(r.error_code(), r.description(), scheme, dpop);
        match r {
            Refusal::Proof(shared::dpop::DpopError::UseNonce) => {
                refusal.nonce = state.dpop.current_nonce(now);
            }
            Refusal::Proof(shared::dpop::DpopError::Unavailable { retry_after }) => {
                refusal.retry_after = Some(retry_after);
            }
            _ => {}
        }
        crate::error::Error::from(refusal)
    };
    let verifier = state.dpop.verifier();
    let proof = presentation.proof.as_ref();
    let request = Presented {
        scheme,
        token,
        bound: live.claims.cnf.as_ref().map(|c| c.jkt.as_str()),
        // Read only with a proof to check.
        method: proof.map_or("", |p| p.method.as_str()),
        uri: proof.map_or("", |p| p.uri.as_str()),
    };
    let proofs = proof.into_iter().flat_map(DpopProof::proofs);
    // Nonces, when on, are asked for at the token endpoint only (RFC 9449 §8).
    match verifier.check_presented(&request, proofs, false, now) {
        Ok(Binding::Bearer) => {}
        Ok(Binding::Proved(proof)) => verifier
            .spend(&proof, now)
            .await
            .map_err(|e| refused(Refusal::Proof(e)))?,
        Err(r) => return Err(refused(r)),
    }
    Ok(live)
}

/// Rules 3–5 for a stored refresh token presented by `client` (already authenticated); its
/// user when live.
pub async fn refresh_token(
    state: &AppState,
    record: &RefreshTokenRecord,
    client: &Client,
) -> Result<std::result::Result<(User, Vec<String>), Dead>> {
    let now = state.now();
    if record.client_id != client.id || !client.is_live(now) {
        return Ok(Err(Dead::ClientGone));
    }
    let user = match minting_user(state, &record.user_id).await? {
        Ok(u) => u,
        Err(dead) => return Ok(Err(dead)),
    };
    if !user.credentials_current_at(record.auth_time) {
        return Ok(Err(Dead::CredentialsChanged));
    }
    // The grant's sign-in says how the user authenticated (RFC 8176 `amr`).
    let amr = match &record.sid {
        Some(sid) => match grant_live(state, sid, &record.client_id, record.created_at).await? {
            Ok(session) => session.amr,
            Err(dead) => return Ok(Err(dead)),
        },
        None => Vec::new(),
    };
    Ok(Ok((user, amr)))
}

/// The user `id`, if it exists and is enabled.
pub(crate) async fn live_user(
    state: &AppState,
    id: &str,
) -> Result<std::result::Result<User, Dead>> {
    Ok(match state.store.get_user(id).await? {
        Some(u) if u.is_enabled() => Ok(u),
        _ => Err(Dead::UserGone),
    })
}

/// `live_user` for a grant that mints new tokens without a sign-in (a refresh, an API key): a
/// user the directory keeps only while it keeps them, with the roles it gives now
/// (`identity::directory::current`; issue 26 LDAP review F8).
pub(crate) async fn minting_user(
    state: &AppState,
    id: &str,
) -> Result<std::result::Result<User, Dead>> {
    let user = match live_user(state, id).await? {
        Ok(u) => u,
        Err(dead) => return Ok(Err(dead)),
    };
    let ctx = crate::events::audit::RequestContext {
        ip: None,
        now: state.now(),
        dpop_jkt: None,
    };
    Ok(
        match crate::identity::directory::current(state.identity(), &user, &ctx).await? {
            Some(u) => Ok(u),
            None => Err(Dead::UserGone),
        },
    )
}

/// Is the session `sid` live, and `client_id`'s grant in it not revoked after `issued_at`?
/// Times are whole seconds: a token issued in the very second of the revocation is not
/// refused here (its refresh tokens are revoked either way), so that a new grant made right
/// after a revocation is never refused by it.
async fn grant_live(
    state: &AppState,
    sid: &str,
    client_id: &str,
    issued_at: i64,
) -> Result<std::result::Result<crate::store::Session, Dead>> {
    Ok(match state.store.grant_status(sid, client_id).await? {
        Some(g) if !g.session.is_live() => Err(Dead::SessionEnded),
        Some(g) if g.grant_revoked_at.is_some_and(|r| issued_at < r) => Err(Dead::GrantRevoked),
        Some(g) => Ok(g.session),
        None => Err(Dead::SessionEnded),
    })
}
