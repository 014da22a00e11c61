//! The TOTP second factor of an account (RFC 6238, `totp`): enrolment, confirmation with one
//! valid code, checking a code or a recovery code at sign-in, and turning it off. The pages
//! and the sign-in step use these (issue 17).
//!
//! - The secret is sealed under the master key with the user id as associated data, so a
//!   sealed secret cannot be moved onto another account; it is shown only at enrolment.
//! - An enrolment is not active until a code from it is confirmed; confirming issues the ten
//!   recovery codes, shown once and stored as SHA-256 hashes.
//! - A code is spent by one conditional update of the user's last step, and a recovery code by
//!   one conditional update of its row, so the same code cannot succeed twice, even in two
//!   concurrent sign-ins. Every outcome is audited (`mfa.*`).

use crate::events::kinds;
use shared::crypto::sha256_hex;

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::identity::totp;
use crate::store::{AuditEvent, Outcome, TwoFactorStore, User};

/// What the user needs to add the account to an authenticator app.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret in base32, for typing in by hand.
    pub secret_base32: String,
    /// The `otpauth://` URI (for the QR code).
    pub uri: String,
}

fn aad(user_id: &str) -> Vec<u8> {
    format!("totp:{user_id}").into_bytes()
}

async fn audit(events: &Events, user: &User, kind: &str, outcome: Outcome) {
    let event = AuditEvent::new(events.now(), kind, outcome)
        .actor(user.username.clone())
        .subject(&user.id);
    events.audit(event).await;
}

/// Start (or restart) enrolment: a fresh secret, inactive until [`confirm`]. Replaces any
/// earlier enrolment and recovery codes. `issuer` names the account in the authenticator app.
pub async fn begin(
    store: &dyn TwoFactorStore,
    master: &MasterKey,
    events: &Events,
    issuer: &str,
    user: &User,
) -> Result<Enrolment> {
    let secret = totp::new_secret();
    let sealed = master.seal(&aad(&user.id), &secret);
    store.begin_totp(&user.id, &sealed, events.now()).await?;
    audit(events, user, kinds::MFA_ENROLMENT_STARTED, Outcome::Success).await;
    Ok(Enrolment {
        secret_base32: totp::base32(&secret),
        uri: totp::otpauth_uri(issuer, &user.username, &secret),
    })
}

/// The user's secret and stored state, if enrolled.
async fn secret_of(
    store: &dyn TwoFactorStore,
    master: &MasterKey,
    user: &User,
) -> Result<Option<(Vec<u8>, crate::store::StoredTotp)>> {
    let Some(stored) = store.get_totp(&user.id).await? else {
        return Ok(None);
    };
    let secret = master
        .open(&aad(&user.id), &stored.secret_enc)
        .map_err(|e| Error::internal(format!("TOTP secret of {}: {e}", user.id)))?;
    Ok(Some((secret, stored)))
}

/// The enrolment started and not yet confirmed, to show again (after a mistyped code).
pub async fn pending(
    store: &dyn TwoFactorStore,
    master: &MasterKey,
    issuer: &str,
    user: &User,
) -> Result<Option<Enrolment>> {
    Ok(match secret_of(store, master, user).await? {
        Some((secret, stored)) if stored.confirmed_at.is_none() => Some(Enrolment {
            secret_base32: totp::base32(&secret),
            uri: totp::otpauth_uri(issuer, &user.username, &secret),
        }),
        _ => None,
    })
}

/// Confirm a pending enrolment with a code from the app: it becomes active, and the recovery
/// codes (to show once) are returned.
pub async fn confirm(
    store: &dyn TwoFactorStore,
    master: &MasterKey,
    events: &Events,
    user: &User,
    code: &str,
) -> Result<Vec<String>> {
    let Some((secret, stored)) = secret_of(store, master, user).await? else {
        return Err(Error::Invalid(
            "start the two-factor enrolment first".into(),
        ));
    };
    if stored.confirmed_at.is_some() {
        return Err(Error::Conflict("two-factor sign-in is already on".into()));
    }
    let now = events.now();
    let spent = match totp::verify(&secret, code, now, stored.last_step) {
        Some(step) => store.spend_totp_step(&user.id, step, now).await?,
        None => false,
    };
    if !spent {
        audit(events, user, kinds::MFA_CONFIRM_FAILED, Outcome::Failure).await;
        return Err(Error::Invalid(
            "that code is not valid: check the app's clock and try the current code".into(),
        ));
    }
    let codes = new_recovery_codes(store, user).await?;
    audit(events, user, kinds::MFA_ENABLED, Outcome::Success).await;
    Ok(codes)
}

