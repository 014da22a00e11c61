//! Client Credentials grant (RFC 6749 §4.4): a confidential client acting on its own behalf,
//! or an API key acting for the user who owns it.
//!
//! 1. The client is confidential and authenticated (done by the caller; public → refused here;
//!    revoked or expired API keys fail authentication).
//! 2. Scope ⊆ the client's scopes — for an API key also ⊆ its owner's current role scopes,
//!    never `keys:write`, and the owner must be enabled; `openid` and `offline_access` make no
//!    sense here.
//! 3. Audience from `resource` (RFC 8707) or the default, within the client's resources.
//! 4. An access token whose `sub` is `client:<id>` (RFC 9068 §2.2, never a user's id), or for
//!    an API key the owner's id, with the key as `client_id`.
//! 5. No refresh token (RFC 6749 §4.4.3).

use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::keys::issuer::{Subject, TokenResponse};
use crate::protocol::form::Form;
use crate::protocol::grant::{Issued, audit_issued};
use crate::protocol::live;
use crate::protocol::resource::select_audience;
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
    let owner = match &client.owner_id {
        None => None,
        Some(id) => match live::minting_user(state, id).await? {
            Ok(u) => Some(u),
            Err(_) => {
                return Err(Error::invalid_client(
                    "the owner of this API key is disabled or no longer exists",
                ));
            }
        },
    };
    let allowed = match &owner {
        // An API key never carries more than its owner holds now, and never keys:write (keys
        // made before that rule are held to it here).
        Some(u) => {
            let mut s = client
                .scopes
                .intersection(&state.config.role_scopes(u.roles.iter().map(String::as_str)));
            s.remove(crate::clients::api_keys::KEYS_WRITE);
            s
        }
        None => client.scopes.clone(),
    };
    let scope = state.scopes.resolve(
        form.get("scope"),
        &allowed,
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
    let now = ctx.now;
    let (access, subject) = match &owner {
        Some(user) => (
            state.issuer.access_token(
                Subject::User {
                    user,
                    auth_time: now,
                    sid: None,
                    // An API key is no sign-in (RFC 8176 has no method for it).
                    amr: &[],
                },
                client,
                &aud,
                &scope,
                ctx.dpop_jkt,
                now,
            )?,
            user.id.clone(),
        ),
        None => (
            state
                .issuer
                .access_token(Subject::Client, client, &aud, &scope, ctx.dpop_jkt, now)?,
            format!("{}{}", shared::claims::CLIENT_SUBJECT_PREFIX, client.id),
        ),
    };
    let issued = Issued {
        grant: GrantType::ClientCredentials,
        client,
        subject: &subject,
        aud: &aud,
        scope: &scope,
        refresh: false,
    };
    audit_issued(state, ctx, issued).await;
    Ok(state.issuer.response(access, &scope, None, ctx.dpop_jkt))
}
