//! `GET/POST /authorize`, `POST /login`, `POST /consent`: thin handlers around
//! `protocol::authorize` — they read the browser's session, render the login or consent page, or
//! send the browser back to the client. Every failure is a `PageError` (a page, or an error
//! redirect to the client), so the handlers use `?`.

use authz_core::events::kinds;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use shared::ErrorCode;

use super::pages::{ConsentPage, ScopeView, SelectAccountPage};
use super::signin::{self, Target};
use super::web::{
    PageError, checked_form, clear_session_cookie, csrf_for_form, render, see_other,
    session_cookie, with_cookies,
};
use crate::context::Ctx;
use authz_core::events::audit::RequestContext;
use authz_core::identity::session;
use authz_core::protocol::authorize::{self, AuthorizeRequest, Reject};
use authz_core::protocol::form::Form;
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, Outcome, Session, User};

type PageResult = Result<Response, PageError>;

const EXPIRED_FORM: &str = "This form has expired or was not sent from this site. Go back to \
     the application and start signing in again.";

impl From<Reject> for PageError {
    fn from(r: Reject) -> Self {
        match r {
            Reject::Page { title, message } => {
                PageError::page(StatusCode::BAD_REQUEST, title, message)
            }
            Reject::Redirect(e) => PageError::Redirect(e),
            Reject::Server(e) => PageError::Server(e),
        }
    }
}

pub(crate) async fn authorize_get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> PageResult {
    authorize(&state, &headers, &query.unwrap_or_default(), &ctx).await
}

/// OIDC Core §3.1.2.1: the authorization endpoint also accepts the parameters as a form POST.
pub(crate) async fn authorize_post(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let raw = std::str::from_utf8(&body).map_err(|_| {
        PageError::page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            "The request is not valid UTF-8.",
        )
    })?;
    authorize(&state, &headers, raw, &ctx).await
}

/// The signed-in user behind a live session (a disabled or deleted user has none).
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> authz_core::error::Result<Option<(Session, User)>> {
    let Some(session) = session::current(
        &*state.store,
        &state.config.browser,
        state.now(),
        session_cookie(state, headers),
    )
    .await?
    else {
        return Ok(None);
    };
    match state.store.get_user(&session.user_id).await? {
        Some(u) if u.is_enabled() => Ok(Some((session, u))),
        _ => Ok(None),
    }
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    raw: &str,
    ctx: &RequestContext,
) -> PageResult {
    let req = authorize::validate(state, raw).await?;
    match signed_in(state, headers).await? {
        // OIDC Core §3.1.2.1 select_account: the signed-in user chooses to continue or to
        // sign in as someone else (not signed in, signing in is the choice).
        // With prompt=login as well, signing in again is the choice.
        Some((_, user)) if req.prompt.select_account && !req.prompt.login => Ok(render(
            StatusCode::OK,
            &SelectAccountPage {
                client_name: req.client.name.clone(),
                username: user.username.clone(),
                continue_url: format!(
                    "/authorize?{}",
                    req.raw_with_prompt(&["select_account"], None)
                ),
                switch_url: format!(
                    "/authorize?{}",
                    req.raw_with_prompt(&["select_account"], Some("login"))
                ),
            },
        )),
        Some((s, user)) => match sign_in_owed(state, headers, &req, &s, &user, ctx).await? {
            Some(page) => Ok(page),
            None => proceed(state, headers, &req, &s, &user, ctx).await,
        },
        None if req.prompt.none => Err(PageError::Redirect(
            req.error(ErrorCode::LoginRequired, "the user is not signed in"),
        )),
        None => Ok(login_page(state, headers, &req, None, String::new())),
    }
}

/// May `session` of `user` answer `req`, or what must the browser do first? Sign in (again):
/// OIDC Core §3.1.2.1 `prompt=login`, `max_age`, another user than `id_token_hint` names, or
/// `acr_values` asking for a second factor the session lacks; or add the second factor a role
/// of the user requires (`[mfa] required_roles`). The one rule for `GET /authorize` and
/// `POST /consent` (issue 24 item 3); `None`: it may.
async fn sign_in_owed(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    session: &Session,
    user: &User,
    ctx: &RequestContext,
) -> Result<Option<Response>, PageError> {
    if req.needs_login(Some(session), ctx.now) {
        if req.prompt.none {
            let why = if req.is_hinted_user(&session.user_id) {
                "the user must sign in again"
            } else {
                "the signed-in user is not the one id_token_hint names"
            };
            return Err(PageError::Redirect(
                req.error(ErrorCode::LoginRequired, why),
            ));
        }
        return Ok(Some(login_page(state, headers, req, None, String::new())));
    }
    // A second factor this request needs (a role requires it) and the session lacks: sign in
    // again with the code, or set one up first.
    if req.wants_mfa(state, user) && !session.is_multi_factor() {
        if req.prompt.none {
            return Err(PageError::Redirect(req.error(
                ErrorCode::LoginRequired,
                "the user must sign in with a second factor",
            )));
        }
        if authz_core::identity::two_factor::is_enabled(&*state.store, user).await? {
            let msg = "Sign in again with your password and authenticator app.".to_owned();
            return Ok(Some(login_page(
                state,
                headers,
                req,
                Some(msg),
                user.username.clone(),
            )));
        }
        return Ok(Some(signin::mfa_setup_page(&Target::Authorize(Box::new(
            req.clone(),
        )))));
    }
    Ok(None)
}

fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    error: Option<String>,
    username: String,
) -> Response {
    let target = Target::Authorize(Box::new(req.clone()));
    signin::login_page(state, headers, &target, error, username)
}

/// Signed in, and the session may answer (`sign_in_owed`): ask for consent if needed,
/// otherwise issue the code.
async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizeRequest,
    session: &Session,
    user: &User,
    ctx: &RequestContext,
) -> PageResult {
    let scope = req.granted_scope(state, user);
    if !req.needs_consent(state, user, &scope).await? {
        return issue(state, req, session, user, &scope, ctx).await;
    }
    if req.prompt.none {
        return Err(PageError::Redirect(req.error(
            ErrorCode::ConsentRequired,
            "the user has not approved this client",
        )));
    }
    let (csrf, cookie) = csrf_for_form(state, headers);
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let client = &req.client;
    let local_only = client.redirect_uris.iter().all(|u| {
        url::Url::parse(u)
            .is_ok_and(|u| matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")))
    });
    let page = ConsentPage {
        client_name: client.name.clone(),
        client_host: authz_core::clients::cimd::document_host(client),
        unverified: !authz_core::clients::cimd::is_verified(&state.config.cimd, client),
        local_only,
        redirect_host,
        username: user.username.clone(),
        resource: Some(req.resource.clone()),
        scopes: ScopeView::list(&state.config, &scope),
        csrf,
        request: req.raw.clone(),
    };
    Ok(with_cookies(render(StatusCode::OK, &page), cookie))
}

async fn issue(
    state: &AppState,
    req: &AuthorizeRequest,
    session: &Session,
    user: &User,
    scope: &shared::ScopeSet,
    ctx: &RequestContext,
) -> PageResult {
    let location = req.issue_code(state, user, session, scope).await?;
    let ev = AuditEvent::new(ctx.now, kinds::CODE_ISSUED, Outcome::Success)
        .subject(&user.id)
        .client(&req.client.id)
        .details(serde_json::json!({ "scope": scope.to_string(), "aud": req.resource }))
        .ctx(ctx);
    state.audit_async(ev).await;
    Ok(see_other(&location))
}

/// A submitted consent form: readable, carrying this browser's CSRF token, and its
/// authorization request still valid.
async fn submitted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Form, AuthorizeRequest), PageError> {
    let form = checked_form(state, headers, body, EXPIRED_FORM)?;
    let req = authorize::validate(state, form.get("request").unwrap_or_default()).await?;
    Ok((form, req))
}

/// `POST /consent`: approve or deny.
pub async fn consent(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (form, req) = submitted(&state, &headers, &body).await?;
    let Some((session, user)) = signed_in(&state, &headers).await? else {
        // The session ended meanwhile: start over (the login page comes next).
        return Ok(with_cookies(
            see_other(&format!("/authorize?{}", req.raw)),
            [clear_session_cookie(&state)],
        ));
    };
    // The same rule as the authorization request's: a form of the user's own making, or one
    // shown before the session changed, gets no code the request would not give.
    if let Some(page) = sign_in_owed(&state, &headers, &req, &session, &user, &ctx).await? {
        return Ok(page);
    }
    let scope = req.granted_scope(&state, &user);
    let (kind, outcome) = match form.get("decision") {
        Some("approve") => (kinds::CONSENT_GRANTED, Outcome::Success),
        Some("deny") => (kinds::CONSENT_DENIED, Outcome::Failure),
        _ => {
            return Err(PageError::page(
                StatusCode::BAD_REQUEST,
                "Invalid form",
                "Choose Allow or Deny.",
            ));
        }
    };
    let ev = AuditEvent::new(ctx.now, kind, outcome)
        .actor(&user.username)
        .subject(&user.id)
        .client(&req.client.id)
        .details(serde_json::json!({ "scope": scope.to_string() }))
        .ctx(&ctx);
    if outcome == Outcome::Failure {
        state.audit(ev).await;
        return Err(PageError::Redirect(
            req.error(ErrorCode::AccessDenied, "the user denied the request"),
        ));
    }
    let stored = state
        .store
        .get_consent(&user.id, &req.client.id, &req.resource)
        .await?
        .and_then(|s| shared::ScopeSet::parse(&s).ok())
        .unwrap_or_default();
    let remembered = stored.union(&scope).to_string();
    state
        .store
        .put_consent(
            &user.id,
            &req.client.id,
            &req.resource,
            &remembered,
            ctx.now,
        )
        .await?;
    state.audit(ev).await;
    issue(&state, &req, &session, &user, &scope, &ctx).await
}
