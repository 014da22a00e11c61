//! `GET/POST /authorize`, `POST /login`, `POST /consent`: thin handlers around
//! `oauth::authorize` — they read the browser's session, render the login or consent page, or
//! send the browser back to the client.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use shared::ErrorCode;

use super::pages::{ConsentPage, LoginPage, ScopeView};
use super::web::{
    clear_session_cookie, csrf_for_form, csrf_ok, error_page, render, see_other, server_error_page,
    session_cookie, set_session_cookie, with_cookies,
};
use crate::http::limits::ClientIp;
use crate::oauth::authorize::{self, AuthorizeRequest, Reject};
use crate::oauth::form::Form;
use crate::oauth::grant::RequestContext;
use crate::oauth::login::{self, LoginFailure};
use crate::oauth::scope::describe;
use crate::session;
use crate::state::AppState;
use crate::store::{AuditEvent, Outcome, Session, User};
use shared::secret::Password;

const EXPIRED_FORM: &str = "This form has expired or was not sent from this site. Go back to \
     the application and start signing in again.";

fn ctx(peer: std::net::IpAddr) -> RequestContext {
    RequestContext {
        ip: Some(peer.to_string()),
    }
}

pub async fn authorize_get(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    authorize(&state, &headers, &query.unwrap_or_default(), &ctx(peer)).await
}

/// OIDC Core §3.1.2.1: the authorization endpoint also accepts the parameters as a form POST.
pub async fn authorize_post(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match std::str::from_utf8(&body) {
        Ok(raw) => authorize(&state, &headers, raw, &ctx(peer)).await,
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            "The request is not valid UTF-8.",
        ),
    }
}

fn reject(state: &AppState, r: Reject) -> Response {
    match r {
        Reject::Page { title, message } => error_page(StatusCode::BAD_REQUEST, &title, &message),
        Reject::Redirect(e) => see_other(&e.location(&state.config.issuer)),
    }
}

/// The signed-in user behind a live session (a disabled or deleted user has none).
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> crate::error::Result<Option<(Session, User)>> {
    let Some(session) = session::current(state, session_cookie(state, headers)).await? else {
        return Ok(None);
    };
    match state.store.get_user(&session.user_id).await? {
        Some(u) if u.disabled_at.is_none() => Ok(Some((session, u))),
        _ => Ok(None),
    }
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    raw: &str,
    ctx: &RequestContext,
) -> Response {
    let req = match authorize::validate(state, raw).await {
        Ok(r) => r,
        Err(r) => return reject(state, r),
    };
    let current = match signed_in(state, headers).await {
        Ok(c) => c,
        Err(e) => return server_error_page(&e),
    };
    let now = state.now();
    match current {
        Some((s, user)) if !req.needs_login(Some(&s), now) => {
            proceed(state, headers, &req, &s, &user, ctx).await
        }
        _ if req.prompt.none => see_other(
            &req.error(ErrorCode::LoginRequired, "the user is not signed in")
                .location(&state.config.issuer),
        ),
        _ => login_page(state, headers, &req, None, String::new()),
    }
}

fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    error: Option<String>,
    username: String,
) -> Response {
    let (csrf, cookie) = csrf_for_form(state, headers);
    let page = LoginPage {
        client_name: req.client.name.clone(),
        error,
        username,
        csrf,
        request: req.raw.clone(),
    };
    with_cookies(render(StatusCode::OK, &page), cookie)
}

/// Signed in: ask for consent if needed, otherwise issue the code.
async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    session: &Session,
    user: &User,
    ctx: &RequestContext,
) -> Response {
    let scope = req.granted_scope(state, user);
    let needs = match req.needs_consent(state, user, &scope).await {
        Ok(n) => n,
        Err(e) => return server_error_page(&e),
    };
    if !needs {
        return issue(state, req, session, user, &scope, ctx).await;
    }
    if req.prompt.none {
        return see_other(
            &req.error(
                ErrorCode::ConsentRequired,
                "the user has not approved this client",
            )
            .location(&state.config.issuer),
        );
    }
    let (csrf, cookie) = csrf_for_form(state, headers);
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let page = ConsentPage {
        client_name: req.client.name.clone(),
        redirect_host,
        username: user.username.clone(),
        resource: Some(req.resource.clone()),
        scopes: scope
            .iter()
            .map(|s| ScopeView {
                name: s.as_str().to_owned(),
                description: describe(s.as_str()).to_owned(),
            })
            .collect(),
        csrf,
        request: req.raw.clone(),
    };
    with_cookies(render(StatusCode::OK, &page), cookie)
}

async fn issue(
    state: &AppState,
    req: &AuthorizeRequest,
    session: &Session,
    user: &User,
    scope: &shared::ScopeSet,
    ctx: &RequestContext,
) -> Response {
    match req.issue_code(state, user, session, scope).await {
        Ok(location) => {
            let mut ev = AuditEvent::new(state.now(), "code.issued", Outcome::Success)
                .subject(&user.id)
                .client(&req.client.id)
                .details(serde_json::json!({ "scope": scope.to_string(), "aud": req.resource }));
            ev.ip = ctx.ip.clone();
            state.audit_async(ev).await;
            see_other(&location)
        }
        Err(e) => server_error_page(&e),
    }
}

