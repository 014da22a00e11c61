//! Checking a user's password, for the login form and the password grant alike, and the TOTP
//! second factor after it (`second_factor`), with per-username throttling (stored, so every
//! replica sees it): a code attempt counts exactly like a password attempt, and while a code
//! is owed a right password does not clear the count.
//!
//! - One generic failure for unknown user, wrong password and disabled account; unknown users
//!   cost the same argon2 verification (dummy hash), so neither words nor timing enumerate
//!   accounts (RFC 9700 §4.15 / OWASP Authentication Cheat Sheet).
//! - Attempts are counted per lower-cased username whether or not it exists, so a lock says
//!   nothing about existence. Each attempt is counted atomically **before** the password is
//!   checked (`ThrottleStore::count_attempt`, one upsert with `RETURNING`) and the decision
//!   uses the returned count: a burst of N concurrent guesses counts N, and attempts beyond the
//!   budget are not checked at all (answered "retry in a moment": the attempts ahead of them
//!   either spend the budget and lock the name, or succeed and clear the count). A success
//!   clears the count. After
//!   `login_max_failures` within the window the name is locked for `login_lockout_secs`,
//!   doubling with each further lock (capped at a day). While locked, the password is not even
//!   checked: a correct guess during a lock learns nothing.
//! - With a directory (`[ldap]`), its names are checked there, after the attempt is counted
//!   (`identity::directory`); a failed bind and an unknown name are the same generic failure.
//! - When the hashing queue is full the attempt is shed (`Error::Overloaded`) before it is
//!   counted.

use crate::events::kinds;
use shared::secret::Password;

use crate::crypto::sha256_hex;
use crate::error::Result;
use crate::events::audit::RequestContext;
use crate::identity::IdentityServices;
use crate::identity::directory::Answer;
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
    /// The directory checked the password, but the account is refused here (the words for
    /// the person: no account and no provisioning, no username free…).
    Refused {
        message: &'static str,
    },
}

