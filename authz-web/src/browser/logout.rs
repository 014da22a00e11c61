//! `GET/POST /logout`: OpenID Connect RP-Initiated Logout 1.0. Ends the browser session,
//! revokes the refresh tokens issued through it, and returns to a registered
//! `post_logout_redirect_uri` only.
//!
//! With a valid `id_token_hint` (signed by us; expiry not checked, §2) whose `sid` is the
//! session this browser holds, the RP's request is trusted and that session ends at once.
//! Otherwise — no hint, or a hint naming another session (someone else's ID token in a link) —
//! the user confirms on a page with a CSRF-protected form, which ends only the browser's own
//! session, so a cross-site link cannot sign anyone out.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use shared::secret::IdToken;

use super::pages::{LoggedOutPage, LogoutPage};
use super::web::{
    PageError, clear_session_cookie, csrf_for_form, csrf_ok, render, see_other, session_cookie,
    with_cookies,
};
use crate::context::Ctx;
use authz_core::events::audit::RequestContext;
use authz_core::identity::session;
use authz_core::protocol::form::Form;
use authz_core::protocol::id_token_hint::{self, IdTokenHint};
use authz_core::state::AppState;
use authz_core::store::Client;

type PageResult = Result<Response, PageError>;

/// The checked parameters of a logout request.
struct LogoutRequest {
    hint: Option<IdTokenHint>,
    client: Option<Client>,
    redirect: Option<String>,
    state: Option<String>,
    raw_hint: IdToken,
}

async fn parse(state: &AppState, form: &Form) -> Result<LogoutRequest, PageError> {
    let bad =
        |msg: &str| PageError::page(StatusCode::BAD_REQUEST, "Sign-out request not valid", msg);
    let raw_hint = form.get("id_token_hint").unwrap_or_default().to_owned();
    let hint = if raw_hint.is_empty() {
        None
    } else {
        let claims = id_token_hint::verify(state, &raw_hint);
        Some(claims.ok_or_else(|| bad("The ID token hint was not issued by this server."))?)
    };
    let client_id = match (form.get("client_id").filter(|c| !c.is_empty()), &hint) {
        (Some(c), Some(h)) if c != h.aud => {
            return Err(bad("client_id does not match the ID token hint."));
        }
        (Some(c), _) => Some(c.to_owned()),
        (None, Some(h)) => Some(h.aud.clone()),
        (None, None) => None,
    };
    let client = match client_id {
        Some(id) => Some(
            state
                .clients
                .get(&*state.store, &id, state.now())
                .await?
                .map(|(c, _)| Client::clone(&c))
                .ok_or_else(|| bad("The application is not registered with this server."))?,
        ),
        None => None,
    };
    let redirect = form
        .get("post_logout_redirect_uri")
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    if let Some(r) = &redirect {
        // Exact match against the client's registered list (OIDC RP-Initiated Logout §3).
        let registered = client
            .as_ref()
            .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == r));
        if !registered {
            return Err(bad(
                "The address to return to after signing out is not registered for this \
                 application, so you were not sent there.",
            ));
        }
    }
    Ok(LogoutRequest {
        hint,
        client,
        redirect,
        state: form.get("state").map(str::to_owned),
        raw_hint: IdToken::new(raw_hint),
    })
}

impl LogoutRequest {
    /// The request's parameters as a query string, to continue it as a GET.
    fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.raw_hint.expose().is_empty() {
            q.append_pair("id_token_hint", self.raw_hint.expose());
        }
        if let Some(c) = &self.client {
            q.append_pair("client_id", &c.id);
        }
        if let Some(r) = &self.redirect {
            q.append_pair("post_logout_redirect_uri", r);
        }
        if let Some(s) = &self.state {
            q.append_pair("state", s);
        }
        q.finish()
    }
}

fn done(state: &AppState, req: &LogoutRequest) -> Response {
    let page = match &req.redirect {
        Some(uri) => {
            let mut url = uri.clone();
            if let Some(s) = &req.state {
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", s)
                    .finish();
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&q);
            }
            see_other(&url)
        }
        None => render(StatusCode::OK, &LoggedOutPage),
    };
    with_cookies(page, [clear_session_cookie(state)])
}

pub(crate) async fn logout_get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> PageResult {
    let form = Form::parse(query.unwrap_or_default().as_bytes()).map_err(|_| {
        PageError::page(
            StatusCode::BAD_REQUEST,
            "Sign-out request not valid",
            "The request is malformed.",
        )
    })?;
    let req = parse(&state, &form).await?;
    rp_request(&state, &ctx, &headers, &req).await
}

/// An RP's logout request (GET, or the RP's own form POST): end the session at once when the
/// hint names the very session this browser holds, otherwise ask.
async fn rp_request(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    req: &LogoutRequest,
) -> PageResult {
    let current = session::current(
        &*state.store,
        &state.config.browser,
        state.now(),
        session_cookie(state, headers),
    )
    .await?;
    match (&req.hint, &current) {
        // Nothing to end in this browser.
        (_, None) => return Ok(done(state, req)),
        // The RP names the very session this browser holds: trusted, ended at once (OIDC
        // RP-Initiated Logout §2). A hint naming any other session — someone else's ID token
        // in a link — ends nothing without the user's confirmation.
        (Some(hint), Some(s))
            if hint.sid.as_deref() == Some(s.sid.as_str()) && hint.sub == s.user_id =>
        {
            session::end(&*state.store, &state.events, s, "logout", ctx).await?;
            return Ok(done(state, req));
        }
        _ => {}
    }
    let (csrf, cookie) = csrf_for_form(state, headers);
    let page = LogoutPage {
        csrf,
        client_name: req.client.as_ref().map(|c| c.name.clone()),
        id_token_hint: req.raw_hint.clone(),
        post_logout_redirect_uri: req.redirect.clone().unwrap_or_default(),
        state: req.state.clone().unwrap_or_default(),
        client_id: req
            .client
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default(),
    };
    Ok(with_cookies(render(StatusCode::OK, &page), cookie))
}

/// `POST /logout`: either an RP's form POST (OIDC RP-Initiated Logout §2: the endpoint MUST
/// support GET and POST), handled like the GET, or the answer to our own confirmation form
/// (it carries `decision`), which must carry this browser's CSRF token.
pub(crate) async fn logout_post(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let form = Form::from_request(crate::extract::content_type(&headers), &body).map_err(|_| {
        PageError::page(
            StatusCode::BAD_REQUEST,
            "Sign-out request not valid",
            "The form could not be read.",
        )
    })?;
    let Some(decision) = form.get("decision") else {
        let req = parse(&state, &form).await?;
        if session_cookie(&state, &headers).is_some() {
            return rp_request(&state, &ctx, &headers, &req).await;
        }
        // A cross-site POST carries no SameSite=Lax session cookie, so this browser's session
        // cannot be seen here: continue as the GET, a top-level navigation that carries it.
        return Ok(see_other(&format!("/logout?{}", req.query())));
    };
    if !csrf_ok(&state, &headers, form.get("csrf")) {
        return Err(PageError::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This sign-out form has expired or was not sent from this site. You are still \
             signed in.",
        ));
    }
    let req = parse(&state, &form).await?;
    if decision != "logout" {
        return Err(PageError::page(
            StatusCode::OK,
            "You are still signed in",
            "You chose to stay signed in. You can close this page.",
        ));
    }
    if let Some(s) = session::current(
        &*state.store,
        &state.config.browser,
        state.now(),
        session_cookie(&state, &headers),
    )
    .await?
    {
        session::end(&*state.store, &state.events, &s, "logout", &ctx).await?;
    }
    Ok(done(&state, &req))
}
