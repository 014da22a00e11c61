//! The router's layers, in one place: around everything ([`around`]) the one
//! `Cache-Control: no-store` layer, the client address as the requester of whatever the
//! request makes this server fetch, the request id with its span and access line, the request
//! timeout and the security headers every response carries; per group of routes, CORS
//! ([`cors`]) and the client form endpoints' rate limit, body limit and CORS
//! ([`client_form_endpoint`]). The rate limiter itself is `limits`; the pages' HTML security
//! headers are `browser`'s.
//!
//! **Never cached.** Responses that carry secrets or per-request answers must not be stored
//! (RFC 6749 §5.1, §5.2; RFC 7009 §2.2; RFC 7591 §3.2.1; RFC 8628 §3.2; OIDC Core §5.3.2; the
//! pages). Such a response is *marked* [`NoStore`] — by its route ([`never_cached`],
//! [`never_cached_router`]) or by the response itself (every [`crate::error::WebError`], a
//! refused DPoP proof) — and [`no_store`], installed once around everything, writes the headers
//! of the mark. A mark already set wins over the route's. Public documents (metadata, JWKS,
//! the stylesheet) carry no mark and keep their own `Cache-Control`.

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state, map_response};
use axum::response::Response;
use axum::routing::MethodRouter;
use shared::cors::{Cors, Origins};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::extract::client_ip;
use authz_core::state::AppState;

/// The time a request may take before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a response must not be cached: a response extension that [`no_store`] turns into
/// headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoStore {
    /// `Cache-Control: no-store`.
    CacheControl,
    /// `Cache-Control: no-store` and `Pragma: no-cache` for HTTP/1.0 caches (RFC 6749 §5.1:
    /// the token endpoint's answers and every OAuth error response).
    WithPragma,
}

impl NoStore {
    /// Mark `response` this way, unless it is marked already.
    pub fn mark(self, mut response: Response) -> Response {
        if response.extensions().get::<NoStore>().is_none() {
            response.extensions_mut().insert(self);
        }
        response
    }
}

/// `mr`'s responses marked `how` (its handlers' answers only: not a `405` of the path, nor a
/// CORS preflight answered in front of it).
pub(crate) fn never_cached<S>(mr: MethodRouter<S>, how: NoStore) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    mr.route_layer(map_response(move |r: Response| async move { how.mark(r) }))
}

/// Every response of `router`'s routes marked `how` (the browser pages: all of them, `405`s
/// included).
pub(crate) fn never_cached_router<S>(router: Router<S>, how: NoStore) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(map_response(move |r: Response| async move { how.mark(r) }))
}

/// The one layer that writes `Cache-Control: no-store` (and `Pragma: no-cache`): on every
/// response marked [`NoStore`], replacing any other `Cache-Control`.
pub async fn no_store(mut response: Response) -> Response {
    let Some(how) = response.extensions_mut().remove::<NoStore>() else {
        return response;
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if how == NoStore::WithPragma {
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    response
}

/// Middleware: handle the request with its client address as the requesting address of the
/// fetches it causes (`outbound::budget::scope`), so metadata-document fetch budgets are counted
/// per caller whichever endpoint resolves the document.
pub(crate) async fn requester_scope(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let ip = client_ip(&state, req.extensions(), req.headers());
    authz_core::outbound::budget::scope(ip, next.run(req)).await
}

/// `routes` (every route of the application, with its fallback) with the cross-cutting layers,
/// innermost first.
pub fn around(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes
        .layer(map_response(no_store))
        // The client address, for the fetch budgets of whatever the request makes this server
        // fetch (`outbound::budget`).
        .layer(from_fn_with_state(state.clone(), requester_scope))
        // A request id on every request, its span around all of it and one access line.
        .layer(from_fn_with_state(
            state.metrics.http.clone(),
            shared::observe::request_id,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
}

/// A form-`POST` endpoint that clients call (`/token`, `/par`, `/device_authorization`): rate
/// limited per client IP under `name` at `per_minute` (JSON 429s), the form body capped at
/// `protocol::form::MAX_BODY_BYTES`, CORS for `POST`, its answers never cached (`no_store`).
pub(crate) fn client_form_endpoint<H, T>(
    state: &AppState,
    path: &str,
    handler: H,
    name: &'static str,
    per_minute: u32,
    no_store: NoStore,
) -> Router<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let limit = crate::limits::Limit::new(state, name, per_minute, crate::limits::too_many_json);
    let routes = Router::new()
        .route(
            path,
            crate::limits::limited(never_cached(axum::routing::post(handler), no_store), &limit),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            authz_core::protocol::form::MAX_BODY_BYTES,
        ));
    cors(state, &[Method::POST]).apply(routes)
}

/// CORS for the cookie-less endpoints browser-based clients call with `fetch()` (origins from
/// `AUTHZ_CORS_ORIGINS`). The pages and the management API never get it.
pub fn cors(state: &AppState, methods: &[Method]) -> Cors {
    Cors::new(Origins::from_config(&state.config.cors_origins), methods)
        .allow_headers(&[
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            // MCP SDKs send it on discovery requests too.
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers(&[header::WWW_AUTHENTICATE, header::RETRY_AFTER])
}