/// Verify `username` / `password`; `via` names the entry point for the audit log.
pub async fn authenticate(
    svc: IdentityServices<'_>,
    username: &str,
    password: &Password,
    client_id: &str,
    via: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<User, LoginFailure>> {
    let key = sha256_hex(&username.to_lowercase());
    // 1. Count this attempt first; decide on the count that includes it.
    let counted = match admit(svc, username, &key, client_id, via, ctx).await? {
        Ok(counted) => counted,
        Err(locked) => return Ok(Err(locked)),
    };
    // 2. Check the password (argon2id on the worker pool; the dummy hash for unknown users).
    // Over-long input, or a name with control characters (a NUL is refused by PostgreSQL's
    // text type: a lookup would fail as a server error), is checked against nothing.
    let too_long = username.len() > MAX_USERNAME_BYTES
        || username.chars().any(char::is_control)
        || password.expose().chars().count() > svc.config.password_policy.max_length;
    let user = if too_long {
        None
    } else {
        svc.store.get_user_by_username(username).await?
    };
    // The directory's names are checked there (`directory::decides`).
    if !too_long && crate::identity::directory::decides(svc, user.as_ref()).await? {
        return at_directory(svc, username, password, &key, &counted, client_id, via, ctx).await;
    }
    // `federation.only = "ldap"`: the form is for directory users alone.
    let local_off = svc.config.federation.only.as_deref() == Some(crate::config::ldap::PROVIDER);
    let ok = svc
        .passwords
        // No password (a federated user): checked against the dummy hash, like an unknown
        // name, so the answer and its timing are the same.
        .verify(
            password,
            user.as_ref()
                .map(|u| u.password_hash.as_str())
                .filter(|h| !h.is_empty()),
        )
        .await?
        && !too_long;
    match user {
        Some(u) if ok && u.is_enabled() && !local_off => {
            // With a second factor the sign-in is not done: the count stands until the code
            // is right too, so a known password does not reset the code-guessing budget.
            if !crate::identity::two_factor::is_enabled(svc.store, &u).await? {
                svc.store.clear_throttle(&key).await?;
            }
            Ok(Ok(u))
        }
        other => {
            let reason = match &other {
                None => "unknown_user",
                Some(u) if !u.is_enabled() => "disabled",
                Some(_) if local_off => "local_sign_in_off",
                Some(_) => "bad_password",
            };
            let subject = other.as_ref().map(|u| u.id.as_str());
            audit_failure(svc, username, subject, client_id, via, reason, ctx).await;
            failed(svc, username, subject, &key, &counted, client_id, ctx).await
        }
    }
}

/// Check the password of `user`, who is signed in already (a confirmation on the account
/// pages): as `authenticate` with their username, except that a directory user's password is
/// checked against their own entry (found by the link), whatever the name they sign in with
/// (review 6 B3). Counted against their username like any attempt.
pub async fn reauthenticate(
    svc: IdentityServices<'_>,
    user: &User,
    password: &Password,
    client_id: &str,
    via: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<User, LoginFailure>> {
    let Some(subject) = crate::identity::directory::linked_subject(svc, user).await? else {
        return authenticate(svc, &user.username, password, client_id, via, ctx).await;
    };
    let key = sha256_hex(&user.username.to_lowercase());
    let counted = match admit(svc, &user.username, &key, client_id, via, ctx).await? {
        Ok(counted) => counted,
        Err(locked) => return Ok(Err(locked)),
    };
    let ok = match svc.directory {
        Some(d) if !password.expose().is_empty() => {
            d.verify(svc, &subject, password, ctx.now).await?
        }
        _ => false,
    };
    if ok && user.is_enabled() {
        if !crate::identity::two_factor::is_enabled(svc.store, user).await? {
            svc.store.clear_throttle(&key).await?;
        }
        return Ok(Ok(user.clone()));
    }
    let subject = Some(user.id.as_str());
    let name = &user.username;
    audit_failure(svc, name, subject, client_id, via, "bad_password", ctx).await;
    failed(svc, name, subject, &key, &counted, client_id, ctx).await
}

/// The directory checks the password (the attempt was counted): its user, or the failure.
/// The entry it finds is throttled too (`EntryGate`), and the attempt costs one argon2
/// verification like every other path, so its timing does not tell local names apart.
#[allow(clippy::too_many_arguments)]
async fn at_directory(
    svc: IdentityServices<'_>,
    username: &str,
    password: &Password,
    key: &str,
    counted: &LoginThrottle,
    client_id: &str,
    via: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<User, LoginFailure>> {
    let Some(directory) = svc.directory else {
        // A directory user while no directory is configured: nobody signs them in (a
        // password set here meanwhile included).
        let reason = "directory_not_configured";
        audit_failure(svc, username, None, client_id, via, reason, ctx).await;
        svc.passwords.verify(password, None).await?;
        return failed(svc, username, None, key, counted, client_id, ctx).await;
    };
    let gate = EntryGate {
        svc,
        username,
        client_id,
        via,
        ctx,
        counted: std::sync::Mutex::new(None),
        stop: std::sync::Mutex::new(None),
    };
    let (answer, hashed) = tokio::join!(
        directory.sign_in(svc, username, password, &gate, ctx),
        svc.passwords.verify(password, None)
    );
    let answer = answer?;
    hashed?;
    let entry = gate.counted.lock().ok().and_then(|mut c| c.take());
    match answer {
        Answer::User(u) => {
            // The entry's count ends with a right password (the code step, if any, counts
            // against the name: issue 26 LDAP review 2 N4); the name's stands until the code.
            if let Some((entry_key, _)) = &entry {
                svc.store.clear_throttle(entry_key).await?;
            }
            // The code step counts against the account's own name: a name typed otherwise
            // (another spelling, an address) is done with here (review 6 B2).
            let own = sha256_hex(&u.username.to_lowercase());
            if key != own || !crate::identity::two_factor::is_enabled(svc.store, &u).await? {
                svc.store.clear_throttle(key).await?;
            }
            Ok(Ok(u))
        }
        Answer::Failed(reason) => {
            audit_failure(svc, username, None, client_id, via, reason, ctx).await;
            let typed = failed(svc, username, None, key, counted, client_id, ctx).await?;
            let of_entry = match &entry {
                Some((entry_key, c)) => {
                    failed(svc, username, None, entry_key, c, client_id, ctx).await?
                }
                None => Err(LoginFailure::Invalid),
            };
            // Either lock is the answer.
            Ok(match (typed, of_entry) {
                (Err(l @ LoginFailure::Locked { .. }), _)
                | (_, Err(l @ LoginFailure::Locked { .. })) => Err(l),
                (typed, _) => typed,
            })
        }
        Answer::Refused { reason, message } => {
            audit_failure(svc, username, None, client_id, via, reason, ctx).await;
            Ok(Err(LoginFailure::Refused { message }))
        }
        Answer::Stopped => Ok(Err(gate
            .stop
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or(LoginFailure::Invalid))),
    }
}

/// The throttle of a directory entry (`directory::Gate`): its own key, counted like a name's.
struct EntryGate<'a> {
    svc: IdentityServices<'a>,
    username: &'a str,
    client_id: &'a str,
    via: &'a str,
    ctx: &'a RequestContext,
    /// The entry's key and its count, once admitted.
    counted: std::sync::Mutex<Option<(String, LoginThrottle)>>,
    /// Why it was not.
    stop: std::sync::Mutex<Option<LoginFailure>>,
}

#[async_trait::async_trait]
impl crate::identity::directory::Gate for EntryGate<'_> {
    async fn admit(&self, subject: &str) -> Result<bool> {
        let key = sha256_hex(&format!("directory:{subject}"));
        let (svc, ctx) = (self.svc, self.ctx);
        match admit(svc, self.username, &key, self.client_id, self.via, ctx).await? {
            Ok(c) => {
                if let Ok(mut slot) = self.counted.lock() {
                    *slot = Some((key, c));
                }
                Ok(true)
            }
            Err(stop) => {
                if let Ok(mut slot) = self.stop.lock() {
                    *slot = Some(stop);
                }
                Ok(false)
            }
        }
    }
}

/// Count one attempt for `username` (its throttle key `key`) before anything is checked:
/// the count that includes it, or why it is not checked at all (locked; or a burst beyond the
/// budget, told to retry in a moment).
async fn admit(
    svc: IdentityServices<'_>,
    username: &str,
    key: &str,
    client_id: &str,
    via: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<LoginThrottle, LoginFailure>> {
    let now = ctx.now;
    let cfg = &svc.config.browser;
    // Shed before counting: an attempt the server cannot check is not one.
    if svc.passwords.saturated() {
        return Err(crate::error::Error::Overloaded { retry_after: 1 });
    }
    let counted = svc
        .store
        .count_attempt(key, now, cfg.login_failure_window_secs)
        .await?;
    if let Some(until) = counted.locked_until.filter(|u| *u > now) {
        audit_failure(svc, username, None, client_id, via, "locked", ctx).await;
        return Ok(Err(LoginFailure::Locked {
            retry_after: until - now,
        }));
    }
    if counted.failures > cfg.login_max_failures {
        // More attempts in flight than the budget has left (a burst): this one is not
        // checked. The earlier ones decide — they lock the name if they fail, clear the count
        // if one succeeds — so the caller is told to retry in a moment, not that it is locked.
        audit_failure(svc, username, None, client_id, via, "over_budget", ctx).await;
        return Err(crate::error::Error::Overloaded { retry_after: 1 });
    }
    Ok(Ok(counted))
}

/// A failed attempt: locks the name when it spent the budget.
async fn failed(
    svc: IdentityServices<'_>,
    username: &str,
    subject: Option<&str>,
    key: &str,
    counted: &LoginThrottle,
    client_id: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<User, LoginFailure>> {
    if counted.failures >= svc.config.browser.login_max_failures {
        return Ok(Err(lock(
            svc, username, subject, key, counted, client_id, ctx,
        )
        .await?));
    }
    Ok(Err(LoginFailure::Invalid))
}

/// The second step of a sign-in (issue 17): a TOTP code or a recovery code from `user`, whose
/// password was just checked. It counts toward the same per-username lockout as passwords:
/// counted before it is checked, a success clears the count, the budget's last failure locks.
/// A replayed code fails like a wrong one.
pub async fn second_factor(
    svc: IdentityServices<'_>,
    user: &User,
    code: &str,
    client_id: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<User, LoginFailure>> {
    let via = "second_factor";
    let key = sha256_hex(&user.username.to_lowercase());
    let counted = match admit(svc, &user.username, &key, client_id, via, ctx).await? {
        Ok(counted) => counted,
        Err(locked) => return Ok(Err(locked)),
    };
    if crate::identity::two_factor::check(svc.store, svc.master, svc.events, user, code).await? {
        svc.store.clear_throttle(&key).await?;
        return Ok(Ok(user.clone()));
    }
    let subject = Some(user.id.as_str());
    audit_failure(
        svc,
        &user.username,
        subject,
        client_id,
        via,
        "bad_code",
        ctx,
    )
    .await;
    failed(svc, &user.username, subject, &key, &counted, client_id, ctx).await
}

/// Lock the username (one of concurrent callers wins; the others see the lock it set).
async fn lock(
    svc: IdentityServices<'_>,
    username: &str,
    subject: Option<&str>,
    key: &str,
    counted: &LoginThrottle,
    client_id: &str,
    ctx: &RequestContext,
) -> Result<LoginFailure> {
    let now = ctx.now;
    let cfg = &svc.config.browser;
    let factor = 1_i64 << counted.lockouts.clamp(0, 16);
    let until = now + (cfg.login_lockout_secs * factor).min(MAX_LOCK_SECS);
    match svc.store.lock_throttle(key, now, until).await? {
        Some(locked) => {
            let mut ev = AuditEvent::new(now, kinds::LOGIN_LOCKED, Outcome::Failure)
                .actor(truncate(username))
                .client(client_id)
                .details(
                    serde_json::json!({ "lock_secs": until - now, "lockouts": locked.lockouts }),
                );
            if let Some(s) = subject {
                ev = ev.subject(s);
            }
            ev = ev.ctx(ctx);
            svc.audit(ev).await;
            Ok(LoginFailure::Locked {
                retry_after: until - now,
            })
        }
        // Another attempt locked it a moment ago.
        None => {
            let current = svc.store.get_throttle(key).await?.unwrap_or_default();
            Ok(LoginFailure::Locked {
                retry_after: current
                    .locked_until
                    .map_or(cfg.login_lockout_secs, |u| (u - now).max(1)),
            })
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

async fn audit_failure(
    svc: IdentityServices<'_>,
    username: &str,
    subject: Option<&str>,
    client_id: &str,
    via: &str,
    reason: &str,
    ctx: &RequestContext,
) {
    let mut ev = AuditEvent::new(ctx.now, kinds::LOGIN_FAILED, Outcome::Failure)
        .actor(truncate(username))
        .client(client_id)
        .details(serde_json::json!({ "via": via, "reason": reason }));
    if let Some(s) = subject {
        ev = ev.subject(s);
    }
    ev = ev.ctx(ctx);
    svc.audit(ev).await;
}

/// Audit a successful login.
pub async fn audit_success(
    svc: IdentityServices<'_>,
    user: &User,
    client_id: &str,
    via: &str,
    ctx: &RequestContext,
) {
    let ev = AuditEvent::new(ctx.now, kinds::LOGIN_SUCCEEDED, Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .client(client_id)
        .details(serde_json::json!({ "via": via }))
        .ctx(ctx);
    svc.audit(ev).await;
}