/// Parse a browser form (bad bodies get a page, not JSON).
fn browser_form(headers: &HeaderMap, body: &[u8]) -> Result<Form, Box<Response>> {
    Form::from_request(headers, body).map_err(|_| {
        Box::new(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "The form could not be read. Go back and try again.",
        ))
    })
}

/// A submitted login or consent form: readable, carrying this browser's CSRF token, and its
/// authorization request still valid. Anything else is the page to answer with.
async fn submitted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Form, AuthorizeRequest), Box<Response>> {
    let form = browser_form(headers, body)?;
    if !csrf_ok(state, headers, form.get("csrf")) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            EXPIRED_FORM,
        )));
    }
    let req = authorize::validate(state, form.get("request").unwrap_or_default())
        .await
        .map_err(|r| Box::new(reject(state, r)))?;
    Ok((form, req))
}

/// `POST /login`: check CSRF, the request, then the credentials.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, req) = match submitted(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let password = Password::new(form.get("password").unwrap_or_default());
    let ctx = ctx(peer);
    if username.is_empty() || password.expose().is_empty() {
        let msg = "Enter your username and password.".to_owned();
        return login_page(&state, &headers, &req, Some(msg), username);
    }
    let outcome = match login::authenticate(
        &state,
        &username,
        &password,
        &req.client.id,
        "login_form",
        &ctx,
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return server_error_page(&e),
    };
    let user = match outcome {
        Ok(u) => u,
        Err(LoginFailure::Invalid) => {
            let msg = "The username or password is incorrect.".to_owned();
            return login_page(&state, &headers, &req, Some(msg), username);
        }
        Err(LoginFailure::Locked { retry_after }) => {
            let minutes = (retry_after + 59) / 60;
            let msg = format!(
                "Too many failed sign-in attempts. For your security, sign-in is paused for this \
                 account; try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            );
            return login_page(&state, &headers, &req, Some(msg), username);
        }
    };
    // A new session on every sign-in (no session fixation); a previous one ends.
    if let Ok(Some(old)) = session::current(&state, session_cookie(&state, &headers)).await
        && let Err(e) = session::end(&state, &old, "replaced", &ctx).await
    {
        return server_error_page(&e);
    }
    let (_, cookie_value) = match session::start(&state, &user, &ctx).await {
        Ok(s) => s,
        Err(e) => return server_error_page(&e),
    };
    login::audit_success(&state, &user, &req.client.id, "login_form", &ctx).await;
    let next = format!("/authorize?{}", req.raw_after_login());
    with_cookies(
        see_other(&next),
        [set_session_cookie(&state, &cookie_value)],
    )
}

/// `POST /consent`: approve or deny.
pub async fn consent(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, req) = match submitted(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (session, user) = match signed_in(&state, &headers).await {
        Ok(Some(c)) => c,
        // The session ended meanwhile: start over (the login page comes next).
        Ok(None) => {
            return with_cookies(
                see_other(&format!("/authorize?{}", req.raw)),
                [clear_session_cookie(&state)],
            );
        }
        Err(e) => return server_error_page(&e),
    };
    let ctx = ctx(peer);
    let scope = req.granted_scope(&state, &user);
    let now = state.now();
    match form.get("decision") {
        Some("approve") => {
            let stored = state
                .store
                .get_consent(&user.id, &req.client.id, &req.resource)
                .await
                .ok()
                .flatten()
                .and_then(|s| shared::ScopeSet::parse(&s).ok())
                .unwrap_or_default();
            let remembered = stored.union(&scope).to_string();
            if let Err(e) = state
                .store
                .put_consent(&user.id, &req.client.id, &req.resource, &remembered, now)
                .await
            {
                return server_error_page(&e);
            }
            audit_consent(
                &state,
                &user,
                &req,
                "consent.granted",
                Outcome::Success,
                &scope,
                &ctx,
            )
            .await;
            issue(&state, &req, &session, &user, &scope, &ctx).await
        }
        Some("deny") => {
            audit_consent(
                &state,
                &user,
                &req,
                "consent.denied",
                Outcome::Failure,
                &scope,
                &ctx,
            )
            .await;
            see_other(
                &req.error(ErrorCode::AccessDenied, "the user denied the request")
                    .location(&state.config.issuer),
            )
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "Choose Allow or Deny.",
        ),
    }
}

async fn audit_consent(
    state: &AppState,
    user: &User,
    req: &AuthorizeRequest,
    kind: &str,
    outcome: Outcome,
    scope: &shared::ScopeSet,
    ctx: &RequestContext,
) {
    let mut ev = AuditEvent::new(state.now(), kind, outcome)
        .actor(&user.username)
        .subject(&user.id)
        .client(&req.client.id)
        .details(serde_json::json!({ "scope": scope.to_string() }));
    ev.ip = ctx.ip.clone();
    state.audit(ev).await;
}
