//! The JWT bearer grant (RFC 7523 §2.1) for Identity Assertion JWT Authorization Grants (ID-JAG).

use super::super::form::Form;
use super::super::issuer::TokenResponse;
use crate::audit::RequestContext;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::Client;

pub async fn handle(
    _state: &AppState,
    _client: &Client,
    _form: &Form,
    _ctx: &RequestContext,
) -> Result<TokenResponse> {
    Err(Error::oauth(
        shared::ErrorCode::UnsupportedGrantType,
        "the jwt-bearer grant is not enabled on this server",
    ))
}
