//! Passkeys (WebAuthn Level 2, through `webauthn-rs`): registering one from the account page,
//! and signing in with it — username-less (a discoverable credential names its user), after
//! the username, or as the second factor after the password.
//!
//! - The relying party is this server: RP ID = the issuer's host, origin = the issuer's
//!   origin (WebAuthn §5.1.3 step 9 / §7.1 step 13: the browser and `webauthn-rs` check both).
//! - User verification is required (`webauthn-rs` passkey policy), so a passkey sign-in is two
//!   factors by itself (possession + the device's PIN or biometric): `amr` = `hwk` `user`
//!   `mfa` (RFC 8176); after a password it is the second factor (`pwd` `hwk` `mfa`).
//! - A ceremony's challenge state is kept server-side and taken once (`PasskeyStore::
//!   take_ceremony`: one `DELETE … RETURNING`), for 5 minutes; the browser holds only a random
//!   id for it. A replayed assertion finds no ceremony.
//! - The WebAuthn user handle is a UUID derived from the user id (no personal data); the
//!   stored credential is public data (public key, signature counter; a counter that goes
//!   backwards is refused by `webauthn-rs` as a possibly cloned authenticator).

use crate::events::kinds;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::crypto::{random_secret, sha256_hex};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{AuditEvent, Outcome, StoredPasskey, User};

const CEREMONY_SECS: i64 = 300;
const REGISTER: &str = "register";
const AUTH_USER: &str = "auth-user";
const AUTH_DISCOVERABLE: &str = "auth-discoverable";
/// The most passkeys one account may hold.
pub const MAX_PER_USER: usize = 10;

/// The relying party for this issuer.
fn webauthn(state: &AppState) -> Result<Webauthn> {
    let origin = Url::parse(&state.config.issuer).map_err(Error::internal)?;
    let rp_id = origin
        .host_str()
        .ok_or_else(|| Error::internal("the issuer has no host"))?
        .to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("Authz").build())
        .map_err(|e| Error::internal(format!("webauthn: {e}")))
}

