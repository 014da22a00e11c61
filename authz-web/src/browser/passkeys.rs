//! Passkeys in the browser (`identity::passkeys`): `/account/passkeys` (list, add, remove) and
//! signing in with one (`POST /login/passkey/options`, `POST /login/passkey`). The small
//! script `/static/passkeys.js` (served from here, so the CSP `default-src 'self'` holds) asks
//! the server for options, calls `navigator.credentials`, and submits the answer in an
//! ordinary form POST — the server answers with a page or a 303 as for every other form.
//! Options requests carry the form's CSRF token too. Adding a passkey (its options too) and
//! removing one need a fresh re-authentication (`Console::require_recent`): a session left
//! open must not plant a credential that outlives the password (issue 24).
//! Only in a build with the cargo feature `passkeys` (`browser::PASSKEYS`); removing stored
//! passkeys elsewhere (an administrator's removal, the remedies) does not depend on it.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::super::limits::{Limit, limited};
use super::console::{Console, Nav, done_message, reauth_url};
use super::signin::{self, Pending, Target};
use super::web::{PageError, checked_form, see_other};
use crate::console::time::{utc, utc_or_dash};
use crate::context::Ctx;
use authz_core::identity::passkeys;
use authz_core::state::AppState;

/// The passkeys page (where a re-authentication comes back to).
const PAGE: &str = "/account/passkeys";

/// The routes; the sign-in ones share the sign-in forms' per-IP budget (`forms`).
pub fn router(forms: &Option<Limit>) -> Router<AppState> {
    Router::new()
        .route("/account/passkeys", get(show).post(add))
        .route("/account/passkeys/options", post(register_options))
        .route("/account/passkeys/{id}/delete", post(remove))
        .route(
            "/login/passkey/options",
            limited(post(sign_in_options), forms),
        )
        .route("/login/passkey", limited(post(sign_in), forms))
}

/// The script the passkey pages load, outside the pages' headers (as the stylesheet).
pub fn script() -> Router<AppState> {
    Router::new().route("/static/passkeys.js", get(passkeys_js))
}

const PASSKEYS_JS: &str = include_str!("../../static/passkeys.js");

async fn passkeys_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        PASSKEYS_JS,
    )
}