/// Issue ten new recovery codes (the old ones stop working): to show once.
pub async fn new_recovery_codes(store: &dyn TwoFactorStore, user: &User) -> Result<Vec<String>> {
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| sha256_hex(&totp::normalize_recovery_code(c)))
        .collect();
    store.set_recovery_codes(&user.id, &hashes).await?;
    Ok(codes)
}

/// Whether the user signs in with a second factor (an enrolment confirmed).
pub async fn is_enabled(store: &dyn TwoFactorStore, user: &User) -> Result<bool> {
    Ok(store
        .get_totp(&user.id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some()))
}

/// Check the second factor at sign-in: a current code (spent, so never accepted twice) or an
/// unused recovery code (spent, audited). `false` for anything else, and for a user without
/// an active enrolment.
pub async fn check(
    store: &dyn TwoFactorStore,
    master: &MasterKey,
    events: &Events,
    user: &User,
    typed: &str,
) -> Result<bool> {
    let Some((secret, stored)) = secret_of(store, master, user).await? else {
        return Ok(false);
    };
    if stored.confirmed_at.is_none() {
        return Ok(false);
    }
    let now = events.now();
    // A code of the window: spent now, or already spent (a replay, audited as one).
    if let Some(step) = totp::verify(&secret, typed, now, None) {
        let fresh = stored.last_step.is_none_or(|last| step > last);
        if fresh && store.spend_totp_step(&user.id, step, now).await? {
            return Ok(true);
        }
        audit(events, user, kinds::MFA_CODE_REPLAYED, Outcome::Failure).await;
        return Ok(false);
    }
    let normalized = totp::normalize_recovery_code(typed);
    if normalized.len() == 10
        && store
            .spend_recovery_code(&user.id, &sha256_hex(&normalized), now)
            .await?
    {
        audit(
            events,
            user,
            kinds::MFA_RECOVERY_CODE_USED,
            Outcome::Success,
        )
        .await;
        return Ok(true);
    }
    audit(events, user, kinds::MFA_CODE_FAILED, Outcome::Failure).await;
    Ok(false)
}

/// Turn the second factor off (the caller has checked the password and a code).
pub async fn disable(store: &dyn TwoFactorStore, events: &Events, user: &User) -> Result<bool> {
    let removed = store.remove_totp(&user.id, None).await?.totp;
    if removed {
        audit(events, user, kinds::MFA_DISABLED, Outcome::Success).await;
    }
    Ok(removed)
}

/// An administrator's reset of `user`'s second factors (`actor` is the administrator): the
/// TOTP enrolment, the recovery codes and every passkey go, and every session and refresh
/// token of the user ends, in one transaction, so neither a credential planted by whoever held
/// the account nor a session signed in with a removed factor survives it. Audited
/// (`mfa.reset_by_admin`, with how many sessions ended) and signalled (SSF credential change)
/// when anything was removed.
pub async fn reset(
    store: &dyn TwoFactorStore,
    events: &Events,
    actor: &str,
    user: &User,
) -> Result<crate::store::SecondFactorsRemoved> {
    let removed = store.remove_totp(&user.id, Some(events.now())).await?;
    if removed.totp || removed.passkeys > 0 {
        let event = AuditEvent::new(events.now(), kinds::MFA_RESET_BY_ADMIN, Outcome::Success)
            .actor(actor)
            .subject(&user.id)
            .details(serde_json::json!({
                "username": user.username,
                "totp_removed": removed.totp,
                "passkeys_removed": removed.passkeys,
                "sessions_ended": removed.ended.sessions_ended,
                "refresh_tokens_revoked": removed.ended.refresh_tokens_revoked,
            }));
        events.audit(event).await;
        // RFC 8176 / CAEP credential types: "app" (an authenticator app), "fido2-platform".
        let kinds = [
            (removed.totp, "app"),
            (removed.passkeys > 0, "fido2-platform"),
        ];
        for (_, credential) in kinds.iter().filter(|(gone, _)| *gone) {
            let changed = crate::events::ssf::Signal::CredentialChange {
                user: &user.id,
                credential,
                client_id: None,
            };
            events.signal(changed).await;
        }
    }
    Ok(removed)
}

/// Recovery codes the user has left.
pub async fn recovery_codes_left(store: &dyn TwoFactorStore, user: &User) -> Result<i64> {
    store.recovery_codes_left(&user.id).await
}