/// The WebAuthn user handle of `user_id`: a UUID from its hash (stable, says nothing).
pub fn user_handle(user_id: &str) -> Uuid {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("webauthn-user:{user_id}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    // RFC 9562 §5.8: version 8 (custom), variant 10.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

fn credential_id_text(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn keep(
    state: &AppState,
    user_id: Option<&str>,
    kind: &str,
    ceremony: &impl serde::Serialize,
) -> Result<String> {
    let id = random_secret();
    let json = serde_json::to_string(ceremony).map_err(Error::internal)?;
    let now = state.now();
    state
        .store
        .put_ceremony(
            &sha256_hex(&id),
            user_id,
            kind,
            &json,
            now + CEREMONY_SECS,
            now,
        )
        .await?;
    Ok(id)
}

async fn take<T: serde::de::DeserializeOwned>(
    state: &AppState,
    id: &str,
    kind: &str,
) -> Result<Option<(Option<String>, T)>> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let Some((user, json)) = state
        .store
        .take_ceremony(&sha256_hex(id), kind, state.now())
        .await?
    else {
        return Ok(None);
    };
    let ceremony = serde_json::from_str(&json).map_err(Error::internal)?;
    Ok(Some((user, ceremony)))
}

fn bad(what: &str) -> Error {
    Error::Invalid(what.to_owned())
}

/// The user's passkeys as `webauthn-rs` credentials.
fn decoded(stored: &[StoredPasskey]) -> Result<Vec<Passkey>> {
    stored
        .iter()
        .map(|p| serde_json::from_str::<Passkey>(&p.passkey).map_err(Error::internal))
        .collect()
}

/// Start registering a passkey for `user`: the options for `navigator.credentials.create`
/// (a discoverable credential is asked for) and the ceremony id.
pub async fn start_registration(
    state: &AppState,
    user: &User,
) -> Result<(serde_json::Value, String)> {
    let existing = state.store.user_passkeys(&user.id).await?;
    if existing.len() >= MAX_PER_USER {
        return Err(bad(
            "this account has as many passkeys as it may hold: remove one first",
        ));
    }
    let exclude = decoded(&existing)?
        .iter()
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (options, ceremony) = webauthn(state)?
        .start_passkey_registration(
            user_handle(&user.id),
            &user.username,
            &user.username,
            Some(exclude),
        )
        .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
    let mut options = serde_json::to_value(&options).map_err(Error::internal)?;
    // A discoverable credential (WebAuthn §5.4.6 residentKey): username-less sign-in.
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(|v| v.as_object_mut())
    {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    let id = keep(state, Some(&user.id), REGISTER, &ceremony).await?;
    Ok((options, id))
}

/// Finish the registration with the browser's answer, from the browser session `sid`: the
/// passkey is stored (only while that session is live), audited.
pub async fn finish_registration(
    state: &AppState,
    user: &User,
    sid: &str,
    ceremony_id: &str,
    credential_json: &str,
    name: &str,
) -> Result<StoredPasskey> {
    let Some((owner, ceremony)) = take::<PasskeyRegistration>(state, ceremony_id, REGISTER).await?
    else {
        return Err(bad("the passkey request expired: start again"));
    };
    if owner.as_deref() != Some(user.id.as_str()) {
        return Err(bad("the passkey request expired: start again"));
    }
    let credential: RegisterPublicKeyCredential = serde_json::from_str(credential_json)
        .map_err(|_| bad("the browser's answer is not valid"))?;
    let passkey = webauthn(state)?
        .finish_passkey_registration(&credential, &ceremony)
        .map_err(|e| bad(&format!("the passkey was not accepted ({e})")))?;
    let name = name.trim();
    let name = if name.is_empty() { "Passkey" } else { name };
    let now = state.now();
    let stored = StoredPasskey {
        credential_id: credential_id_text(passkey.cred_id().as_ref()),
        user_id: user.id.clone(),
        user_handle: user_handle(&user.id).to_string(),
        name: name.chars().take(64).collect(),
        passkey: serde_json::to_string(&passkey).map_err(Error::internal)?,
        created_at: now,
        last_used_at: None,
    };
    if !state.store.add_passkey(&stored, sid).await? {
        return Err(bad("your session has ended: sign in again"));
    }
    let ev = AuditEvent::new(now, kinds::PASSKEY_ADDED, Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .details(serde_json::json!({ "name": stored.name }));
    state.audit(ev).await;
    Ok(stored)
}

/// Start a sign-in: for `user` (after the username or the password: only their passkeys), or
/// username-less (any discoverable passkey of this site).
pub async fn start_authentication(
    state: &AppState,
    user: Option<&User>,
) -> Result<(serde_json::Value, String)> {
    let rp = webauthn(state)?;
    let (options, id) = match user {
        Some(u) => {
            let keys = decoded(&state.store.user_passkeys(&u.id).await?)?;
            if keys.is_empty() {
                return Err(bad("this account has no passkey"));
            }
            let (options, ceremony) = rp
                .start_passkey_authentication(&keys)
                .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
            (
                options,
                keep(state, Some(&u.id), AUTH_USER, &ceremony).await?,
            )
        }
        None => {
            let (options, ceremony) = rp
                .start_discoverable_authentication()
                .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
            (
                options,
                keep(state, None, AUTH_DISCOVERABLE, &ceremony).await?,
            )
        }
    };
    Ok((serde_json::to_value(&options).map_err(Error::internal)?, id))
}

/// Finish a sign-in: the user whose passkey answered (enabled), or `None` for anything that
/// does not verify (audited). `expected` (a second factor) must be that user.
pub async fn finish_authentication(
    state: &AppState,
    ceremony_id: &str,
    credential_json: &str,
    expected: Option<&User>,
) -> Result<Option<User>> {
    let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(credential_json) else {
        return Ok(None);
    };
    let rp = webauthn(state)?;
    let (stored, result) = if let Some(user) = expected {
        let Some((owner, ceremony)) =
            take::<PasskeyAuthentication>(state, ceremony_id, AUTH_USER).await?
        else {
            return Ok(None);
        };
        if owner.as_deref() != Some(user.id.as_str()) {
            return Ok(None);
        }
        let stored = state.store.user_passkeys(&user.id).await?;
        (
            stored,
            rp.finish_passkey_authentication(&credential, &ceremony),
        )
    } else {
        let Some((_, ceremony)) =
            take::<DiscoverableAuthentication>(state, ceremony_id, AUTH_DISCOVERABLE).await?
        else {
            return Ok(None);
        };
        let Ok((handle, _)) = rp.identify_discoverable_authentication(&credential) else {
            return Ok(None);
        };
        let stored = state.store.passkeys_of_handle(&handle.to_string()).await?;
        let keys: Vec<DiscoverableKey> = decoded(&stored)?
            .iter()
            .map(DiscoverableKey::from)
            .collect();
        (
            stored,
            rp.finish_discoverable_authentication(&credential, ceremony, &keys),
        )
    };
    let Ok(result) = result else {
        audit_failure(state, expected).await;
        return Ok(None);
    };
    let used = credential_id_text(result.cred_id().as_ref());
    let Some(row) = stored.iter().find(|p| p.credential_id == used) else {
        audit_failure(state, expected).await;
        return Ok(None);
    };
    // The signature counter and flags move on (a clone would fall behind).
    let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(Error::internal)?;
    passkey.update_credential(&result);
    let json = serde_json::to_string(&passkey).map_err(Error::internal)?;
    // The user first, then the passkey still there: a removal (or a two-factor reset)
    // committed after this read bumps the user's `factors_epoch`, so the session this
    // sign-in would start is refused; one committed before it is seen here.
    let user = match state.store.get_user(&row.user_id).await? {
        Some(u) if u.is_enabled() => u,
        _ => return Ok(None),
    };
    if !state
        .store
        .touch_passkey(&row.credential_id, &json, state.now())
        .await?
    {
        audit_failure(state, expected).await;
        return Ok(None);
    }
    Ok(Some(user))
}

async fn audit_failure(state: &AppState, user: Option<&User>) {
    let mut ev = AuditEvent::new(state.now(), kinds::PASSKEY_FAILED, Outcome::Failure);
    if let Some(u) = user {
        ev = ev.actor(&u.username).subject(&u.id);
    }
    state.audit(ev).await;
}

/// Remove one of `user`'s passkeys: by the user (`actor` is their username) or by an
/// administrator (`actor` is theirs). Every session and refresh token of the user ends with
/// it, in the same transaction — a session signed in with that passkey must not outlive it
/// (a passkey sign-in counts as a fresh re-authentication) — except those of `keep`: the
/// user's own session making the change (fresh by the re-authentication rule). Audited with
/// that actor and how many sessions ended; signalled (SSF credential change).
pub async fn remove(
    state: &AppState,
    actor: &str,
    user: &User,
    credential_id: &str,
    keep: Option<&str>,
) -> Result<crate::store::GrantsEnded> {
    let now = state.now();
    let Some(ended) = state
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
    state.audit(ev).await;
    let changed = crate::events::ssf::Signal::CredentialChange {
        user: &user.id,
        credential: "fido2-platform",
        client_id: None,
    };
    state.events.signal(changed).await;
    Ok(ended)
}

#[cfg(test)]
mod tests {
    use super::user_handle;

    #[test]
    fn user_handles_are_stable_version_8_uuids() {
        let a = user_handle("usr_a");
        assert_eq!(a, user_handle("usr_a"));
        assert_ne!(a, user_handle("usr_b"));
        assert_eq!(a.get_version_num(), 8);
    }
}
