//! The device authorization grant (RFC 8628): starting a device authorization (§3.1, §3.2),
//! and the user codes the user types on `/device` (§3.3, §6.1). Polling at the token endpoint
//! is `grant::device_code`.
//!
//! - The device code is 256 random bits, stored as its SHA-256 (it is a bearer secret).
//! - The user code is 8 characters from a 20-letter alphabet without vowels or look-alikes
//!   (§6.1: ≈ 34.6 bits), shown as `XXXX-XXXX`, compared case-, space- and dash-insensitively.
//!   It is stored as HMAC-SHA256 under a master-derived key, so a leaked table does not allow
//!   an offline search of the small code space. Entry is rate-limited per session and per
//!   client IP (§5.1), and the code lives `device.code_ttl_secs` (600 s by default).

use crate::events::kinds;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use shared::ScopeSet;
use shared::scope::OFFLINE_ACCESS;

use crate::crypto::{random_bytes, sha256_hex};
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::protocol::form::Form;
use crate::protocol::resource::select_audience;
use crate::state::AppState;
use crate::store::{AuditEvent, Client, DeviceAuthorization, DeviceStatus, GrantType, Outcome};

/// RFC 8628 §6.1: no vowels (no words), none of 0/O, 1/I/L-like look-alikes.
pub(crate) const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub(crate) const USER_CODE_LEN: usize = 8;
/// RFC 8628 §3.5: each `slow_down` adds 5 seconds to the interval.
pub(crate) const SLOW_DOWN_SECS: i64 = 5;

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// A fresh user code, normalised (8 letters of the alphabet, no dash).
fn new_user_code() -> String {
    let mut out = String::with_capacity(USER_CODE_LEN);
    while out.len() < USER_CODE_LEN {
        for b in random_bytes::<16>() {
            // 240 = 12 × 20: rejecting the rest keeps every letter equally likely.
            if b < 240 && out.len() < USER_CODE_LEN {
                out.push(USER_CODE_ALPHABET[usize::from(b % 20)] as char);
            }
        }
    }
    out
}

/// `BCDFGHJK` → `BCDF-GHJK` (§6.1: easier to read and type).
pub fn display_user_code(normalised: &str) -> String {
    let (a, b) = normalised.split_at(normalised.len().min(4));
    format!("{a}-{b}")
}

/// What the user typed, normalised: upper case, without dashes and spaces (§6.1); `None` when
/// it cannot be a user code of ours.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// How a user code is stored and looked up: HMAC-SHA256 (hex) under a master-derived key.
pub fn user_code_hash(state: &AppState, normalised: &str) -> String {
    state
        .master
        .mac("device-user-code", normalised.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `POST /device_authorization` for an authenticated `client` (RFC 8628 §3.1, §3.2).
pub async fn start(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<DeviceAuthorizationResponse> {
    // RFC 6749 §5.2 via RFC 8628 §3.2: a client not allowed the grant.
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(Error::unauthorized_client(
            "this client may not use the device authorization grant",
        ));
    }
    // Scope (RFC 8628 §3.1, RFC 6749 §3.3): within what the client may ever be granted; the
    // user's roles narrow it when tokens are issued.
    let scope: ScopeSet = state
        .scopes
        .resolve(form.get("scope"), &client.scopes, &[])?;
    if scope.contains(OFFLINE_ACCESS) && !client.allows_grant(GrantType::RefreshToken) {
        return Err(Error::invalid_scope(
            "offline_access: this client may not use refresh tokens",
        ));
    }
    // Audience (RFC 8707 §2): one resource, fixed now, shown to the user.
    let resource = select_audience(
        &form.all("resource"),
        &[],
        client,
        &state.config.default_resource,
    )?;
    let cfg = &state.config.device;
    let now = ctx.now;
    let device_code = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let mut user_code = new_user_code();
    let mut attempts = 0;
    loop {
        let record = DeviceAuthorization {
            device_hash: sha256_hex(&device_code),
            user_code_hash: user_code_hash(state, &user_code),
            client_id: client.id.clone(),
            scope: scope.to_string(),
            resource: resource.clone(),
            created_at: now,
            expires_at: now + cfg.code_ttl_secs,
            interval_secs: cfg.interval_secs,
            last_poll_at: None,
            status: DeviceStatus::Pending,
            user_id: None,
            decided_at: None,
            amr: Vec::new(),
            approving_sid: None,
        };
        match state.store.create_device_authorization(&record).await {
            Ok(()) => break,
            // A user code already taken (kept a while after it expired): draw another.
            Err(Error::Conflict(_)) if attempts < 4 => {
                attempts += 1;
                user_code = new_user_code();
            }
            Err(e) => return Err(e),
        }
    }
    let ev = AuditEvent::new(now, kinds::DEVICE_AUTHORIZATION_STARTED, Outcome::Success)
        .client(&client.id)
        .details(serde_json::json!({ "scope": scope.to_string(), "aud": resource }))
        .ctx(ctx);
    state.audit_async(ev).await;
    let shown = display_user_code(&user_code);
    let verification_uri = format!("{}/device", state.config.issuer);
    Ok(DeviceAuthorizationResponse {
        device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        user_code: shown,
        verification_uri,
        expires_in: cfg.code_ttl_secs,
        interval: cfg.interval_secs,
    })
}

/// What a typed user code names.
#[derive(Debug)]
pub enum Lookup {
    /// Not a code of ours (mistyped, or never issued).
    Unknown,
    Expired,
    /// Approved or denied already (a code works once).
    Used,
    Pending(Box<DeviceAuthorization>, Box<Client>),
}

/// Look up a typed user code (normalised) at `now`.
pub async fn lookup(state: &AppState, normalised: &str, now: i64) -> Result<Lookup> {
    let Some(d) = state
        .store
        .device_by_user_code(&user_code_hash(state, normalised))
        .await?
    else {
        return Ok(Lookup::Unknown);
    };
    if d.status != DeviceStatus::Pending {
        return Ok(Lookup::Used);
    }
    if d.expires_at <= now {
        return Ok(Lookup::Expired);
    }
    let Some((client, _)) = state.clients.get(&*state.store, &d.client_id, now).await? else {
        return Ok(Lookup::Unknown);
    };
    Ok(Lookup::Pending(
        Box::new(d),
        Box::new(Client::clone(&client)),
    ))
}
