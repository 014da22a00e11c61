//! Browser sessions: a random cookie value whose SHA-256 keys a server-side row, with idle and
//! absolute timeouts (OWASP Session Management). Ending a session revokes the refresh tokens
//! issued through it (OIDC RP-Initiated Logout §2).

use crate::config::console::ConsoleConfig;
use crate::config::{BrowserConfig, Config};
use crate::crypto::{random_id, random_secret, sha256_hex};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::identity::IdentityServices;
use crate::store::{AuditEvent, Outcome, Session, SessionStore, Store, TwoFactorStore, User};

/// The live session a cookie value names, if any. Expired sessions are ended on sight; a live
/// one has its idle timer reset (`browser.session_idle_secs`).
pub async fn current(
    store: &dyn SessionStore,
    browser: &BrowserConfig,
    now: i64,
    cookie_value: Option<&str>,
) -> Result<Option<Session>> {
    let Some(value) = cookie_value.filter(|v| !v.is_empty() && v.len() <= 128) else {
        return Ok(None);
    };
    let hash = sha256_hex(value);
    let Some(session) = store.get_session(&hash).await? else {
        return Ok(None);
    };
    let idle = browser.session_idle_secs;
    if session.expires_at <= now || session.last_seen_at + idle <= now {
        store.end_session(&session.sid, now).await?;
        return Ok(None);
    }
    // Writing on every request would be wasteful; a minute of precision is plenty.
    if now - session.last_seen_at >= 60 {
        store.touch_session(&hash, now).await?;
    }
    Ok(Some(session))
}

/// The one re-authentication rule (OWASP ASVS V3.7.1, NIST SP 800-63B §7.1): is `session` a
/// fresh sign-in of `user` with every factor the user has? It must be within
/// `console.reauth_secs` **and** made with a passkey (RFC 8176 `hwk`: possession plus the
/// device's user verification), or with the password (`pwd`) plus — when two-factor sign-in
/// is on now — the second factor (`otp`, or `mfa`). Every change to how an account signs in
/// or what speaks for it (passkeys, TOTP enrolment, API keys) and every administrator's
/// change asks this; a session that fails it is sent to sign in again.
pub async fn is_fresh(
    store: &dyn TwoFactorStore,
    console: &ConsoleConfig,
    now: i64,
    session: &Session,
    user: &User,
) -> Result<bool> {
    let age = now - session.auth_time;
    if session.user_id != user.id || age > console.reauth_secs {
        return Ok(false);
    }
    let used = |m: &str| session.amr.iter().any(|a| a == m);
    if used("hwk") {
        return Ok(true);
    }
    // The password, or for a user who has none (provisioned by an upstream provider) that
    // provider's sign-in: a user with a password proves it here, so an upstream account
    // linked to them is not enough to add lasting credentials.
    let provider_is_the_credential = used("fed") && !user.has_password();
    if !used("pwd") && !provider_is_the_credential {
        return Ok(false);
    }
    Ok(session.is_multi_factor() || !crate::identity::two_factor::is_enabled(store, user).await?)
}

/// The one re-authentication rule (`is_fresh`) and the multi-factor rule of `[mfa]
/// required_roles`, applied to the session `sid` behind a request (the console's, or a
/// token's `sid`) that creates a lasting credential for `user` (an API key): the proof that
/// asks for, or 401 `insufficient_user_authentication` with `max_age` (RFC 9470 §3) so the
/// client signs the user in again and retries. A token without a session (no `sid`) has no
/// sign-in to be recent.
pub async fn recent_sign_in(
    store: &dyn Store,
    config: &Config,
    now: i64,
    sid: Option<&str>,
    user: &User,
) -> Result<crate::clients::api_keys::RecentSignIn> {
    let max_age = config.console.reauth_secs;
    let refused = |why: &'static str| Error::StepUp {
        description: why.into(),
        max_age,
    };
    let Some(sid) = sid else {
        return Err(refused(
            "creating a credential needs a recent sign-in; this token has no sign-in session",
        ));
    };
    let session = store
        .get_session_by_sid(sid)
        .await?
        .filter(|s| s.ended_at.is_none() && s.user_id == user.id)
        .ok_or_else(|| refused("creating a credential needs a recent sign-in"))?;
    if config.mfa.required_for(&user.roles) && !session.is_multi_factor() {
        return Err(refused(
            "creating a credential needs a recent sign-in with a second factor",
        ));
    }
    if !is_fresh(store, &config.console, now, &session, user).await? {
        return Err(refused(
            "creating a credential needs a recent sign-in with every factor; sign in again",
        ));
    }
    Ok(crate::clients::api_keys::RecentSignIn::new(sid, &user.id))
}

