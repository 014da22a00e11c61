//! The WebAuthn ceremonies of `identity::passkeys` (registering a passkey, signing in with
//! one), through `webauthn-rs`: only with the cargo feature `passkeys` (see the parent module).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use crate::crypto::{random_secret, sha256_hex};
use crate::error::{Error, Result};
use crate::events::kinds;
use crate::identity::IdentityServices;
use crate::store::{AuditEvent, Outcome, StoredPasskey, User};

use super::MAX_PER_USER;

const CEREMONY_SECS: i64 = 300;
const REGISTER: &str = "register";
const AUTH_USER: &str = "auth-user";
const AUTH_DISCOVERABLE: &str = "auth-discoverable";

/// The relying party for this issuer.
fn webauthn(svc: IdentityServices<'_>) -> Result<Webauthn> {
    let origin = Url::parse(&svc.config.issuer).map_err(Error::internal)?;
    let rp_id = origin
        .host_str()
        .ok_or_else(|| Error::internal("the issuer has no host"))?
        .to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("Authz").build())
        .map_err(|e| Error::internal(format!("webauthn: {e}")))
}

/// The WebAuthn user handle of `user_id` (`super::user_handle` is its text).
fn handle(user_id: &str) -> Uuid {
    Uuid::from_bytes(super::handle_bytes(user_id))
}

