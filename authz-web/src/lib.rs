//! `authz-web`: the authorization server's HTTP surface over `authz-core`. Thin handlers
//! (extract, call, map), one module per endpoint family, each with its own `router()`; one
//! error mapping (`error`); cross-cutting layers (timeouts, security headers, fallback) here.

mod api;
mod browser;
pub mod console;
pub mod context;
mod device;
pub mod error;
mod health;
pub mod limits;
pub mod metadata;
pub mod metrics;
mod par;
mod register;
pub mod resource_events;
mod revoke;
mod ssf;
mod token;
mod userinfo;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use shared::cors::{Cors, Origins};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use authz_core::state::AppState;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(token::router(&state))
        .merge(device::router(&state))
        .merge(par::router(&state))
        .merge(browser::router(&state))
        .merge(userinfo::router(&state))
        .merge(register::router(&state))
        .merge(revoke::router(&state))
        .merge(api::router())
        .merge(metadata::router(&state))
        .merge(health::router())
        .merge(ssf::router(&state))
        .merge(resource_events::router(&state))
        .fallback(not_found)
        // The client address, for the fetch budgets of whatever the request makes this server
        // fetch (`outbound::budget`).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::requester_scope,
        ))
        // A request id on every request, its span around all of it and one access line.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.http.clone(),
            shared::observe::request_id,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

/// A form-`POST` endpoint that clients call (`/token`, `/par`, `/device_authorization`): rate
/// limited per client IP under `name` at `per_minute` (JSON 429s), the form body capped at
/// `protocol::form::MAX_BODY_BYTES`, CORS for `POST`.
fn client_form_endpoint<H, T>(
    state: &AppState,
    path: &str,
    handler: H,
    name: &'static str,
    per_minute: u32,
) -> Router<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let limit = limits::Limit::new(state, name, per_minute, limits::too_many_json);
    let routes = Router::new()
        .route(path, limits::limited(axum::routing::post(handler), &limit))
        .layer(axum::extract::DefaultBodyLimit::max(
            authz_core::protocol::form::MAX_BODY_BYTES,
        ));
    cors(state, &[Method::POST]).apply(routes)
}

/// CORS for the cookie-less endpoints browser-based clients call with `fetch()` (origins from
/// `AUTHZ_CORS_ORIGINS`). The pages and the management API never get it.
fn cors(state: &AppState, methods: &[Method]) -> Cors {
    Cors::new(Origins::from_config(&state.config.cors_origins), methods)
        .allow_headers(&[
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            // MCP SDKs send it on discovery requests too.
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers(&[header::WWW_AUTHENTICATE, header::RETRY_AFTER])
}

async fn not_found() -> error::WebError {
    error::WebError(error::Error::NotFound(
        "this endpoint (see /.well-known/oauth-authorization-server)".into(),
    ))
}
