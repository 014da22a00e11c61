//! [`ClientCredentials`]: the `Authorization` header a client authenticates with at the
//! token-style endpoints (`client_secret_basic`, RFC 6749 §2.3.1), as sent. Decoding it and the
//! rules of §2.3 are the core's (`clients::authentication::presented`), applied where the
//! protocol asks for them, so extracting fails only on two `Authorization` headers
//! ([`super::authorization`]); the protocol adds the body's credentials
//! (`Form::client_credentials`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use authz_core::clients::authentication;
use authz_core::state::AppState;

/// The client credentials in a request's headers.
#[derive(Debug)]
pub struct ClientCredentials(pub authentication::ClientCredentials);

impl FromRequestParts<AppState> for ClientCredentials {
    type Rejection = crate::error::WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(authentication::ClientCredentials {
            authorization: super::authorization(&parts.headers)?,
            ..Default::default()
        }))
    }
}