fn credential_id_text(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn keep(
    svc: IdentityServices<'_>,
    user_id: Option<&str>,
    kind: &str,
    ceremony: &impl serde::Serialize,
) -> Result<String> {
    let id = random_secret();
    let json = serde_json::to_string(ceremony).map_err(Error::internal)?;
    let now = svc.now();
    svc.store
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
    svc: IdentityServices<'_>,
    id: &str,
    kind: &str,
) -> Result<Option<(Option<String>, T)>> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let Some((user, json)) = svc
        .store
        .take_ceremony(&sha256_hex(id), kind, svc.now())
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
    svc: IdentityServices<'_>,
    user: &User,
) -> Result<(serde_json::Value, String)> {
    let existing = svc.store.user_passkeys(&user.id).await?;
    if existing.len() >= MAX_PER_USER {
        return Err(bad(
            "this account has as many passkeys as it may hold: remove one first",
        ));
    }
    let exclude = decoded(&existing)?
        .iter()
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (options, ceremony) = webauthn(svc)?
        .start_passkey_registration(
            handle(&user.id),
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
    let id = keep(svc, Some(&user.id), REGISTER, &ceremony).await?;
    Ok((options, id))
}

/// Finish the registration with the browser's answer, from the browser session `sid`: the
/// passkey is stored (only while that session is live), audited.
pub async fn finish_registration(
    svc: IdentityServices<'_>,
    user: &User,
    sid: &str,
    ceremony_id: &str,
    credential_json: &str,
    name: &str,
) -> Result<StoredPasskey> {
    let Some((owner, ceremony)) = take::<PasskeyRegistration>(svc, ceremony_id, REGISTER).await?
    else {
        return Err(bad("the passkey request expired: start again"));
    };
    if owner.as_deref() != Some(user.id.as_str()) {
        return Err(bad("the passkey request expired: start again"));
    }
    let credential: RegisterPublicKeyCredential = serde_json::from_str(credential_json)
        .map_err(|_| bad("the browser's answer is not valid"))?;
    let passkey = webauthn(svc)?
        .finish_passkey_registration(&credential, &ceremony)
        .map_err(|e| bad(&format!("the passkey was not accepted ({e})")))?;
    let name = name.trim();
    let name = if name.is_empty() { "Passkey" } else { name };
    let now = svc.now();
    let stored = StoredPasskey {
        credential_id: credential_id_text(passkey.cred_id().as_ref()),
        user_id: user.id.clone(),
        user_handle: super::user_handle(&user.id),
        name: name.chars().take(64).collect(),
        passkey: serde_json::to_string(&passkey).map_err(Error::internal)?,
        created_at: now,
        last_used_at: None,
    };
    if !svc.store.add_passkey(&stored, sid).await? {
        return Err(bad("your session has ended: sign in again"));
    }
    let ev = AuditEvent::new(now, kinds::PASSKEY_ADDED, Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .details(serde_json::json!({ "name": stored.name }));
    svc.audit(ev).await;
    Ok(stored)
}

/// Start a sign-in: for `user` (after the username or the password: only their passkeys), or
/// username-less (any discoverable passkey of this site).
pub async fn start_authentication(
    svc: IdentityServices<'_>,
    user: Option<&User>,
) -> Result<(serde_json::Value, String)> {
    let rp = webauthn(svc)?;
    let (options, id) = match user {
        Some(u) => {
            let keys = decoded(&svc.store.user_passkeys(&u.id).await?)?;
            if keys.is_empty() {
                return Err(bad("this account has no passkey"));
            }
            let (options, ceremony) = rp
                .start_passkey_authentication(&keys)
                .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
            (options, keep(svc, Some(&u.id), AUTH_USER, &ceremony).await?)
        }
        None => {
            let (options, ceremony) = rp
                .start_discoverable_authentication()
                .map_err(|e| Error::internal(format!("webauthn: {e}")))?;
            (
                options,
                keep(svc, None, AUTH_DISCOVERABLE, &ceremony).await?,
            )
        }
    };
    Ok((serde_json::to_value(&options).map_err(Error::internal)?, id))
}

/// Finish a sign-in: the user whose passkey answered (enabled), or `None` for anything that
/// does not verify (audited). `expected` (a second factor) must be that user.
pub async fn finish_authentication(
    svc: IdentityServices<'_>,
    ceremony_id: &str,
    credential_json: &str,
    expected: Option<&User>,
) -> Result<Option<User>> {
    let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(credential_json) else {
        return Ok(None);
    };
    let rp = webauthn(svc)?;
    let (stored, result) = if let Some(user) = expected {
        let Some((owner, ceremony)) =
            take::<PasskeyAuthentication>(svc, ceremony_id, AUTH_USER).await?
        else {
            return Ok(None);
        };
        if owner.as_deref() != Some(user.id.as_str()) {
            return Ok(None);
        }
        let stored = svc.store.user_passkeys(&user.id).await?;
        (
            stored,
            rp.finish_passkey_authentication(&credential, &ceremony),
        )
    } else {
        let Some((_, ceremony)) =
            take::<DiscoverableAuthentication>(svc, ceremony_id, AUTH_DISCOVERABLE).await?
        else {
            return Ok(None);
        };
        let Ok((owner, _)) = rp.identify_discoverable_authentication(&credential) else {
            return Ok(None);
        };
        let stored = svc.store.passkeys_of_handle(&owner.to_string()).await?;
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
        audit_failure(svc, expected).await;
        return Ok(None);
    };
    let used = credential_id_text(result.cred_id().as_ref());
    let Some(row) = stored.iter().find(|p| p.credential_id == used) else {
        audit_failure(svc, expected).await;
        return Ok(None);
    };
    // The signature counter and flags move on (a clone would fall behind).
    let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(Error::internal)?;
    passkey.update_credential(&result);
    let json = serde_json::to_string(&passkey).map_err(Error::internal)?;
    // The user first, then the passkey still there: a removal (or a two-factor reset)
    // committed after this read bumps the user's `factors_epoch`, so the session this
    // sign-in would start is refused; one committed before it is seen here.
    let user = match svc.store.get_user(&row.user_id).await? {
        Some(u) if u.is_enabled() => u,
        _ => return Ok(None),
    };
    if !svc
        .store
        .touch_passkey(&row.credential_id, &json, svc.now())
        .await?
    {
        audit_failure(svc, expected).await;
        return Ok(None);
    }
    Ok(Some(user))
}

async fn audit_failure(svc: IdentityServices<'_>, user: Option<&User>) {
    let mut ev = AuditEvent::new(svc.now(), kinds::PASSKEY_FAILED, Outcome::Failure);
    if let Some(u) = user {
        ev = ev.actor(&u.username).subject(&u.id);
    }
    svc.audit(ev).await;
}

#[cfg(test)]
mod tests {
    use super::handle;

    #[test]
    fn user_handles_are_stable_version_8_uuids() {
        let a = handle("usr_a");
        assert_eq!(a, handle("usr_a"));
        assert_ne!(a, handle("usr_b"));
        assert_eq!(a.get_version_num(), 8);
        assert_eq!(a.to_string(), super::super::user_handle("usr_a"));
    }
}
