//! Client Credentials grant (RFC 6749 §4.4): a confidential client acting on its own behalf.
//!
//! 1. The client is confidential and authenticated (done by the caller; public → refused here).
//! 2. Scope ⊆ the client's scopes; `openid` and `offline_access` make no sense without a user.
//! 3. Audience from `resource` (RFC 8707) or the default, within the client's resources.
//! 4. An access token whose `sub` is `client:<id>` (RFC 9068 §2.2, never a user's id).
//! 5. No refresh token (RFC 6749 §4.4.3).

use super::{Issued, RequestContext, audit_issued};
use crate::error::{Error, Result};
use crate::oauth::form::Form;
use crate::oauth::issuer::{Subject, TokenResponse};
use crate::oauth::resource::select_audience;
use crate::state::AppState;
use crate::store::{Client, GrantType};

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    if client.is_public() {
        return Err(Error::unauthorized_client(
            "client_credentials requires a confidential client (RFC 6749 §4.4)",
        ));
    }
    let scope = state.scopes.resolve(
        form.get("scope"),
        &client.scopes,
        &[
            (
                "openid",
                "ID tokens need a user; not available with client_credentials",
            ),
            (
                "offline_access",
                "client_credentials never issues refresh tokens (RFC 6749 §4.4.3)",
            ),
        ],
    )?;
    let aud = select_audience(
        &form.all("resource"),
        &[],
        client,
        &state.config.default_resource,
    )?;
    let now = state.now();
    let access = state
        .issuer
        .access_token(Subject::Client, client, &aud, &scope, now)?;
    let subject = format!("{}{}", shared::claims::CLIENT_SUBJECT_PREFIX, client.id);
    let issued = Issued {
        grant: GrantType::ClientCredentials,
        client,
        subject: &subject,
        aud: &aud,
        scope: &scope,
        refresh: false,
    };
    audit_issued(state, ctx, issued).await;
    Ok(state.issuer.response(access, &scope, None))
}
