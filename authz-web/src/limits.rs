//! Per-client-IP rate limits: 429 with `Retry-After`, answered by the renderer the caller hands
//! over (JSON for the OAuth endpoints, a page for the browser forms). The counters live where
//! `AppState::counters` says (this process, or Redis shared by every replica).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::limits::Limiter;

use super::context::client_ip;
use crate::error::Error;
use authz_core::state::AppState;

/// How a refusal is answered, given the seconds until the window resets.
pub type Refusal = fn(u64) -> Response;

/// One limited group of endpoints.
#[derive(Debug, Clone)]
pub struct Limit {
    pub state: AppState,
    pub limiter: Arc<Limiter>,
    refuse: Refusal,
}

/// The JSON refusal of the OAuth endpoints (RFC 6749 §5.2 shape, 429, `Retry-After`).
pub(crate) fn too_many_json(retry_after: u64) -> Response {
    crate::error::WebError(Error::TooMany { retry_after }).into_response()
}

impl Limit {
    /// The limit `name` of `per_minute` requests per client IP; `0`: no limit (the layer is
    /// not installed).
    pub fn new(
        state: &AppState,
        name: &'static str,
        per_minute: u32,
        refuse: Refusal,
    ) -> Option<Self> {
        state.counters.limiter(name, per_minute).map(|l| Self {
            state: state.clone(),
            limiter: Arc::new(l),
            refuse,
        })
    }
}

/// Middleware: count the request against its client IP; over the limit → the refusal.
pub async fn enforce(State(limit): State<Limit>, req: Request, next: Next) -> Response {
    let ip = client_ip(&limit.state, req.extensions(), req.headers());
    match limit.limiter.check_ip(ip, limit.state.now()).await {
        Ok(()) => next.run(req).await,
        Err(retry) => {
            limit.state.metrics.rate_limited(limit.limiter.name());
            (limit.refuse)(retry)
        }
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
