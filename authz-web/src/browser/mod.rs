//! The browser-facing endpoints: `/authorize`, the login and consent forms, `/logout`, and the
//! stylesheet. Every response carries the HTML security headers (CSP, frame denial, no-store);
//! every POST answers with a page or a 303 (RFC 9700 §4.12).

mod account;
mod admin;
mod authorize;
mod console;
mod device;
mod logout;
mod pages;
#[cfg(feature = "passkeys")]
mod passkeys;
mod pending;
mod signin;
mod upstream;
mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use super::limits::{Limit, limited};
use authz_core::protocol::form::MAX_BODY_BYTES;
use authz_core::state::AppState;

/// Whether this build offers passkeys (the cargo feature `passkeys`, on by default): the
/// templates show the passkey buttons, the script and the account's passkey page only then.
/// Removing stored passkeys (the remedies, an administrator's removal) does not depend on it.
pub(crate) const PASSKEYS: bool = cfg!(feature = "passkeys");

/// A build without passkeys: none of their routes (404), no script.
#[cfg(not(feature = "passkeys"))]
mod passkeys {
    use super::Limit;
    use authz_core::state::AppState;
    use axum::Router;

    pub fn router(_forms: &Option<Limit>) -> Router<AppState> {
        Router::new()
    }

    pub fn script() -> Router<AppState> {
        Router::new()
    }
}

const STYLE_CSS: &str = include_str!("../../static/style.css");

pub fn router(state: &AppState) -> Router<AppState> {
    // One budget per client IP for every form submission (login, consent, POST /authorize).
    let forms = Limit::new(
        state,
        "login",
        state.config.rate_limits.login,
        web::too_many_page,
    );
    let html = Router::new()
        .route(
            "/authorize",
            get(authorize::authorize_get).merge(limited(post(authorize::authorize_post), &forms)),
        )
        .route("/login", limited(post(signin::login), &forms))
        .route("/login/code", limited(post(signin::login_code), &forms))
        .route(
            "/login/password",
            limited(post(signin::login_new_password), &forms),
        )
        .route("/account/login", get(signin::console_login))
        // Each start stores a round trip for an anonymous caller, each callback spends one and
        // calls the provider: both within the sign-in forms' per-address budget.
        .route(
            "/login/upstream/{id}",
            limited(get(upstream::start), &forms),
        )
        .route(
            "/login/upstream/{id}/callback",
            limited(get(upstream::callback), &forms),
        )
        .route("/consent", limited(post(authorize::consent), &forms))
        .route("/logout", get(logout::logout_get).post(logout::logout_post))
        .merge(account::router())
        .merge(passkeys::router(&forms))
        .merge(admin::router())
        .merge(device::router(state))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ));
    let html = crate::layers::never_cached_router(html, crate::layers::NoStore::CacheControl);
    html.route("/static/style.css", get(style))
        .merge(passkeys::script())
}

async fn style() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_CSS,
    )
}
