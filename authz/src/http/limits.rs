//! Per-client-IP rate limits (429 + `Retry-After`) and the `ClientIp` extractor, which trusts
//! `X-Forwarded-For` only from configured proxies (`shared::ratelimit::client_ip`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::ErrorCode;
use shared::ratelimit::{IpRateLimiter, client_ip};

use crate::error::Error;
use crate::state::AppState;

/// The client's address (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

fn resolve(state: &AppState, parts_ext: &axum::http::Extensions, headers: &HeaderMap) -> IpAddr {
    let peer = parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    client_ip(peer, xff, &state.config.trusted_proxies)
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(resolve(state, &parts.extensions, &parts.headers)))
    }
}

/// One limited group of endpoints.
#[derive(Debug, Clone)]
pub struct Limit {
    pub state: AppState,
    pub limiter: Arc<IpRateLimiter>,
    /// Answer with an HTML page (browser forms) rather than JSON.
    pub html: bool,
}

impl Limit {
    /// `per_minute == 0`: no limit (the layer is not installed).
    pub fn new(state: &AppState, per_minute: u32, html: bool) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            state: state.clone(),
            limiter: Arc::new(IpRateLimiter::new(per_minute, 60)),
            html,
        })
    }
}

/// Middleware: count the request against its client IP; over the limit → 429.
pub async fn enforce(State(limit): State<Limit>, req: Request, next: Next) -> Response {
    let ip = resolve(&limit.state, req.extensions(), req.headers());
    match limit.limiter.check_ip(ip, limit.state.now()) {
        Ok(()) => next.run(req).await,
        Err(retry) => too_many(retry, limit.html),
    }
}

fn too_many(retry_after: i64, html: bool) -> Response {
    let mut r = if html {
        super::browser::too_many_page(retry_after)
    } else {
        Error::oauth(
            ErrorCode::TemporarilyUnavailable,
            format!("too many requests from this address; retry in {retry_after} s"),
        )
        .into_response()
    };
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Put `limit` (if any) in front of a method router.
pub fn limited(
    mr: axum::routing::MethodRouter<AppState>,
    limit: &Option<Limit>,
) -> axum::routing::MethodRouter<AppState> {
    match limit {
        Some(l) => mr.layer(axum::middleware::from_fn_with_state(l.clone(), enforce)),
        None => mr,
    }
}
