//! The `RequestContext` extractor ([`Ctx`]) and the client-address rule: the TCP peer, or —
//! only when the peer is one of `AUTHZ_TRUSTED_PROXIES` — the right-most `X-Forwarded-For` hop
//! that is not itself a trusted proxy (`shared::ratelimit::client_ip`). Rate limits and audit
//! records use the same address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use authz_core::events::audit::RequestContext;
use authz_core::state::AppState;

/// The client's address for a request with these extensions and headers.
pub fn client_ip(state: &AppState, extensions: &Extensions, headers: &HeaderMap) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let xff = shared::ratelimit::forwarded_for(headers);
    shared::ratelimit::client_ip(peer, xff, &state.config.trusted_proxies)
}

/// The extractor of a request's `RequestContext` (the core's type, so wrapped here).
#[derive(Debug)]
pub(crate) struct Ctx(pub RequestContext);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Ctx(RequestContext {
            ip: Some(client_ip(state, &parts.extensions, &parts.headers)),
            now: state.now(),
            dpop_jkt: None,
        }))
    }
}
