//! `/account/two-factor`: set up TOTP (RFC 6238) — the secret as an `otpauth://` URI, a QR
//! code drawn on the server as SVG, and the secret in base32 to type — confirmed by one code;
//! the ten recovery codes shown once; new recovery codes and turning it off (each: the password
//! and a code). Starting (and confirming) an enrolment and new recovery codes need a fresh
//! re-authentication (`Console::require_recent`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;

use super::super::console::{Console, Nav, done_message};
use super::super::web::{PageError, see_other};
use super::profile::Done;
use super::{confirm_identity, user_error};
use crate::context::Ctx;
use authz_core::identity::two_factor;
use authz_core::state::AppState;

/// This page (where a re-authentication comes back to).
const PAGE: &str = "/account/two-factor";

/// An enrolment waiting for its first code.
struct Setup {
    secret: String,
    uri: String,
    qr_svg: String,
}

#[derive(Template)]
#[template(path = "console/account_two_factor.html")]
struct TwoFactorPage {
    nav: Nav,
    enabled: bool,
    codes_left: i64,
    setup: Option<Setup>,
    /// Recovery codes to show once.
    codes: Vec<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

const DONE: &[(&str, &str)] = &[("off", "Two-factor sign-in is off.")];

#[derive(Default)]
struct Extra {
    setup: Option<Setup>,
    codes: Vec<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn page(state: &AppState, console: &Console, extra: Extra) -> Result<Response, PageError> {
    let user = &console.user;
    let page = TwoFactorPage {
        nav: console.nav("two-factor"),
        enabled: two_factor::is_enabled(&*state.store, user).await?,
        codes_left: two_factor::recovery_codes_left(&*state.store, user).await?,
        setup: extra.setup,
        codes: extra.codes,
        notice: extra.notice,
        error: extra.error,
    };
    Ok(console.page(&page))
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let extra = Extra {
        notice: done_message(q.done.as_deref(), DONE),
        ..Extra::default()
    };
    page(&state, &console, extra).await
}

async fn setup(state: &AppState, console: &Console) -> Result<Setup, PageError> {
    let e = two_factor::begin(
        &*state.store,
        &state.master,
        &state.events,
        &state.config.issuer,
        &console.user,
    )
    .await?;
    let qr_svg = crate::console::qr::qr_svg(&e.uri)
        .map_err(|m| crate::error::Error::internal(format!("QR code: {m}")))?;
    Ok(Setup {
        secret: e.secret_base32,
        uri: e.uri,
        qr_svg,
    })
}

/// Start (or restart) the enrolment: a new secret, inactive until confirmed.
pub async fn begin(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    console.form(&state, &body)?;
    console.require_recent(&state, PAGE).await?;
    if two_factor::is_enabled(&*state.store, &console.user).await? {
        let extra = Extra {
            error: Some(
                "Two-factor sign-in is already on. Turn it off first to move it to \
                         another device."
                    .into(),
            ),
            ..Extra::default()
        };
        return page(&state, &console, extra).await;
    }
    let extra = Extra {
        setup: Some(setup(&state, &console).await?),
        ..Extra::default()
    };
    page(&state, &console, extra).await
}

pub async fn confirm(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    // The pending secret is shown again after a wrong code: the same rule as starting.
    console.require_recent(&state, PAGE).await?;
    let code = form.get("code").unwrap_or_default().trim();
    match two_factor::confirm(
        &*state.store,
        &state.master,
        &state.events,
        &console.user,
        code,
    )
    .await
    {
        Ok(codes) => {
            let extra = Extra {
                codes,
                ..Extra::default()
            };
            page(&state, &console, extra).await
        }
        Err(e) => {
            // Keep the same secret (the app already holds it): show it again.
            let msg = user_error(e)?;
            let extra = Extra {
                setup: pending_setup(&state, &console).await?,
                error: Some(format!("{}.", capitalised(&msg))),
                ..Extra::default()
            };
            page(&state, &console, extra).await
        }
    }
}

/// The pending enrolment's secret, to show again after a wrong code.
async fn pending_setup(state: &AppState, console: &Console) -> Result<Option<Setup>, PageError> {
    let Some(e) = two_factor::pending(
        &*state.store,
        &state.master,
        &state.config.issuer,
        &console.user,
    )
    .await?
    else {
        return Ok(None);
    };
    let qr_svg = crate::console::qr::qr_svg(&e.uri)
        .map_err(|m| crate::error::Error::internal(format!("QR code: {m}")))?;
    Ok(Some(Setup {
        secret: e.secret_base32,
        uri: e.uri,
        qr_svg,
    }))
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// New recovery codes (the old ones stop working): a lasting second factor, so the same as
/// turning it off — a fresh re-authentication (`Console::require_recent`), the password and a
/// current code (or a recovery code).
pub(crate) async fn new_codes(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    console.require_recent(&state, PAGE).await?;
    if !two_factor::is_enabled(&*state.store, &console.user).await? {
        return Ok(see_other("/account/two-factor"));
    }
    if form.get("code").unwrap_or_default().trim().is_empty() {
        let extra = Extra {
            error: Some("Enter a code from your authenticator app (or a recovery code).".into()),
            ..Extra::default()
        };
        return page(&state, &console, extra).await;
    }
    if let Err(msg) = confirm_identity(&state, &console, &form, &ctx, true).await? {
        let extra = Extra {
            error: Some(msg),
            ..Extra::default()
        };
        return page(&state, &console, extra).await;
    }
    let codes = two_factor::new_recovery_codes(&*state.store, &console.user).await?;
    let extra = Extra {
        codes,
        ..Extra::default()
    };
    page(&state, &console, extra).await
}

/// Turn it off: the password and a current code (or a recovery code).
pub async fn disable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    if form.get("code").unwrap_or_default().trim().is_empty() {
        let extra = Extra {
            error: Some("Enter a code from your authenticator app (or a recovery code).".into()),
            ..Extra::default()
        };
        return page(&state, &console, extra).await;
    }
    if let Err(msg) = confirm_identity(&state, &console, &form, &ctx, true).await? {
        let extra = Extra {
            error: Some(msg),
            ..Extra::default()
        };
        return page(&state, &console, extra).await;
    }
    two_factor::disable(&*state.store, &state.events, &console.user).await?;
    Ok(see_other("/account/two-factor?done=off"))
}
