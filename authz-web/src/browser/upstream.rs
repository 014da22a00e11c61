//! Signing in through an upstream identity provider (issue 26): `GET /login/upstream/{id}`
//! ("Continue with <name>" on the sign-in page) begins the round trip and sends the browser to
//! the provider; `GET /login/upstream/{id}/callback` is where it comes back
//! (`authz_core::federation::round_trip` checks the answer). A sign-in that succeeds joins the
//! password sign-in's steps (`signin::next_step`: a local second factor when one is set up,
//! then a new session) and continues where it began — the MCP client's authorization request
//! (consent included) or a console page. A refusal is our own page; nothing the provider sent
//! is shown.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::pages::MessagePage;
use super::pending::Pending;
use super::signin::{Target, login_page, next_step, safe_next};
use super::web::{
    PageError, cookie_header, cookie_value, render, see_other, session_cookie, with_cookies,
};
use crate::context::Ctx;
use authz_core::config::upstream::Upstream;
use authz_core::federation::round_trip::{self, Callback};
use authz_core::identity::session;
use authz_core::protocol::authorize;
use authz_core::state::AppState;

type PageResult = Result<Response, PageError>;

/// The cookie binding a round trip to the browser that began it.
const COOKIE: &str = "authz_upstream";

fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    cookie_header(&state.config, COOKIE, value, Some(max_age))
}

/// The cookie binding a round trip just begun to this browser.
pub(super) fn binding_cookie(state: &AppState, value: &str) -> HeaderValue {
    cookie(state, value, state.config.federation.login_ttl_secs)
}

fn unknown() -> PageError {
    PageError::page(
        StatusCode::NOT_FOUND,
        "Unknown identity provider",
        "This server does not sign people in with that identity provider. Go back and choose \
         another way to sign in.",
    )
}

/// The link that begins a sign-in with `up` for `target` (the sign-in page's button).
pub(super) fn start_link(up: &Upstream, target: &Target) -> String {
    let (field, value) = target.field();
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair(&field, &value)
        .finish();
    format!("/login/upstream/{}?{q}", up.id)
}

#[derive(Deserialize)]
pub(crate) struct Start {
    request: Option<String>,
    next: Option<String>,
}

/// Where a sign-in continues, as the round trip keeps it.
#[derive(serde::Serialize, Deserialize)]
struct Kept {
    request: Option<String>,
    next: Option<String>,
}

/// `GET /login/upstream/{id}?request=…|next=…`: off to the provider.
pub(crate) async fn start(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    Query(q): Query<Start>,
) -> PageResult {
    let svc = state.federation();
    // Under `federation.only`, no other provider (issue 26 LDAP review F7).
    let up = svc.sign_in_provider(&id).ok_or_else(unknown)?;
    let kept = match q.request {
        // The authorization request must stand now (and is checked again on return).
        Some(raw) => {
            authorize::validate(&state, &raw).await?;
            Kept {
                request: Some(raw),
                next: None,
            }
        }
        None => Kept {
            request: None,
            next: Some(safe_next(q.next.as_deref())),
        },
    };
    let target = serde_json::to_string(&kept).map_err(authz_core::error::Error::internal)?;
    match round_trip::begin(svc, up, &target, None, ctx.now).await? {
        Ok(begun) => Ok(with_cookies(
            see_other(&begun.location),
            [binding_cookie(&state, &begun.browser)],
        )),
        Err(refusal) => Err(PageError::page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Identity provider unavailable",
            refusal.message,
        )),
    }
}

#[derive(Deserialize)]
pub(crate) struct Returned {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// `GET /login/upstream/{id}/callback`: the provider's answer.
pub(crate) async fn callback(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Returned>,
) -> PageResult {
    let svc = state.federation();
    let up = svc.sign_in_provider(&id).ok_or_else(unknown)?;
    let now = state.now();
    let held = session_cookie(&state, &headers);
    let live = session::current(&*state.store, &state.config.browser, now, held).await?;
    let cb = Callback {
        state: q.state,
        code: q.code,
        error: q.error,
        iss: q.iss,
        session_user: live.map(|s| s.user_id),
    };
    let browser = cookie_value(&state, &headers, COOKIE);
    let outcome = round_trip::complete(svc, up, &cb, browser, &ctx).await?;
    let clear = cookie(&state, "", 0);
    let done = match outcome {
        Ok(done) => done,
        Err(failed) => {
            let again = failed
                .target
                .as_deref()
                .and_then(|t| serde_json::from_str::<Kept>(t).ok())
                .map(|k| match (k.request, k.next) {
                    (Some(raw), _) => format!("/authorize?{raw}"),
                    (None, next) => format!(
                        "/account/login?{}",
                        form_urlencoded::Serializer::new(String::new())
                            .append_pair("next", &safe_next(next.as_deref()))
                            .finish()
                    ),
                });
            let page = MessagePage {
                title: "You are not signed in".into(),
                message: failed.refusal.message,
                link: again.map(|href| (href, "Start signing in again".to_owned())),
            };
            return Ok(with_cookies(render(StatusCode::FORBIDDEN, &page), [clear]));
        }
    };
    // An explicit link from the account page: the signed-in user stays signed in as they
    // were (no new session from the provider's sign-in).
    if done.link_user_id.is_some() {
        let back = format!("{}?done=linked", super::account::IDENTITIES);
        return Ok(with_cookies(see_other(&back), [clear]));
    }
    let kept: Kept = serde_json::from_str(&done.target).unwrap_or(Kept {
        request: None,
        next: None,
    });
    let target = match kept.request {
        Some(raw) => Target::Authorize(Box::new(authorize::validate(&state, &raw).await?)),
        None => Target::Console {
            next: safe_next(kept.next.as_deref()),
            reason: None,
        },
    };
    // The application asked for one user (id_token_hint): nobody else signs in here.
    if let Target::Authorize(r) = &target
        && !r.is_hinted_user(&done.user.id)
    {
        let msg = "This application asked you to sign in with a different account. Sign in \
                   with that account, or go back to the application."
            .to_owned();
        let page = login_page(&state, &headers, &target, Some(msg), String::new());
        return Ok(with_cookies(page, [clear]));
    }
    let pending = Pending::begin(&state, &done.user, done.amr, ctx.now).await?;
    let page = next_step(&state, &headers, &target, &done.user, pending, &ctx).await?;
    Ok(with_cookies(page, [clear]))
}
