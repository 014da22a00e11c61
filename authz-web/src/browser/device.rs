//! `GET/POST /device` and `POST /device/decide`: the user's side of the device authorization
//! grant (RFC 8628 §3.3). The signed-in user (the console's sign-in: password, then the
//! second factor when on) types the user code, sees which application asks for what, and
//! approves or denies.
//!
//! - Not signed in: `GET /device` sends the browser to sign in and back (`next=/device…`).
//! - `verification_uri_complete` (§3.3.1) only fills the form in: the user still submits it
//!   and then confirms on the next page (§5.4: a code in a link is not the user's decision).
//! - Brute force (§5.1): every code looked up counts against the session (per minute,
//!   `AUTHZ_DEVICE_USER_CODE_ATTEMPTS`), through `/device` or `/device/decide` alike (one
//!   limiter, in `resolve`), and every form against the client IP (the sign-in forms'
//!   budget); wrong codes are audited (`device.user_code_failed`). The confirmation page
//!   carries a mark (HMAC of the session and the code) that this session's entry of the code
//!   was counted already, so the decision on it does not count it twice.
//! - A code is short-lived and decided once (`DeviceStore::decide_device`, conditional on
//!   `pending`); wrong, expired and already used codes each get a page that says so.
//! - The decision records the deciding session: the device gets its tokens only while that
//!   session is live (`protocol::grant::device_code`).

use authz_core::events::kinds;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use shared::ScopeSet;
use shared::limits::Limiter;

use super::console::Console;
use super::pages::{MessagePage, ScopeView};
use super::web::{PageError, render, too_many_page};
use crate::context::Ctx;
use crate::limits::{Limit, limited};
use authz_core::crypto::ct_eq;
use authz_core::events::audit::RequestContext;
use authz_core::protocol::device::{self, Lookup};
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, Client, DeviceAuthorization, Outcome};

type PageResult = Result<Response, PageError>;

/// The code entry form.
#[derive(Debug, askama::Template)]
#[template(path = "device.html")]
pub(crate) struct DevicePage {
    pub username: String,
    pub user_code: String,
    pub error: Option<String>,
    pub csrf: String,
}

/// What the device asks for, to approve or deny.
#[derive(Debug, askama::Template)]
#[template(path = "device_confirm.html")]
pub(crate) struct DeviceConfirmPage {
    pub client_name: String,
    pub client_host: Option<String>,
    pub unverified: bool,
    pub username: String,
    pub shown_code: String,
    /// The normalised code, carried to the decision.
    pub user_code: String,
    /// The mark that this session's entry of `user_code` was counted (`entered_mark`).
    pub entered: String,
    pub scopes: Vec<ScopeView>,
    pub resource: String,
    pub csrf: String,
}

/// The per-session limiter of code entries.
#[derive(Clone)]
struct Attempts(Option<Arc<Limiter>>);

pub fn router(state: &AppState) -> Router<AppState> {
    if !state.config.device.enabled {
        return Router::new();
    }
    let forms = Limit::new(
        state,
        "device",
        state.config.rate_limits.login,
        too_many_page,
    );
    let attempts = Attempts(
        state
            .counters
            .limiter(
                "device-user-code",
                state.config.device.user_code_attempts_per_minute,
            )
            .map(Arc::new),
    );
    Router::new()
        .route(
            "/device",
            get(entry_page).merge(limited(post(enter_code), &forms)),
        )
        .route("/device/decide", limited(post(decide), &forms))
        .layer(Extension(attempts))
}

#[derive(Deserialize)]
struct EntryQuery {
    user_code: Option<String>,
}

fn entry(console: &Console, status: StatusCode, code: &str, error: Option<String>) -> Response {
    let page = DevicePage {
        username: console.user.username.clone(),
        user_code: code.chars().take(16).collect(),
        error,
        csrf: console.nav("device").csrf,
    };
    console.page_with(status, &page)
}

fn message(status: StatusCode, title: &str, text: &str, retry: bool) -> Response {
    render(
        status,
        &MessagePage {
            title: title.to_owned(),
            message: text.to_owned(),
            link: retry.then(|| ("/device".to_owned(), "Enter another code".to_owned())),
        },
    )
}

/// The user must have signed in with a second factor when a role of theirs requires it.
fn needs_step_up(state: &AppState, console: &Console) -> Option<Response> {
    (state.config.mfa.required_for(&console.user.roles) && !console.session.is_multi_factor()).then(
        || {
            render(
                StatusCode::FORBIDDEN,
                &MessagePage {
                    title: "Sign in with your second factor".into(),
                    message: "Connecting a device needs a sign-in with your authenticator app \
                              as well as your password. Sign in again to continue."
                        .into(),
                    link: Some((
                        "/account/login?reauth=1&next=%2Fdevice".into(),
                        "Sign in again".into(),
                    )),
                },
            )
        },
    )
}

/// `GET /device[?user_code=…]`.
async fn entry_page(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<EntryQuery>,
) -> Response {
    if let Some(r) = needs_step_up(&state, &console) {
        return r;
    }
    entry(
        &console,
        StatusCode::OK,
        q.user_code.as_deref().unwrap_or_default(),
        None,
    )
}

/// A pending authorization the typed code names: the normalised code, the record, its client.
type Found = (String, Box<DeviceAuthorization>, Box<Client>);

