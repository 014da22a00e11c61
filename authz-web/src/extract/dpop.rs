//! DPoP and token presentations (RFC 9449, RFC 6750 §2.1), as sent:
//! - [`DpopProof`]: the `DPoP` header values for the request's method and this server's public
//!   URL of the endpoint (the issuer and the path as routed, without the query: RFC 9449 §4.3
//!   step 9 — never a `Host` header a proxy may rewrite). `None` without a `DPoP` header.
//! - [`BearerOrDpop`]: the `Authorization` header and that proof, for the resource endpoints
//!   of this server (UserInfo, the management API).
//!
//! Checking either is the core's (`policy::dpop::Dpop::check`, `protocol::live::presented`);
//! extracting never fails.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;

use authz_core::policy::dpop;
use authz_core::protocol::live::Presentation;
use authz_core::state::AppState;

/// A request's DPoP proof, if it sent one.
#[derive(Debug)]
pub struct DpopProof(pub Option<dpop::DpopProof>);

impl DpopProof {
    fn from_parts(parts: &Parts, state: &AppState) -> Option<dpop::DpopProof> {
        let values: Vec<_> = parts
            .headers
            .get_all(shared::dpop::DPOP_HEADER)
            .iter()
            .cloned()
            .collect();
        if values.is_empty() {
            return None;
        }
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path(), |o| o.0.path());
        Some(dpop::DpopProof {
            values,
            method: parts.method.as_str().to_owned(),
            uri: format!("{}{path}", state.config.issuer),
        })
    }
}

impl FromRequestParts<AppState> for DpopProof {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::from_parts(parts, state)))
    }
}

/// A token presented to a resource endpoint of this server.
#[derive(Debug)]
pub(crate) struct BearerOrDpop(pub Presentation);

impl FromRequestParts<AppState> for BearerOrDpop {
    type Rejection = crate::error::WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(Presentation {
            authorization: super::authorization(&parts.headers)?,
            proof: DpopProof::from_parts(parts, state),
        }))
    }
}
