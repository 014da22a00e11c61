//! Small web helpers for the browser endpoints: cookies, CSRF tokens, rendering pages and
//! redirects.
//!
//! CSRF (RFC 9700 §4.7, OWASP): a random `csrf` cookie (HttpOnly, SameSite=Lax) and, in each
//! form, HMAC(master-derived key, cookie value). A cross-site page can neither read the cookie
//! nor compute the MAC; SameSite=Lax keeps the cookie off cross-site POSTs in the first place.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::pages::ErrorPage;
use authz_core::config::Config;
use authz_core::crypto::{ct_eq, random_secret};
use authz_core::state::AppState;

const SESSION: &str = "authz_session";
const CSRF: &str = "authz_csrf";

/// Cookie names get the `__Host-` prefix (and `Secure`) when the issuer is https.
fn name(config: &Config, base: &str) -> String {
    if config.secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The value of cookie `name` in the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(config: &Config, base: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax",
        name(config, base)
    );
    if config.secure_cookies() {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    // Cookie values here are base64url or empty: always valid header bytes.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` for cookie `base` (prefixed and `Secure` on https), e.g. a step's state.
pub fn cookie_header(
    config: &Config,
    base: &str,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    set_cookie(config, base, value, max_age)
}

/// The value of cookie `base` (by its prefixed name) in the request.
pub fn cookie_value<'a>(state: &AppState, headers: &'a HeaderMap, base: &str) -> Option<&'a str> {
    cookie(headers, &name(&state.config, base))
}

pub(crate) fn session_cookie<'a>(state: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    cookie(headers, &name(&state.config, SESSION))
}

/// `Set-Cookie` for a new session (a session cookie: gone when the browser closes, and the
/// server enforces idle and absolute timeouts).
pub(crate) fn set_session_cookie(state: &AppState, value: &str) -> HeaderValue {
    set_cookie(&state.config, SESSION, value, None)
}

pub(crate) fn clear_session_cookie(state: &AppState) -> HeaderValue {
    set_cookie(&state.config, SESSION, "", Some(0))
}

/// The CSRF token for a form: derived from the browser's `csrf` cookie value.
pub(crate) fn csrf_token(state: &AppState, cookie_value: &str) -> String {
    URL_SAFE_NO_PAD.encode(state.master.mac("csrf", cookie_value.as_bytes()))
}

/// A form's CSRF token and, when the browser has no `csrf` cookie yet, the cookie to set.
pub(crate) fn csrf_for_form(
    state: &AppState,
    headers: &HeaderMap,
) -> (String, Option<HeaderValue>) {
    match cookie(headers, &name(&state.config, CSRF)).filter(|v| v.len() >= 32) {
        Some(v) => (csrf_token(state, v), None),
        None => {
            let v = random_secret();
            (
                csrf_token(state, &v),
                Some(set_cookie(&state.config, CSRF, &v, None)),
            )
        }
    }
}

/// Does the submitted token belong to this browser's `csrf` cookie?
pub(crate) fn csrf_ok(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (cookie(headers, &name(&state.config, CSRF)), submitted) {
        (Some(c), Some(t)) if c.len() >= 32 => ct_eq(csrf_token(state, c).as_bytes(), t.as_bytes()),
        _ => false,
    }
}

/// A submitted form of ours: readable (else a 400 page) and carrying this browser's CSRF
/// token (else a 403 page saying `expired`: what happened and what to do).
pub(crate) fn checked_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    expired: &str,
) -> Result<authz_core::protocol::form::Form, PageError> {
    checked_form_with_lists(state, headers, body, expired, &[])
}

/// [`checked_form`] for a form with checkbox groups `lists` (names that may repeat).
pub(crate) fn checked_form_with_lists(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    expired: &str,
    lists: &[&str],
) -> Result<authz_core::protocol::form::Form, PageError> {
    let content_type = crate::extract::content_type(headers);
    let form = authz_core::protocol::form::Form::from_request_with_lists(content_type, body, lists)
        .map_err(|_| {
            PageError::page(
                StatusCode::BAD_REQUEST,
                "Invalid form",
                "The form could not be read. Go back and try again.",
            )
        })?;
    if !csrf_ok(state, headers, form.get("csrf")) {
        return Err(PageError::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            expired,
        ));
    }
    Ok(form)
}

/// Render a template (a render failure is a 500 page, logged).
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A helpful error page.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            title: title.to_owned(),
            message: message.to_owned(),
            detail: None,
        },
    )
}

/// What a browser-facing handler fails with: always a page, never JSON. Handlers return
/// `Result<Response, PageError>` and use `?` on anything that can fail on the server's side.
#[derive(Debug)]
pub(crate) enum PageError {
    /// A page to show: the user's request cannot go on (status, title, what to do).
    Page {
        status: StatusCode,
        title: String,
        message: String,
    },
    /// An error for the client, sent to its redirect URI (RFC 6749 §4.1.2.1).
    Redirect(authz_core::protocol::authorize::ErrorRedirect),
    /// The server's side failed (logged, a generic page), or shed the request (a busy page).
    Server(crate::error::Error),
    /// A response to send as it is (e.g. a redirect to sign in again).
    Response(Box<Response>),
}

impl PageError {
    pub fn page(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            title: title.into(),
            message: message.into(),
        }
    }
}

impl From<crate::error::WebError> for PageError {
    fn from(e: crate::error::WebError) -> Self {
        Self::from(e.0)
    }
}

impl From<crate::error::Error> for PageError {
    fn from(e: crate::error::Error) -> Self {
        Self::Server(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Page {
                status,
                title,
                message,
            } => error_page(status, &title, &message),
            Self::Redirect(e) => see_other(&e.location()),
            Self::Response(r) => *r,
            // Shed under load (password hashing queue full): a page, 503, and when to retry.
            Self::Server(crate::error::Error::Overloaded { retry_after }) => {
                let mut r = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Busy right now",
                    "Many people are signing in at this moment. Wait a few seconds, then go \
                     back and submit the form again.",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                r
            }
            // A refusal whose cause is for the log only (the directory unreachable): the page
            // of what it is shown as.
            Self::Server(crate::error::Error::Concealed { shown, cause }) => {
                tracing::warn!(%cause, "browser request refused");
                Self::Server(*shown).into_response()
            }
            // The database cannot be reached: temporary, and said so (503, when to retry).
            Self::Server(e) if e.is_storage_outage() => {
                tracing::error!(error = %e, "browser request failed: storage unavailable");
                let mut r = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "The server cannot reach its storage right now. Please try again in a moment.",
                );
                if let Some(s) = e.retry_after() {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(s));
                }
                r
            }
            Self::Server(e) => {
                tracing::error!(error = %e, "browser request failed");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not complete your request. Please try again in a moment.",
                )
            }
        }
    }
}

/// The page for a browser that submitted too many forms (429 with `Retry-After`): the refusal
/// the form limiter is given.
pub(crate) fn too_many_page(retry_after: u64) -> Response {
    let mut r = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!(
            "Too many sign-in requests came from your network. Wait {retry_after} seconds and \
             try again."
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// 303 See Other (RFC 9700 §4.12: never 307 after a POST carrying credentials).
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect address",
            "The address to return to cannot be used.",
        ),
    }
}

/// Add `Set-Cookie` headers to a response.
pub(crate) fn with_cookies(
    mut response: Response,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Response {
    for c in cookies {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}
