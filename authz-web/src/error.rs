//! The web edge's one error type: a core `Error` mapped once to its response — RFC 6749 §5.2
//! JSON for protocol and administrative errors, RFC 6750 §3 challenges for bearer tokens,
//! 429/503 with `Retry-After` for limits, shedding and storage outages, never cached (marked
//! `layers::NoStore`: `Cache-Control: no-store`, and `Pragma: no-cache`, RFC 6749 §5.1/§5.2).
//! Internal causes are logged, never sent. Browser pages have their own type (`browser::PageError`).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use shared::ErrorResponse;

use crate::layers::NoStore;

pub use authz_core::error::Error;
use authz_core::policy::dpop::Refused;
use shared::dpop::DpopError;

/// What a handler returns: the core's results convert with `?`.
pub type Result<T, E = WebError> = std::result::Result<T, E>;

/// A core error on its way out as a response.
#[derive(Debug)]
pub struct WebError(pub Error);

impl From<Error> for WebError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let WebError(e) = self;
        if matches!(
            e,
            Error::Database(_) | Error::Migrate(_) | Error::Internal(_)
        ) {
            tracing::error!(error = %e, "request failed");
        }
        let body = ErrorResponse::new(e.code(), &e.description());
        let mut response = (e.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(retry_after) = e.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if let Some(v) = e.challenge().and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Error::Resource(r) = &e {
            for c in r.challenges(&e.description()) {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    headers.append(header::WWW_AUTHENTICATE, v);
                }
            }
            if let Some(n) = r
                .nonce
                .as_deref()
                .and_then(|n| HeaderValue::from_str(n).ok())
            {
                headers.insert(shared::dpop::NONCE_HEADER, n);
            }
            if let Some(s) = r.retry_after {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
        }
        // RFC 6749 §5.1/§5.2: token endpoint responses must not be cached.
        NoStore::WithPragma.mark(response)
    }
}

/// A refused DPoP proof at the token or PAR endpoint (RFC 9449 §5, §8): 400
/// `invalid_dpop_proof` / `use_dpop_nonce` with the next nonce, or 503 with `Retry-After`;
/// never cached (`Cache-Control: no-store` only).
pub(crate) fn dpop_refused(refused: Refused) -> Response {
    {
        let description = shared::error_description(&refused.error.to_string());
        let code = refused.error.error_code();
        let status = match refused.error {
            DpopError::Unavailable { .. } => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            _ => axum::http::StatusCode::BAD_REQUEST,
        };
        let body = shared::ErrorResponse::new(code, &description);
        let mut r = (status, axum::Json(body)).into_response();
        let h = r.headers_mut();
        if let Some(n) = refused.nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert(shared::dpop::NONCE_HEADER, n);
        }
        if let DpopError::Unavailable { retry_after } = refused.error {
            h.insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(retry_after),
            );
        }
        NoStore::CacheControl.mark(r)
    }
}
