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

pub(crate) use context::Ctx;
pub use context::client_ip;
pub use credentials::ClientCredentials;
pub(crate) use dpop::BearerOrDpop;
pub use dpop::DpopProof;
pub(crate) use form::FormBody;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::error::{Error, WebError};

/// The request's one `Authorization` header (a singleton field, RFC 9110 §11.6.2). Two are
/// refused with `invalid_request` (RFC 6749 §3.1: no parameter twice; RFC 6750 §3.1), as two
/// `DPoP` headers are: otherwise a proxy reading the last one and this server the first would
/// each authenticate another party.
pub fn authorization(headers: &HeaderMap) -> Result<Option<HeaderValue>, WebError> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let first = all.next().cloned();
    if all.next().is_some() {
        return Err(Error::invalid_request("exactly one Authorization header is allowed").into());
    }
    Ok(first)
}

/// The request's `Content-Type` as text (`None` when absent or not text): what the core's
/// body checks read (`protocol::form`).
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}