/// The mark the confirmation page carries to `/device/decide`: this session entered `code`
/// through `/device` (where it was counted). HMAC under the master key, so only `/device`
/// makes one.
fn entered_mark(state: &AppState, sid: &str, code: &str) -> String {
    let msg = format!("{sid}\n{code}");
    URL_SAFE_NO_PAD.encode(state.master.mac("device-entered", msg.as_bytes()))
}

/// Resolve the typed code to a pending authorization, or the page that says why not. Every
/// lookup counts against the session's budget (RFC 8628 §5.1) — the one limiter of both
/// forms — unless `mark` shows this session's entry of the same code was counted already.
async fn resolve(
    state: &AppState,
    console: &Console,
    attempts: &Attempts,
    typed: &str,
    mark: Option<&str>,
    ctx: &RequestContext,
) -> Result<Result<Found, Response>, PageError> {
    let counted = match (mark, device::normalise_user_code(typed)) {
        (Some(m), Some(code)) => ct_eq(
            m.as_bytes(),
            entered_mark(state, &console.session.sid, &code).as_bytes(),
        ),
        _ => false,
    };
    if !counted
        && let Some(l) = &attempts.0
        && let Err(retry) = l.check(&console.session.sid, ctx.now).await
    {
        state.metrics.rate_limited(l.name());
        return Ok(Err(too_many_page(retry)));
    }
    let wrong = |console: &Console| {
        entry(
            console,
            StatusCode::BAD_REQUEST,
            typed,
            Some(
                "That code is not valid. Check the code shown on your device and enter it \
                 again (letters only; dashes and case do not matter)."
                    .to_owned(),
            ),
        )
    };
    let Some(code) = device::normalise_user_code(typed) else {
        return Ok(Err(wrong(console)));
    };
    Ok(match device::lookup(state, &code, ctx.now).await? {
        Lookup::Pending(d, client) => Ok((code, d, client)),
        Lookup::Unknown => {
            let ev = AuditEvent::new(ctx.now, kinds::DEVICE_USER_CODE_FAILED, Outcome::Failure)
                .actor(&console.user.username)
                .subject(&console.user.id)
                .ctx(ctx);
            state.audit_async(ev).await;
            Err(wrong(console))
        }
        Lookup::Expired => Err(message(
            StatusCode::BAD_REQUEST,
            "Code expired",
            "This code has expired. Start again on your device to get a new code.",
            true,
        )),
        Lookup::Used => Err(message(
            StatusCode::BAD_REQUEST,
            "Code already used",
            "This code was already used to approve or deny a device. Each code works once: \
             start again on your device to get a new one.",
            true,
        )),
    })
}

/// `POST /device`: the typed code → the confirmation page.
async fn enter_code(
    State(state): State<AppState>,
    Extension(attempts): Extension<Attempts>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> PageResult {
    let form = console.form(&state, &body)?;
    if let Some(r) = needs_step_up(&state, &console) {
        return Ok(r);
    }
    let typed = form.get("user_code").unwrap_or_default();
    let (code, d, client) = match resolve(&state, &console, &attempts, typed, None, &ctx).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let scope = ScopeSet::parse(&d.scope).unwrap_or_default();
    let page = DeviceConfirmPage {
        client_name: client.name.clone(),
        client_host: authz_core::clients::cimd::document_host(&client),
        unverified: !authz_core::clients::cimd::is_verified(&state.config.cimd, &client),
        username: console.user.username.clone(),
        shown_code: device::display_user_code(&code),
        entered: entered_mark(&state, &console.session.sid, &code),
        user_code: code,
        scopes: ScopeView::list(&state.config, &scope),
        resource: d.resource.clone(),
        csrf: console.nav("device").csrf,
    };
    Ok(console.page(&page))
}

/// `POST /device/decide`: approve or deny, once.
async fn decide(
    State(state): State<AppState>,
    Extension(attempts): Extension<Attempts>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> PageResult {
    let form = console.form(&state, &body)?;
    if let Some(r) = needs_step_up(&state, &console) {
        return Ok(r);
    }
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(PageError::page(
                StatusCode::BAD_REQUEST,
                "Invalid form",
                "Choose Allow or Deny.",
            ));
        }
    };
    let typed = form.get("user_code").unwrap_or_default();
    let mark = form.get("entered");
    let (code, _, client) = match resolve(&state, &console, &attempts, typed, mark, &ctx).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let hash = device::user_code_hash(&state, &code);
    let user = &console.user;
    if !state
        .store
        .decide_device(
            &hash,
            approve,
            &user.id,
            &console.session.sid,
            &console.session.amr,
            ctx.now,
        )
        .await?
    {
        // Decided or expired between the two steps.
        return Ok(message(
            StatusCode::CONFLICT,
            "Code already used",
            "This code was used or expired meanwhile. Start again on your device.",
            true,
        ));
    }
    let (kind, outcome) = if approve {
        (kinds::DEVICE_APPROVED, Outcome::Success)
    } else {
        (kinds::DEVICE_DENIED, Outcome::Failure)
    };
    let ev = AuditEvent::new(ctx.now, kind, outcome)
        .actor(&user.username)
        .subject(&user.id)
        .client(&client.id)
        .ctx(&ctx);
    state.audit(ev).await;
    Ok(if approve {
        message(
            StatusCode::OK,
            "Device connected",
            &format!(
                "{} may now access your account. Return to your device: it continues on its \
                 own.",
                client.name
            ),
            false,
        )
    } else {
        message(
            StatusCode::OK,
            "Request denied",
            &format!(
                "{} was not given access. You can close this page.",
                client.name
            ),
            false,
        )
    })
}
