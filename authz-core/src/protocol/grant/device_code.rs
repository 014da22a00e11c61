//! The device authorization grant, token request (RFC 8628 §3.4, §3.5).
//!
//! 1. `device_code` present; the poll is recorded and answered by the store in one atomic
//!    statement (`DeviceStore::poll_device`): unknown or another client's → `invalid_grant`;
//!    expired → `expired_token`; polled sooner than the interval while pending → `slow_down`
//!    (and the interval of this device code is 5 s longer from now on, persisted);
//!    undecided → `authorization_pending`; denied → `access_denied`; already issued →
//!    `invalid_grant`; approved → this poll, and only this one, issues.
//! 2. The approving user still exists, is enabled and has not changed credentials since, and
//!    the browser session that approved is still live (as an authorization code's must be):
//!    ended meanwhile (signed out, or a remedy — an administrator ended the sessions, disabled
//!    the user, reset the password or two-factor) → `access_denied` (RFC 8628 §3.5: the
//!    approval no longer stands; the device stops polling and tells its user, rather than
//!    `expired_token`, which would invite it to start again as if only time had run out).
//! 3. Scope = what the device asked for, within the user's roles (RFC 6749 §3.3).
//! 4. A grant session (as the password grant makes): logout and revocation end it; access
//!    token for the authorization's one resource (RFC 8707); a refresh token when allowed;
//!    an ID token with `openid` (no nonce: the device flow has none).

use crate::events::kinds;
use shared::{ErrorCode, ScopeSet};

use crate::crypto::sha256_hex;
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::keys::issuer::{IdTokenRequest, Subject, TokenResponse};
use crate::protocol::device::SLOW_DOWN_SECS;
use crate::protocol::form::Form;
use crate::protocol::grant::{
    Issued, UserGrant, audit_issued, first_refresh_token, user_allowed_scopes,
};
use crate::protocol::live::{self, Dead};
use crate::state::AppState;
use crate::store::{AuditEvent, Client, GrantType, Outcome, PollOutcome};

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    let device_code = form.require("device_code")?;
    let now = ctx.now;
    let outcome = state
        .store
        .poll_device(&sha256_hex(device_code), &client.id, now, SLOW_DOWN_SECS)
        .await?;
    let d = match outcome {
        PollOutcome::Issue(d) => d,
        PollOutcome::NotFound => {
            return Err(Error::invalid_grant(
                "the device code is unknown or was issued to another client",
            ));
        }
        PollOutcome::Expired => {
            return Err(Error::oauth(
                ErrorCode::ExpiredToken,
                "the device code has expired: start a new device authorization",
            ));
        }
        PollOutcome::SlowDown { interval_secs } => {
            return Err(Error::oauth(
                ErrorCode::SlowDown,
                format!("polling too fast: wait at least {interval_secs} s between requests"),
            ));
        }
        PollOutcome::Pending => {
            return Err(Error::oauth(
                ErrorCode::AuthorizationPending,
                "the user has not yet approved the request",
            ));
        }
        PollOutcome::Denied => {
            return Err(Error::oauth(
                ErrorCode::AccessDenied,
                "the user denied the request",
            ));
        }
        PollOutcome::AlreadyIssued => {
            return Err(Error::invalid_grant(
                "tokens were already issued for this device code",
            ));
        }
    };
    let user_id = d.user_id.as_deref().unwrap_or_default();
    let user = match live::minting_user(state, user_id).await? {
        Ok(u) if d.decided_at.is_none_or(|t| u.credentials_current_at(t)) => u,
        Ok(_) => return Err(Error::invalid_grant(Dead::CredentialsChanged.description())),
        Err(dead) => return Err(Error::invalid_grant(dead.description())),
    };
    if !approval_live(state, d.approving_sid.as_deref()).await? {
        return Err(Error::oauth(
            ErrorCode::AccessDenied,
            "the sign-in session that approved the request has ended: approve it again",
        ));
    }
    let asked = ScopeSet::parse(&d.scope).map_err(Error::internal)?;
    // The user's roles narrow what the device asked for (RFC 6749 §3.3).
    let scope = asked.intersection(&user_allowed_scopes(state, &user, client));
    let auth_time = d.decided_at.unwrap_or(now);
    // A grant session for the device: listed on the account page, ended by logout/revocation.
    // The grant's session says how the approving user had signed in (RFC 8176).
    let amr: Vec<&str> = d.amr.iter().map(String::as_str).collect();
    // Refused (audited) when the user's credentials changed since they were read above.
    let session =
        crate::identity::session::start_grant(state.identity(), &user, &client.id, &amr, ctx)
            .await?
            .ok_or_else(|| Error::invalid_grant(Dead::CredentialsChanged.description()))?;
    let access = state.issuer.access_token(
        Subject::User {
            user: &user,
            auth_time,
            sid: Some(&session.sid),
            amr: &session.amr,
        },
        client,
        &d.resource,
        &scope,
        ctx.dpop_jkt,
        now,
    )?;
    let grant = UserGrant {
        client,
        user: &user,
        auth_time,
        sid: &session.sid,
        resource: &d.resource,
        scope: &scope,
        dpop_jkt: ctx.dpop_jkt,
    };
    let refresh = first_refresh_token(state, grant, now)
        .await?
        .map(|rt| rt.token);
    let id_token = state.issuer.id_token_if_openid(
        IdTokenRequest {
            client,
            user: &user,
            scope: &scope,
            auth_time,
            nonce: None,
            sid: Some(&session.sid),
            amr: &session.amr,
            access_token: access.expose(),
        },
        now,
    )?;
    let ev = AuditEvent::new(now, kinds::DEVICE_TOKEN_ISSUED, Outcome::Success)
        .subject(&user.id)
        .client(&client.id)
        .ctx(ctx);
    state.audit_async(ev).await;
    let issued = Issued {
        grant: GrantType::DeviceCode,
        client,
        subject: &user.id,
        aud: &d.resource,
        scope: &scope,
        refresh: refresh.is_some(),
    };
    audit_issued(state, ctx, issued).await;
    let mut response = state.issuer.response(access, &scope, refresh, ctx.dpop_jkt);
    response.id_token = id_token;
    Ok(response)
}

/// Is the browser session that approved still live? An approval recorded without one (before
/// migration 0024; a code lives minutes) does not stand either.
async fn approval_live(state: &AppState, sid: Option<&str>) -> Result<bool> {
    let Some(sid) = sid else {
        return Ok(false);
    };
    let session = state.store.get_session_by_sid(sid).await?;
    Ok(session.is_some_and(|s| s.is_live()))
}
