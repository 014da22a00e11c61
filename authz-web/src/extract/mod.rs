//! The typed inputs of the handlers: axum extractors that get what a request presented out of
//! its headers and body into the core's types, and nothing more. The rules (RFC 6749 §2.3.1
//! decoding, "exactly one" client authentication method, "exactly one DPoP proof", the error
//! messages) are the core's; a rejection here is a [`crate::error::WebError`].
//!
//! - [`Ctx`]: the core's `RequestContext` (client address, clock).
//! - [`ClientCredentials`]: the `Authorization` header a client authenticates with
//!   (`authz_core::clients::authentication::ClientCredentials`; the protocol adds the body's).
//! - [`DpopProof`]: the `DPoP` header values with the request's method and public URI
//!   (`authz_core::policy::dpop::DpopProof`).
//! - [`BearerOrDpop`]: a token presented to a resource endpoint of this server
//!   (`authz_core::protocol::live::Presentation`).
//! - [`FormBody`]: an OAuth form body (`authz_core::protocol::form::Form`, RFC 6749 §3.2).

mod context;
mod credentials;
mod dpop;
mod form;

pub use context::{Ctx, client_ip};
pub use credentials::ClientCredentials;
pub use dpop::{BearerOrDpop, DpopProof};
pub use form::FormBody;

use axum::http::{HeaderMap, header};

/// The request's `Content-Type` as text (`None` when absent or not text): what the core's
/// body checks read (`protocol::form`).
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}
