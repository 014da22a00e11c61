//! Passkeys (WebAuthn Level 2, through `webauthn-rs`): registering one from the account page,
//! and signing in with it — username-less (a discoverable credential names its user), after
//! the username, or as the second factor after the password.
//!
//! - The relying party is this server: RP ID = the issuer's host, origin = the issuer's
//!   origin (WebAuthn §5.1.3 step 9 / §7.1 step 13: the browser and `webauthn-rs` check both).
//! - User verification is required (`webauthn-rs` passkey policy), so a passkey sign-in is two
//!   factors by itself (possession + the device's PIN or biometric): `amr` = `hwk` `user`
//!   `mfa` (RFC 8176); after a password it is the second factor (`pwd` `hwk` `mfa`).
//! - A ceremony's challenge svc is kept server-side and taken once (`PasskeyStore::
//!   take_ceremony`: one `DELETE … RETURNING`), for 5 minutes; the browser holds only a random
//!   id for it. A replayed assertion finds no ceremony.
//! - The WebAuthn user handle is a UUID derived from the user id (no personal data); the
//!   stored credential is public data (public key, signature counter; a counter that goes
//!   backwards is refused by `webauthn-rs` as a possibly cloned authenticator).
//!
//! The ceremonies (`ceremony`, through `webauthn-rs` and so OpenSSL) are behind the default-on
//! cargo feature `passkeys`; removing a stored passkey (`remove`, and the remedies that remove
//! them all in the store) is not: a server built without the feature still ends those
//! credentials, and never trusts one (docs/architecture.md, decision record "One crypto
//! stack").

#[cfg(feature = "passkeys")]
mod ceremony;

#[cfg(feature = "passkeys")]
pub use ceremony::{
    finish_authentication, finish_registration, start_authentication, start_registration,
};

use crate::error::{Error, Result};
use crate::events::kinds;
use crate::identity::IdentityServices;
use crate::store::{AuditEvent, Outcome, User};

/// The most passkeys one account may hold (checked where passkeys are registered).
#[cfg(feature = "passkeys")]
pub(crate) const MAX_PER_USER: usize = 10;

/// The 16 bytes of `user_id`'s WebAuthn user handle: a UUID from its hash (stable, says
/// nothing of the user).
fn handle_bytes(user_id: &str) -> [u8; 16] {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("webauthn-user:{user_id}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    // RFC 9562 §5.8: version 8 (custom), variant 10.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    b
}

/// The WebAuthn user handle of `user_id` as stored (`StoredPasskey::user_handle`): the UUID's
/// hyphenated lower-case text (RFC 9562 §4).
pub fn user_handle(user_id: &str) -> String {
    let hex: String = handle_bytes(user_id)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Remove one of `user`'s passkeys: by the user (`actor` is their username) or by an
/// administrator (`actor` is theirs). Every session and refresh token of the user ends with
/// it, in the same transaction — a session signed in with that passkey must not outlive it
/// (a passkey sign-in counts as a fresh re-authentication) — except those of `keep`: the
/// user's own session making the change (fresh by the re-authentication rule). Audited with
/// that actor and how many sessions ended; signalled (SSF credential change).
pub async fn remove(
    svc: IdentityServices<'_>,
    actor: &str,
    user: &User,
    credential_id: &str,
    keep: Option<&str>,
) -> Result<crate::store::GrantsEnded> {
    let now = svc.now();
    let Some(ended) = svc
        .store
        .delete_passkey(&user.id, credential_id, now, keep)
        .await?
    else {
        return Err(Error::NotFound("passkey".into()));
    };
    let ev = AuditEvent::new(now, kinds::PASSKEY_REMOVED, Outcome::Success)
        .actor(actor)
        .subject(&user.id)
        .details(serde_json::json!({
            "credential_id": credential_id,
            "sessions_ended": ended.sessions_ended,
            "refresh_tokens_revoked": ended.refresh_tokens_revoked,
        }));
    svc.audit(ev).await;
    let changed = crate::events::ssf::Signal::CredentialChange {
        user: &user.id,
        credential: "fido2-platform",
        client_id: None,
    };
    svc.events.signal(changed).await;
    Ok(ended)
}
