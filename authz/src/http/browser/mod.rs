//! The browser-facing endpoints: `/authorize`, the login and consent forms, `/logout`, and the
//! stylesheet. Every response carries the HTML security headers (CSP, frame denial, no-store);
//! every POST answers with a page or a 303 (RFC 9700 §4.12).

mod authorize;
mod logout;
mod pages;
mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::oauth::form::MAX_BODY_BYTES;
use crate::state::AppState;

const STYLE_CSS: &str = include_str!("../../../static/style.css");

pub fn router() -> Router<AppState> {
    let html = Router::new()
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/login", axum::routing::post(authorize::login))
        .route("/consent", axum::routing::post(authorize::consent))
        .route("/logout", get(logout::logout_get).post(logout::logout_post))
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
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ));
    html.route("/static/style.css", get(style))
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
