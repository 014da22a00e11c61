//! A browser sign-in between its steps (issue 24 item 2): the password, the second factor, a
//! new password after an administrator's reset (`signin`), a passkey (`passkeys`).
//!
//! - Kept server-side (`PendingSignInStore`): the browser's `authz_pending` cookie holds only a
//!   random handle; the row is keyed by its SHA-256, like sessions. It says whose sign-in it
//!   is, the methods done so far (RFC 8176 `amr`) and a deadline (`PENDING_SECS` after the
//!   first step; later steps never extend it).
//! - Single use: each step spends its row (`take`, one `DELETE … RETURNING`, so of two uses
//!   of a copied cookie one wins) and a new handle is issued for the next step, also when a
//!   step is only repeated (a mistyped code).
//! - Bound to the credentials it was issued under: the row keeps a stamp of the user's
//!   credential state — the password hash, the forced-change flag, when the credentials last
//!   changed, whether the account is disabled, the two-factor enrolment — read before the
//!   first secret was checked. A step whose user's stamp differs now is refused (audited), so
//!   a sign-in begun with a password does not outlive a reset, a password change, disabling,
//!   or a two-factor reset or enrolment. Those remedies also delete the user's rows in their
//!   own transaction (`store::sql::users`, `two_factor`); the stamp covers a step already
//!   under way when they commit.

use authz_core::events::kinds;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use authz_core::crypto::{ct_eq, random_secret, sha256_hex};
use authz_core::error::Result;
use authz_core::events::audit::RequestContext;
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, Outcome, PendingSignIn, User};

/// How long the steps after the first may take, together.
pub(super) const PENDING_SECS: i64 = 300;
const COOKIE: &str = "authz_pending";
/// A handle is a `random_secret` (43 characters); anything much longer is not one.
const MAX_HANDLE: usize = 128;

/// A sign-in between its steps.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) uid: String,
    /// RFC 8176 methods done so far.
    pub(super) amr: Vec<String>,
    /// The deadline for every remaining step.
    pub(super) exp: i64,
    /// The user's credential state when the sign-in began.
    stamp: String,
}

impl Pending {
    /// A sign-in of `user` that has just done `amr`, under the credentials of `user` as read
    /// before its secret was checked.
    pub(super) async fn begin(
        state: &AppState,
        user: &User,
        amr: Vec<String>,
        now: i64,
    ) -> Result<Self> {
        Ok(Self {
            uid: user.id.clone(),
            amr,
            exp: now + PENDING_SECS,
            stamp: stamp(state, user).await?,
        })
    }

    /// Has this sign-in proved the account's (current) password?
    pub(super) fn has_password(&self) -> bool {
        self.amr.iter().any(|m| m == "pwd")
    }
}

/// The user's credential state as one value: any remedy changes it.
async fn stamp(state: &AppState, user: &User) -> Result<String> {
    let totp = match state.store.get_totp(&user.id).await? {
        Some(t) => format!(
            "{:?}:{}",
            t.confirmed_at,
            URL_SAFE_NO_PAD.encode(&t.secret_enc)
        ),
        None => "-".to_owned(),
    };
    Ok(sha256_hex(&format!(
        "{}\n{}\n{}\n{:?}\n{:?}\n{}",
        user.id,
        user.password_hash,
        user.password_change_required,
        user.credentials_changed_at,
        user.disabled_at,
        totp
    )))
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    super::web::cookie_header(&state.config, COOKIE, value, Some(max_age))
}

/// The cookie that ends this browser's pending sign-in.
pub(super) fn clear(state: &AppState) -> HeaderValue {
    cookie(state, "", 0)
}

/// Keep `p` for the next step under a new handle: the cookie that carries it.
pub(super) async fn keep(state: &AppState, p: &Pending, now: i64) -> Result<HeaderValue> {
    let handle = random_secret();
    let row = PendingSignIn {
        user_id: p.uid.clone(),
        amr: p.amr.clone(),
        stamp: p.stamp.clone(),
        created_at: now,
        expires_at: p.exp,
    };
    state
        .store
        .put_pending_signin(&sha256_hex(&handle), &row, now)
        .await?;
    Ok(cookie(state, &handle, (p.exp - now).max(1)))
}

fn handle_hash(state: &AppState, headers: &HeaderMap) -> Option<String> {
    super::web::cookie_value(state, headers, COOKIE)
        .filter(|v| !v.is_empty() && v.len() <= MAX_HANDLE)
        .map(sha256_hex)
}

/// The pending sign-in this browser holds, read without spending it (the passkey options of
/// the next step), while it is valid.
#[cfg(feature = "passkeys")]
pub(super) async fn peek(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<(Pending, User)>> {
    let Some(hash) = handle_hash(state, headers) else {
        return Ok(None);
    };
    match state.store.get_pending_signin(&hash, now).await? {
        Some(row) => Ok(valid(state, row).await?.ok()),
        None => Ok(None),
    }
}

/// Spend the pending sign-in this browser holds, for the step that continues it: `None` when
/// there is none, it was spent or expired, its user is disabled, or the user's credentials
/// changed since it began (audited).
pub(super) async fn take(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &RequestContext,
) -> Result<Option<(Pending, User)>> {
    let Some(hash) = handle_hash(state, headers) else {
        return Ok(None);
    };
    let Some(row) = state.store.take_pending_signin(&hash, ctx.now).await? else {
        return Ok(None);
    };
    match valid(state, row).await? {
        Ok(p) => Ok(Some(p)),
        Err(Some(user)) => {
            let ev = AuditEvent::new(ctx.now, kinds::LOGIN_FAILED, Outcome::Failure)
                .actor(&user.username)
                .subject(&user.id)
                .details(serde_json::json!({ "via": "pending", "reason": "credentials_changed" }))
                .ctx(ctx);
            state.audit(ev).await;
            Ok(None)
        }
        Err(None) => Ok(None),
    }
}

/// A stored sign-in whose user is enabled and whose credentials are as they were; otherwise
/// the user whose credentials changed, if any.
async fn valid(
    state: &AppState,
    row: PendingSignIn,
) -> Result<std::result::Result<(Pending, User), Option<User>>> {
    let Some(user) = state.store.get_user(&row.user_id).await? else {
        return Ok(Err(None));
    };
    if !user.is_enabled() {
        return Ok(Err(None));
    }
    if !ct_eq(stamp(state, &user).await?.as_bytes(), row.stamp.as_bytes()) {
        return Ok(Err(Some(user)));
    }
    let p = Pending {
        uid: row.user_id,
        amr: row.amr,
        exp: row.expires_at,
        stamp: row.stamp,
    };
    Ok(Ok((p, user)))
}