/// How a browser signed in: the methods used (RFC 8176 `amr`) and its user agent.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn<'a> {
    pub amr: &'a [&'a str],
    pub user_agent: Option<&'a str>,
}

/// Start a session for `user` who just signed in; returns it and the cookie value.
///
/// `user` is the account as the sign-in read it before checking its secret (for the user's
/// own password change: with the new hash). Starting a session is a compare-and-insert on that
/// state (`SessionStore::create_session`): when the password changed or the account was
/// disabled meanwhile — a remedy that committed while this sign-in was under way — nothing is
/// started (`None`, audited as `login.failed` with reason `credentials_changed`), so no
/// session outlives the remedy.
pub async fn start(
    store: &dyn SessionStore,
    config: &Config,
    events: &Events,
    user: &User,
    how: SignedIn<'_>,
    ctx: &RequestContext,
) -> Result<Option<(Session, String)>> {
    create(store, config, events, user, None, how, ctx).await
}

/// A session for a grant made without a browser (the password grant) by `client_id`: no
/// cookie points at it, but its `sid` goes into the tokens, so the grant can be logged out and
/// revoked like a browser session. It lasts as long as a refresh-token family can. `None`
/// when `user`'s credentials changed since they were read (as `start`).
pub async fn start_grant(
    svc: IdentityServices<'_>,
    user: &User,
    client_id: &str,
    amr: &[&str],
    ctx: &RequestContext,
) -> Result<Option<Session>> {
    let how = SignedIn {
        amr,
        user_agent: None,
    };
    let started = create(
        svc.store,
        svc.config,
        svc.events,
        user,
        Some(client_id),
        how,
        ctx,
    )
    .await?;
    Ok(started.map(|(session, _)| session))
}

async fn create(
    store: &dyn SessionStore,
    config: &Config,
    events: &Events,
    user: &User,
    grant_of: Option<&str>,
    how: SignedIn<'_>,
    ctx: &RequestContext,
) -> Result<Option<(Session, String)>> {
    let kind = if grant_of.is_some() {
        "grant"
    } else {
        "browser"
    };
    let value = random_secret();
    let now = ctx.now;
    let session = Session {
        id_hash: sha256_hex(&value),
        sid: random_id("sid_"),
        user_id: user.id.clone(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at: now
            + if grant_of.is_some() {
                config.refresh_token_absolute_ttl_secs
            } else {
                config.browser.session_absolute_secs
            },
        ended_at: None,
        client_id: grant_of.map(str::to_owned),
        amr: how.amr.iter().map(|m| (*m).to_owned()).collect(),
        user_agent: how.user_agent.map(|ua| ua.chars().take(200).collect()),
        ip: ctx.ip.map(|ip| ip.to_string()),
    };
    if !store
        .create_session(&session, &user.password_hash, user.factors_epoch)
        .await?
    {
        let details = serde_json::json!({
            "via": "session", "kind": kind, "reason": "credentials_changed",
        });
        let mut ev = AuditEvent::new(now, kinds::LOGIN_FAILED, Outcome::Failure)
            .actor(&user.username)
            .subject(&user.id)
            .details(details)
            .ctx(ctx);
        if let Some(client_id) = grant_of {
            ev = ev.client(client_id);
        }
        events.audit(ev).await;
        return Ok(None);
    }
    let ev = AuditEvent::new(now, kinds::SESSION_STARTED, Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .details(serde_json::json!({ "sid": session.sid, "kind": kind, "amr": session.amr }))
        .ctx(ctx);
    events.audit(ev).await;
    Ok(Some((session, value)))
}

/// End a session and revoke what was issued through it.
pub async fn end(
    store: &dyn SessionStore,
    events: &Events,
    session: &Session,
    reason: &str,
    ctx: &RequestContext,
) -> Result<()> {
    let now = ctx.now;
    let end = store.end_session(&session.sid, now).await?;
    let (ended, revoked) = (end.ended, end.refresh_tokens_revoked);
    if ended {
        let signal = crate::events::ssf::Signal::SessionRevoked {
            user: Some(&session.user_id),
            sid: &session.sid,
        };
        events.signal(signal).await;
        let ev = AuditEvent::new(now, kinds::SESSION_ENDED, Outcome::Success)
            .subject(&session.user_id)
            .details(serde_json::json!({
                "sid": session.sid, "reason": reason, "refresh_tokens_revoked": revoked,
            }))
            .ctx(ctx);
        events.audit(ev).await;
    }
    Ok(())
}
