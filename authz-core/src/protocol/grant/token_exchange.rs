//! Token exchange (RFC 8693): a resource server (e.g. `mcp-resource`) trades a user's access
//! token that was issued *for it* for a short-lived token for the management API, so it never
//! passes the user's own token on (MCP authorization spec: no token passthrough).
//!
//! 1. The client is confidential, allowed this grant, and serves a resource (`serves_resource`).
//! 2. `subject_token` is a live access token (`protocol::live`: ours, unexpired, its client live,
//!    its user enabled with unchanged credentials, its session and grant not ended) whose `aud`
//!    is the client's own resource, of a user — never of an API key or a client acting for
//!    itself — and not itself exchanged. No `actor_token` (the client authenticates as itself).
//! 3. Target: `resource` or `audience`, one of the client's resources (`invalid_target`).
//! 4. Scope ⊆ the subject token's scope ∩ the user's current role scopes ∩ the client's scopes.
//! 5. The new token: `sub` = the user, `act.sub` = `client:<id>`, `client_id` = the exchanging
//!    client, lifetime ≤ 5 min and ≤ the subject token's.
//!
//! With `audience` = an upstream provider's id (the token vault), the answer is instead the
//! user's token of that provider (`federation::vault::release`: the provider's `vault_clients`,
//! the subject token's `upstream:<id>` scope).

use shared::claims::TOKEN_TYPE_ACCESS_TOKEN;

use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::federation::vault;
use crate::keys::issuer::TokenResponse;
use crate::policy::scope;
use crate::protocol::form::Form;
use crate::protocol::grant::{Issued, audit_issued};
use crate::protocol::live::{self, Audience, Dead};
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
            "token exchange requires a confidential client",
        ));
    }
    let Some(own) = client.serves_resource.as_deref() else {
        return Err(Error::unauthorized_client(
            "this client does not serve a resource, so it has no tokens to exchange",
        ));
    };
    let subject = form.require("subject_token")?;
    match form.require("subject_token_type")? {
        TOKEN_TYPE_ACCESS_TOKEN => {}
        _ => {
            return Err(Error::invalid_request(
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
    }
    if form.get("actor_token").is_some() {
        return Err(Error::invalid_request(
            "actor_token is not supported: the client authenticates as the actor",
        ));
    }
    if let Some(t) = form.get("requested_token_type")
        && t != TOKEN_TYPE_ACCESS_TOKEN
    {
        return Err(Error::invalid_request(
            "only access tokens can be requested",
        ));
    }
    let invalid = || Error::invalid_request("the subject_token is invalid, expired or revoked");
    let subject = match live::access_token(state, subject, Audience::Exactly(own)).await? {
        Ok(l) => l,
        // Only tokens issued for the exchanging resource server itself (RFC 8693 §2.1).
        Err(Dead::WrongAudience) => {
            return Err(Error::invalid_request(
                "the subject_token was not issued for this client's resource",
            ));
        }
        Err(_) => return Err(invalid()),
    };
    if subject.claims.act.is_some() {
        return Err(Error::invalid_request(
            "an exchanged token cannot be exchanged again",
        ));
    }
    if subject.client.owner_id.is_some() {
        // An API key's token never reaches the management API: no key mints keys.
        return Err(Error::invalid_request(
            "tokens of API keys cannot be exchanged",
        ));
    }
    let Some(user) = subject.user else {
        return Err(Error::invalid_request(
            "the subject_token does not speak for a user",
        ));
    };
    let claims = subject.claims;
    let mut targets = form.all("resource");
    targets.extend(form.all("audience"));
    // The token vault (issue 26): `audience` = an upstream provider's id releases the user's
    // token of that provider (`federation::vault`), never one of ours.
    if let [target] = targets.as_slice()
        && let Some(up) = state
            .config
            .upstream
            .iter()
            .find(|u| u.vault && u.id == *target)
    {
        let svc = state.federation();
        let released = vault::release(svc, up, client, &user, &subject.scope, ctx).await?;
        return Ok(TokenResponse {
            access_token: released.access_token,
            token_type: "Bearer",
            // The provider's lifetime; when it gave none, exchange again after 5 minutes.
            expires_in: released.expires_in.unwrap_or(300),
            scope: released.scope,
            refresh_token: None,
            id_token: None,
            issued_token_type: Some(TOKEN_TYPE_ACCESS_TOKEN),
        });
    }
    let management = state.config.management_audience();
    let aud = select_audience(&targets, &[], client, &management)?;

    let subject_scope = subject.scope;
    let roles = state
        .config
        .role_scopes(user.roles.iter().map(String::as_str));
    let allowed = subject_scope
        .intersection(&roles)
        .intersection(&client.scopes);
    let scope = scope::narrow(
        form.get("scope"),
        &allowed,
        &allowed,
        "scope beyond the subject token or the user's roles",
    )?;
    let now = ctx.now;
    let (token, ttl) =
        state
            .issuer
            .exchanged_token(&claims, &user, client, &aud, &scope, ctx.dpop_jkt, now)?;
    let issued = Issued {
        grant: GrantType::TokenExchange,
        client,
        subject: &user.id,
        aud: &aud,
        scope: &scope,
        refresh: false,
    };
    audit_issued(state, ctx, issued).await;
    let mut response = state.issuer.response(token, &scope, None, ctx.dpop_jkt);
    response.expires_in = ttl;
    response.issued_token_type = Some(TOKEN_TYPE_ACCESS_TOKEN);
    // RFC 8693 §2.2.1: token_type "N_A" is for non-access tokens; this is an access token
    // (Bearer, or DPoP when the request carried a proof).
    Ok(response)
}
