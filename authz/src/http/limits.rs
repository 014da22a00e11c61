//! Per-client-IP rate limits: 429 with `Retry-After`, answered by the renderer the caller hands
//! over (JSON for the OAuth endpoints, a page for the browser forms).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::ratelimit::IpRateLimiter;

use super::context::client_ip;
use crate::error::Error;
use crate::state::AppState;

/// How a refusal is answered, given the seconds until the window resets.
pub type Refusal = fn(u64) -> Response;

/// One limited group of endpoints.
#[derive(Debug, Clone)]
pub struct Limit {
    pub state: AppState,
    pub limiter: Arc<IpRateLimiter>,
    refuse: Refusal,
}

/// The JSON refusal of the OAuth endpoints (RFC 6749 §5.2 shape, 429, `Retry-After`).
pub fn too_many_json(retry_after: u64) -> Response {
    Error::TooMany { retry_after }.into_response()
}

impl Limit {
    /// `per_minute == 0`: no limit (the layer is not installed).
    pub fn new(state: &AppState, per_minute: u32, refuse: Refusal) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            state: state.clone(),
            limiter: Arc::new(IpRateLimiter::new(per_minute, 60)),
            refuse,
        })
    }
}

/// Middleware: count the request against its client IP; over the limit → the refusal.
pub async fn enforce(State(limit): State<Limit>, req: Request, next: Next) -> Response {
    let ip = client_ip(&limit.state, req.extensions(), req.headers());
    match limit.limiter.check_ip(ip, limit.state.now()) {
        Ok(()) => next.run(req).await,
        Err(retry) => (limit.refuse)(retry.unsigned_abs()),
    }
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
