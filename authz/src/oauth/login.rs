//! Checking a user's password, for the login form and the password grant alike, with
//! per-username throttling (stored, so every replica sees it).
//!
//! - One generic failure for unknown user, wrong password and disabled account; unknown users
//!   cost the same argon2 verification (dummy hash), so neither words nor timing enumerate
//!   accounts (RFC 9700 §4.15 / OWASP Authentication Cheat Sheet).
//! - Failures are counted per lower-cased username whether or not it exists, so a lock says
//!   nothing about existence. After `login_max_failures` within the window the name is locked
//!   for `login_lockout_secs`, doubling with each further lock (capped at a day). While locked,
//!   the password is not even checked: a correct guess during a lock learns nothing.

use crate::crypto::sha256_hex;
use crate::error::Result;
use crate::oauth::grant::RequestContext;
use crate::state::AppState;
use crate::store::{AuditEvent, LoginThrottle, Outcome, User};

const MAX_LOCK_SECS: i64 = 24 * 3600;
const MAX_USERNAME_BYTES: usize = 256;

/// Why a login did not succeed (the caller shows one generic message for `Invalid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    Invalid,
    /// Too many failures: try again after this many seconds.
    Locked {
        retry_after: i64,
    },
}

/// Verify `username` / `password`; `via` names the entry point for the audit log.
pub async fn authenticate(
    state: &AppState,
    username: &str,
    password: &str,
    client_id: &str,
    via: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<User, LoginFailure>> {
    let now = state.now();
    let key = sha256_hex(&username.to_lowercase());
    let throttle = state.store.get_throttle(&key).await?.unwrap_or_default();
    if let Some(until) = throttle.locked_until.filter(|u| *u > now) {
        audit_failure(state, username, None, client_id, via, "locked", ctx).await;
        return Ok(Err(LoginFailure::Locked {
            retry_after: until - now,
        }));
    }
    let too_long = username.len() > MAX_USERNAME_BYTES
        || password.chars().count() > state.config.password_policy.max_length;
    let user = if too_long {
        None
    } else {
        state.store.get_user_by_username(username).await?
    };
    let ok = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?
        && !too_long;
    match user {
        Some(u) if ok && u.disabled_at.is_none() => {
            if throttle != LoginThrottle::default() {
                state.store.clear_throttle(&key).await?;
            }
            Ok(Ok(u))
        }
        other => {
            let reason = match &other {
                None => "unknown_user",
                Some(u) if u.disabled_at.is_some() => "disabled",
                Some(_) => "bad_password",
            };
            let next = record_failure(state, throttle, now);
            state.store.put_throttle(&key, &next).await?;
            let subject = other.as_ref().map(|u| u.id.as_str());
            audit_failure(state, username, subject, client_id, via, reason, ctx).await;
            if let Some(until) = next.locked_until.filter(|u| *u > now) {
                let mut ev = AuditEvent::new(now, "login.locked", Outcome::Failure)
                    .actor(truncate(username))
                    .client(client_id)
                    .details(
                        serde_json::json!({ "lock_secs": until - now, "lockouts": next.lockouts }),
                    );
                if let Some(s) = subject {
                    ev = ev.subject(s);
                }
                ev.ip = ctx.ip.clone();
                state.audit(ev).await;
                return Ok(Err(LoginFailure::Locked {
                    retry_after: until - now,
                }));
            }
            Ok(Err(LoginFailure::Invalid))
        }
    }
}

/// Count one failure; lock when the window's budget is spent.
fn record_failure(state: &AppState, mut t: LoginThrottle, now: i64) -> LoginThrottle {
    let cfg = &state.config.browser;
    if now - t.window_start >= cfg.login_failure_window_secs {
        t.window_start = now;
        t.failures = 0;
    }
    t.failures += 1;
    if t.failures >= cfg.login_max_failures {
        let factor = 1_i64 << t.lockouts.clamp(0, 16);
        t.locked_until = Some(now + (cfg.login_lockout_secs * factor).min(MAX_LOCK_SECS));
        t.lockouts += 1;
        t.failures = 0;
        t.window_start = now;
    }
    t
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

async fn audit_failure(
    state: &AppState,
    username: &str,
    subject: Option<&str>,
    client_id: &str,
    via: &str,
    reason: &str,
    ctx: &RequestContext,
) {
    let mut ev = AuditEvent::new(state.now(), "login.failed", Outcome::Failure)
        .actor(truncate(username))
        .client(client_id)
        .details(serde_json::json!({ "via": via, "reason": reason }));
    if let Some(s) = subject {
        ev = ev.subject(s);
    }
    ev.ip = ctx.ip.clone();
    state.audit(ev).await;
}

/// Audit a successful login.
pub async fn audit_success(
    state: &AppState,
    user: &User,
    client_id: &str,
    via: &str,
    ctx: &RequestContext,
) {
    let mut ev = AuditEvent::new(state.now(), "login.succeeded", Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .client(client_id)
        .details(serde_json::json!({ "via": via }));
    ev.ip = ctx.ip.clone();
    state.audit(ev).await;
}
