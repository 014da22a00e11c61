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
use serde::Deserialize;
use shared::secret::IdToken;

use super::pages::{LoggedOutPage, LogoutPage};
use super::web::{
    PageError, clear_session_cookie, csrf_for_form, csrf_ok, render, see_other, session_cookie,
    with_cookies,
};
use crate::account::session;
use crate::audit::RequestContext;
use crate::oauth::form::Form;
use crate::state::AppState;
use crate::store::Client;

type PageResult = Result<Response, PageError>;

#[derive(Debug, Deserialize)]
struct HintClaims {
    sub: String,
    aud: String,
    sid: Option<String>,
}

/// The checked parameters of a logout request.
struct LogoutRequest {
    hint: Option<HintClaims>,
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
        let claims: Option<HintClaims> =
            state
                .keys
                .current()
                .verify_own(&raw_hint, "JWT", &state.config.issuer, None);
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

pub async fn logout_get(
    State(state): State<AppState>,
    ctx: RequestContext,
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
    let current = session::current(&state, session_cookie(&state, &headers)).await?;
    match (&req.hint, &current) {
        // Nothing to end in this browser.
        (_, None) => return Ok(done(&state, &req)),
        // The RP names the very session this browser holds: trusted, ended at once (OIDC
        // RP-Initiated Logout §2). A hint naming any other session — someone else's ID token
        // in a link — ends nothing without the user's confirmation.
        (Some(hint), Some(s))
            if hint.sid.as_deref() == Some(s.sid.as_str()) && hint.sub == s.user_id =>
        {
            session::end(&state, s, "logout", &ctx).await?;
            return Ok(done(&state, &req));
        }
        _ => {}
    }
    let (csrf, cookie) = csrf_for_form(&state, &headers);
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

/// The confirmation form's answer (or an RP's POST, OIDC RP-Initiated Logout §2 allows both).
pub async fn logout_post(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let form = Form::from_request(&headers, &body).map_err(|_| {
        PageError::page(
            StatusCode::BAD_REQUEST,
            "Sign-out request not valid",
            "The form could not be read.",
        )
    })?;
    if !csrf_ok(&state, &headers, form.get("csrf")) {
        return Err(PageError::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This sign-out form has expired or was not sent from this site. You are still \
             signed in.",
        ));
    }
    let req = parse(&state, &form).await?;
    if form.get("decision") != Some("logout") {
        return Err(PageError::page(
            StatusCode::OK,
            "You are still signed in",
            "You chose to stay signed in. You can close this page.",
        ));
    }
    if let Some(s) = session::current(&state, session_cookie(&state, &headers)).await? {
        session::end(&state, &s, "logout", &ctx).await?;
    }
    Ok(done(&state, &req))
}
