//! Authorization code grant, token request (RFC 6749 §4.1.3, RFC 7636 §4.5, OIDC Core §3.1.3).
//!
//! 1. `code`, `redirect_uri`, `code_verifier` present.
//! 2. Spend the code atomically. A code seen before → `invalid_grant`, and what was issued from
//!    it is revoked (RFC 6749 §4.1.2, RFC 9700 §4.5).
//! 3. Issued to this client, for this `redirect_uri` (§4.1.3), not expired (60 s).
//! 4. PKCE: S256 of the verifier equals the stored challenge (RFC 7636 §4.6).
//!    A code bound to a DPoP key (`dpop_jkt`, RFC 9449 §10) needs a proof signed with it.
//! 5. The user still exists, is enabled and has not changed their password since signing in;
//!    the session is still live (checked again, under the session's lock, when the refresh
//!    token is stored).
//! 6. Access token for the code's resource and scope; refresh token — bound to that resource
//!    only (RFC 8707 §2.2) — when the client may refresh and asked (`offline_access`) or is
//!    configured to always get one; ID token with `openid` (nonce, at_hash, auth_time, sid).

use crate::events::kinds;
use shared::ScopeSet;

use crate::crypto::sha256_hex;
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::keys::issuer::{IdTokenRequest, Subject, TokenResponse};
use crate::protocol::form::Form;
use crate::protocol::grant::{Issued, UserGrant, audit_issued, first_refresh_token};
use crate::protocol::live::{self, Dead};
use crate::protocol::pkce;
use crate::protocol::revocation;
use crate::state::AppState;
use crate::store::{AuditEvent, AuthCode, Client, GrantType, Outcome, RedeemOutcome};

const INVALID: &str = "the authorization code is invalid, expired or already used";

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    let code = form.require("code")?;
    let redirect_uri = form.require("redirect_uri")?;
    let verifier = form.get("code_verifier").ok_or_else(|| {
        Error::invalid_request("code_verifier is missing: PKCE is required (RFC 7636 §4.5)")
    })?;
    let now = ctx.now;
    let record = match state.store.redeem_code(&sha256_hex(code), now).await? {
        RedeemOutcome::Redeemed(r) => r,
        RedeemOutcome::NotFound => return Err(Error::invalid_grant(INVALID)),
        RedeemOutcome::Replayed(r) => {
            replayed(state, ctx, &r, now).await?;
            return Err(Error::invalid_grant(INVALID));
        }
    };
    if record.client_id != client.id {
        return Err(Error::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if record.expires_at <= now {
        return Err(Error::invalid_grant(INVALID));
    }
    if record.redirect_uri != redirect_uri {
        return Err(Error::invalid_grant(
            "redirect_uri does not match the authorization request (RFC 6749 §4.1.3)",
        ));
    }
    if !pkce::verify_s256(verifier, &record.code_challenge) {
        return Err(Error::invalid_grant(
            "code_verifier does not match the code_challenge (RFC 7636 §4.6)",
        ));
    }
    // RFC 9449 §10: "the authorization server MUST ensure that the DPoP proof ... uses the
    // same key" as `dpop_jkt`; without a proof, or with another key's, the code is no good.
    if let Some(bound) = record.dpop_jkt.as_deref()
        && !ctx.dpop_jkt.as_ref().is_some_and(|k| k.matches(bound))
    {
        return Err(Error::invalid_grant(
            "the authorization code is bound to a DPoP key (dpop_jkt): redeem it with a DPoP \
             proof signed by that key (RFC 9449 §10)",
        ));
    }
    let user = match live::minting_user(state, &record.user_id).await? {
        Ok(u) if u.credentials_current_at(record.auth_time) => u,
        Ok(_) => return Err(Error::invalid_grant(Dead::CredentialsChanged.description())),
        Err(dead) => return Err(Error::invalid_grant(dead.description())),
    };
    let Some(session) = state
        .store
        .get_session_by_sid(&record.sid)
        .await?
        .filter(|s| s.is_live())
    else {
        return Err(Error::invalid_grant("the sign-in session has ended"));
    };

    let scope = ScopeSet::parse(&record.scope).map_err(Error::internal)?;
    let access = state.issuer.access_token(
        Subject::User {
            user: &user,
            auth_time: record.auth_time,
            sid: Some(&record.sid),
            amr: &session.amr,
        },
        client,
        &record.resource,
        &scope,
        ctx.dpop_jkt,
        now,
    )?;
    // The grant covers the resource the user consented to, and only that (RFC 8707 §2.2).
    let grant = UserGrant {
        client,
        user: &user,
        auth_time: record.auth_time,
        sid: &record.sid,
        resource: &record.resource,
        scope: &scope,
        dpop_jkt: ctx.dpop_jkt,
    };
    let refresh = match first_refresh_token(state, grant, now).await? {
        Some(rt) => {
            // A replayed code revokes this family (RFC 6749 §4.1.2).
            state
                .store
                .set_code_family(&record.code_hash, &rt.record.family_id)
                .await?;
            Some(rt.token)
        }
        None => None,
    };
    let id_token = state.issuer.id_token_if_openid(
        IdTokenRequest {
            client,
            user: &user,
            scope: &scope,
            auth_time: record.auth_time,
            nonce: record.nonce.as_deref(),
            sid: Some(&record.sid),
            amr: &session.amr,
            access_token: access.expose(),
        },
        now,
    )?;
    let issued = Issued {
        grant: GrantType::AuthorizationCode,
        client,
        subject: &user.id,
        aud: &record.resource,
        scope: &scope,
        refresh: refresh.is_some(),
    };
    audit_issued(state, ctx, issued).await;
    let mut response = state.issuer.response(access, &scope, refresh, ctx.dpop_jkt);
    response.id_token = id_token;
    Ok(response)
}

/// A spent code came back: revoke the refresh family issued from it and audit.
/// A replayed code (RFC 6749 §4.1.2): the grant made from it ends, so the refresh tokens
/// and the access tokens it issued stop working wherever this server checks them (userinfo,
/// introspection, token exchange: `protocol::live`). Whoever replays it, it fails closed.
async fn replayed(state: &AppState, ctx: &RequestContext, code: &AuthCode, now: i64) -> Result<()> {
    let revoked = revocation::end_client_grant(
        &*state.store,
        &state.events,
        &state.config,
        revocation::ClientGrant {
            client_id: &code.client_id,
            sid: Some(&code.sid),
            family: code.family_id.as_deref(),
        },
        "code_replayed",
        ctx,
    )
    .await?;
    tracing::warn!(client = %code.client_id, "authorization code replayed; its grant revoked");
    let ev = AuditEvent::new(now, kinds::CODE_REPLAYED, Outcome::Failure)
        .subject(&code.user_id)
        .client(&code.client_id)
        .details(serde_json::json!({ "refresh_tokens_revoked": revoked }))
        .ctx(ctx);
    state.audit(ev).await;
    Ok(())
}
