//! Authorization in front of the MCP endpoint (MCP authorization spec 2025-11-25, RFC 6750,
//! RFC 9449, RFC 9728), as axum middleware. The layers, outermost first (`crate::router`):
//!
//! 1. CORS, then the `Origin` check ([`check_origin`], with the policy of `crate::origin`);
//! 2. the per-client-IP limit ([`rate_limit`]), before any token work, so floods of bad tokens
//!    are limited too;
//! 3. [`require_token`]: the token layer ([`token`]: scheme, verification, DPoP binding,
//!    revocation, per-caller limit → [`Caller`]), then the JSON-RPC gate ([`gate`]: body cap,
//!    peek, `Mcp-Method`/`Mcp-Name`, the tool's or resource's scope), then rmcp with the
//!    `Caller` in the request's extensions.
//!
//! Every refusal is rendered in one place, [`refusal`] (RFC 6750 §3 challenges with the RFC 9728
//! `resource_metadata` URL, DPoP challenges and nonces, `Retry-After`); `McpState::refuse`
//! builds them and counts them.

pub(crate) mod caller;
pub(crate) mod gate;
pub(crate) mod refusal;
pub(crate) mod token;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::dpop::Scheme;

pub(crate) use self::caller::Caller;
pub use self::refusal::MAX_BODY;
pub(crate) use self::refusal::{AuthError, Refusal};
use crate::state::McpState;

/// The middleware: the token layer, then the JSON-RPC gate, then the MCP service.
pub(crate) async fn require_token(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Response {
    // The head only: a `Request` is not `Sync`, so a reference to it cannot be held across
    // the token layer's awaits.
    let (parts, body) = req.into_parts();
    let (scheme, caller) = match token::authenticate(&state, &parts).await {
        Ok(authenticated) => authenticated,
        Err(refusal) => return refusal.into_response(),
    };
    let mut req = match gate::admit(&state, &caller, parts, body).await {
        Ok(req) => req,
        Err(refusal) => return refusal,
    };
    req.extensions_mut().insert(caller);
    let mut response = next.run(req).await;
    // RFC 9449 §9: the nonce for the next proof, on every answer to a DPoP request.
    if scheme == Scheme::Dpop
        && let Some(n) = state
            .dpop
            .current_nonce(state.now())
            .and_then(|n| HeaderValue::from_str(&n).ok())
    {
        response.headers_mut().insert(shared::dpop::NONCE_HEADER, n);
    }
    response
}

/// Per-client-IP request limit on the MCP endpoint, before any token work (so floods of bad
/// tokens are limited too): 429 with `Retry-After`. The client's address is the peer's, or the
/// `X-Forwarded-For` entry a trusted proxy (`MCP_TRUSTED_PROXIES`) added.
pub(crate) async fn rate_limit(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Result<Response, AuthError> {
    if let Some(limiter) = &state.limiter {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let xff = shared::ratelimit::forwarded_for(req.headers());
        let ip = shared::ratelimit::client_ip(peer, xff, &state.config.trusted_proxies);
        if let Err(retry_after) = limiter.check_ip(ip, state.now()).await {
            state.metrics.rate_limited(limiter.name());
            return Err(state.refuse(Refusal::TooMany { retry_after }, None));
        }
    }
    Ok(next.run(req).await)
}

/// The `Origin` check (outermost on the MCP endpoint, inside CORS; `crate::origin`): a
/// request with an `Origin` the policy does not allow is a 403 JSON-RPC error.
pub(crate) async fn check_origin(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| state.origins.allows(o));
    if allowed {
        return next.run(req).await;
    }
    tracing::warn!(origin = ?origin, "refused a request from a disallowed Origin");
    refusal::json_rpc_error(
        StatusCode::FORBIDDEN,
        serde_json::Value::Null,
        "Forbidden: this Origin may not call the MCP server",
    )
}