struct Row {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/account_passkeys.html")]
struct PasskeysPage {
    nav: Nav,
    passkeys: Vec<Row>,
    notice: Option<&'static str>,
    error: Option<String>,
}

const DONE: &[(&str, &str)] = &[
    (
        "added",
        "Your passkey was added: you can sign in with it now.",
    ),
    ("removed", "The passkey was removed."),
];

async fn page(
    state: &AppState,
    console: &Console,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let passkeys = state
        .store
        .user_passkeys(&console.user.id)
        .await?
        .into_iter()
        .map(|p| Row {
            id: p.credential_id,
            name: p.name,
            created: utc(p.created_at),
            last_used: utc_or_dash(p.last_used_at),
        })
        .collect();
    let page = PasskeysPage {
        nav: console.nav("passkeys"),
        passkeys,
        notice,
        error,
    };
    Ok(console.page(&page))
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<super::account::Done>,
) -> Result<Response, PageError> {
    page(
        &state,
        &console,
        done_message(q.done.as_deref(), DONE),
        None,
    )
    .await
}

/// Options for `navigator.credentials.create` (JSON).
pub(crate) async fn register_options(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    console.form(&state, &body)?;
    if !console.is_recent(&state).await? {
        // The script cannot follow a redirect to a page: it is told where to go instead.
        let body = serde_json::json!({
            "error": "confirm it is you: sign in again first",
            "reauth": reauth_url(PAGE),
        });
        return Ok((StatusCode::FORBIDDEN, Json(body)).into_response());
    }
    match passkeys::start_registration(state.identity(), &console.user).await {
        Ok((options, ceremony)) => Ok(Json(
            serde_json::json!({ "ceremony": ceremony, "options": options }),
        )
        .into_response()),
        Err(e) => json_refusal(e),
    }
}

fn json_refusal(e: crate::error::Error) -> Result<Response, PageError> {
    let (status, text) = super::console::user_mistake(e)?;
    Ok((status, Json(serde_json::json!({ "error": text }))).into_response())
}

pub async fn add(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    console.require_recent(&state, PAGE).await?;
    let ceremony = form.get("ceremony").unwrap_or_default();
    let credential = form.get("credential").unwrap_or_default();
    let name = form.get("name").unwrap_or_default();
    let (user, sid) = (&console.user, &console.session.sid);
    match passkeys::finish_registration(state.identity(), user, sid, ceremony, credential, name)
        .await
    {
        Ok(_) => Ok(see_other("/account/passkeys?done=added")),
        Err(e) => {
            let (_, msg) = super::console::user_mistake(e)?;
            page(
                &state,
                &console,
                None,
                Some(format!("The passkey was not added: {msg}.")),
            )
            .await
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    console.form(&state, &body)?;
    console.require_recent(&state, PAGE).await?;
    let user = &console.user;
    // Every other session of the user ends with it; this one (fresh) stays.
    let keep = Some(console.session.sid.as_str());
    match passkeys::remove(state.identity(), &user.username, user, &id, keep).await {
        Ok(_) => Ok(see_other("/account/passkeys?done=removed")),
        Err(e) => {
            let (_, msg) = super::console::user_mistake(e)?;
            page(
                &state,
                &console,
                None,
                Some(format!("Nothing was removed: {msg}.")),
            )
            .await
        }
    }
}

const EXPIRED: &str = "This form has expired or was not sent from this site. Go back and \
     start signing in again.";

/// Options for `navigator.credentials.get` (JSON). Anonymous callers — username-less, or
/// after typing a name — all get the same username-less options (`discoverable`: no
/// `allowCredentials`), whatever the name: the answer says nothing about which names exist or
/// hold passkeys, and names no credential (WebAuthn §14.6.2 username enumeration and §14.6.3
/// privacy leak via credential IDs). Every passkey here is discoverable (registration asks for
/// a resident key), so signing in after the username works the same way: the passkey names
/// its user. Only a pending sign-in (the password proved) gets its own user's credentials
/// (`user`), as the second factor.
pub(crate) async fn sign_in_options(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    checked_form(&state, &headers, &body, EXPIRED)?;
    let pending = signin::open_pending(&state, &headers, ctx.now).await?;
    let user = match pending {
        Some((_, u)) if !state.store.user_passkeys(&u.id).await?.is_empty() => Some(u),
        _ => None,
    };
    match passkeys::start_authentication(state.identity(), user.as_ref()).await {
        Ok((options, ceremony)) => Ok(Json(serde_json::json!({
            "ceremony": ceremony,
            "mode": if user.is_some() { "user" } else { "discoverable" },
            "options": options,
        }))
        .into_response()),
        Err(e) => json_refusal(e),
    }
}

/// The browser's answer: signed in (or the second factor given), on to the next step. A
/// pending sign-in this browser holds is spent here (a failed answer starts over).
pub async fn sign_in(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, target) = signin::submitted(&state, &headers, &body).await?;
    let ceremony = form.get("ceremony").unwrap_or_default();
    let credential = form.get("credential").unwrap_or_default();
    let pending = signin::take_pending(&state, &headers, &ctx).await?;
    // `federation.only`: a passkey is a second factor after the provider, never the way in.
    if pending.is_none() && state.config.federation.only.is_some() {
        let msg = "Sign in with your organisation's sign-in first.".to_owned();
        return Ok(signin::restart(&state, &headers, &target, &msg));
    }
    let expected = match (&pending, form.get("mode"), form.get("username")) {
        (Some((_, u)), _, _) => Some(u.clone()),
        (None, Some("user"), Some(name)) => state.store.get_user_by_username(name.trim()).await?,
        _ => None,
    };
    let Some(user) =
        passkeys::finish_authentication(state.identity(), ceremony, credential, expected.as_ref())
            .await?
    else {
        let msg = "That passkey could not be verified. Try again, or sign in with your password."
            .to_owned();
        return Ok(signin::restart(&state, &headers, &target, &msg));
    };
    if let Target::Authorize(req) = &target
        && !req.is_hinted_user(&user.id)
    {
        let msg = "This application asked you to sign in with a different account.".to_owned();
        return Ok(signin::restart(&state, &headers, &target, &msg));
    }
    // A directory user signs in with a passkey only while the directory keeps them (an entry
    // disabled or removed there is refused here too), with the roles its groups give now.
    let user = if pending.is_none() {
        match authz_core::identity::directory::current(state.identity(), &user, &ctx).await? {
            Some(u) => u,
            None => {
                let msg = "Your directory account cannot sign in here any more: ask your \
                           administrator."
                    .to_owned();
                return Ok(signin::restart(&state, &headers, &target, &msg));
            }
        }
    } else {
        user
    };
    // RFC 8176: a hardware-bound key with user verification; after a password it is the
    // second factor (the same sign-in: its deadline and credentials carry on).
    let mut next = match pending {
        Some((p, _)) => p,
        None => Pending::begin(&state, &user, vec!["user".into()], ctx.now).await?,
    };
    next.amr.insert(0, "hwk".into());
    next.amr.push("mfa".into());
    next.amr.sort();
    next.amr.dedup();
    signin::next_step(&state, &headers, &target, &user, next, &ctx).await
}
