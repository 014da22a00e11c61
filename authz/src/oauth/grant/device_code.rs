//! The device authorization grant (RFC 8628 §3.4): polling for the token with the device code.

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
        "the device authorization grant is not enabled on this server",
    ))
}
