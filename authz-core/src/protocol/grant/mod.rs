//! The token endpoint's grants (RFC 6749 §4, §6): parse `grant_type`, authenticate the client,
//! check it may use the grant, then hand over to one module per grant.

mod authorization_code;
mod client_credentials;
mod device_code;
mod jwt_bearer;
mod password;
mod refresh_token;
mod token_exchange;

use crate::events::kinds;
use shared::ErrorCode;
use shared::ScopeSet;
use shared::scope::{OFFLINE_ACCESS, OIDC_SCOPES};

use crate::clients::authentication::{self, ClientCredentials};
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::keys::issuer::{NewRefreshToken, RefreshGrant, TokenResponse};
use crate::protocol::form::Form;
use crate::state::AppState;
use crate::store::{AuditEvent, Client, GrantType, Outcome, Registration, User};

/// Is `grant` turned on in this server's configuration? (Metadata lists only these; the
/// token endpoint refuses the others with `unsupported_grant_type`.)
pub fn enabled(state: &AppState, grant: GrantType) -> bool {
    match grant {
        // ID-JAG (enterprise-managed authorization): on with at least one trusted issuer.
        GrantType::JwtBearer => state.config.id_jag.enabled(),
        // RFC 8628 device authorization grant: `AUTHZ_DEVICE_FLOW` (default on).
        GrantType::DeviceCode => state.config.device.enabled,
        // `federation.only`: passwords sign nobody in, on any path (issue 26 review F3).
        GrantType::Password => state
            .config
            .federation
            .only
            .as_deref()
            .is_none_or(|o| o == crate::config::ldap::PROVIDER),
        _ => true,
    }
}

/// Handle one token request: `credentials` as the edge found them (the `Authorization`
/// header), completed here with the form's.
pub async fn exchange(
    state: &AppState,
    credentials: ClientCredentials,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    let grant: GrantType = form.require("grant_type")?.parse().map_err(|_| {
        Error::oauth(
            ErrorCode::UnsupportedGrantType,
            "grant_type is not supported by this server",
        )
    })?;
    if !enabled(state, grant) {
        return Err(Error::oauth(
            ErrorCode::UnsupportedGrantType,
            "grant_type is not enabled on this server",
        ));
    }
    let client = authentication::authenticate_audited(
        state.client_services(),
        &form.client_credentials(credentials),
        serde_json::json!({ "grant_type": grant.as_str() }),
        ctx,
    )
    .await?;
    // Per authenticated client, after authentication: an unauthenticated caller cannot spend
    // another client's budget. A public client proves nothing (anyone may send its id), so it
    // has no budget of its own to exhaust for all its users: the per-address limit covers it.
    if let Some(limit) = &state.token_per_client
        && !client.is_public()
        && let Err(retry_after) = limit.check(&client.id, ctx.now).await
    {
        state.metrics.rate_limited(limit.name());
        return Err(Error::TooMany { retry_after });
    }
    if !client.allows_grant(grant) {
        return Err(Error::unauthorized_client(format!(
            "this client may not use the {grant} grant"
        )));
    }
    // RFC 9449 §5.2: a client registered with `dpop_bound_access_tokens` must always prove
    // possession of a key (the proof itself was checked by the token endpoint).
    if client.dpop_bound_access_tokens && state.dpop.enabled && ctx.dpop_jkt.is_none() {
        return Err(Error::oauth(
            ErrorCode::InvalidDpopProof,
            "this client must send a DPoP proof with every token request",
        ));
    }
    let issued = match grant {
        GrantType::ClientCredentials => client_credentials::handle(state, &client, form, ctx).await,
        GrantType::Password => password::handle(state, &client, form, ctx).await,
        GrantType::RefreshToken => refresh_token::handle(state, &client, form, ctx).await,
        GrantType::AuthorizationCode => authorization_code::handle(state, &client, form, ctx).await,
        GrantType::TokenExchange => token_exchange::handle(state, &client, form, ctx).await,
        GrantType::DeviceCode => device_code::handle(state, &client, form, ctx).await,
        GrantType::JwtBearer => jwt_bearer::handle(state, &client, form, ctx).await,
    };
    if issued.is_ok() {
        state.metrics.token_issued(grant.as_str());
    }
    issued
}

/// The scopes a user may hold through a client: their roles' scopes plus the OIDC scopes,
/// capped by what the client may ever be granted.
fn user_allowed_scopes(state: &AppState, user: &User, client: &Client) -> ScopeSet {
    let roles = state
        .config
        .role_scopes(user.roles.iter().map(String::as_str));
    let oidc = ScopeSet::from_tokens(OIDC_SCOPES).unwrap_or_default();
    roles.union(&oidc).intersection(&client.scopes)
}

/// A user's grant through a client, as the code and password grants make it.
struct UserGrant<'a> {
    client: &'a Client,
    user: &'a User,
    auth_time: i64,
    sid: &'a str,
    /// The one resource the grant was made for.
    resource: &'a str,
    scope: &'a ScopeSet,
    /// The request's DPoP key (`ctx.dpop_jkt`): a public client's refresh token is bound to
    /// it (RFC 9449 §5).
    dpop_jkt: Option<shared::dpop::Jkt>,
}

/// The first refresh token of a user grant, or none: issued when the client may refresh and
/// asked for it (`offline_access`) or always gets one (RFC 6749 §1.5). It covers the grant's
/// resource and only that (RFC 8707 §2.2). The store refuses it when the sign-in session
/// ended in the meantime (logout between the checks and now): `invalid_grant`.
async fn first_refresh_token(
    state: &AppState,
    g: UserGrant<'_>,
    now: i64,
) -> Result<Option<NewRefreshToken>> {
    let wanted = g.scope.contains(OFFLINE_ACCESS) || g.client.always_issue_refresh;
    if !wanted || !g.client.allows_grant(GrantType::RefreshToken) {
        return Ok(None);
    }
    let scope = g.scope.to_string();
    let grant = RefreshGrant {
        client: g.client,
        user: g.user,
        scope: &scope,
        resources: vec![g.resource.to_owned()],
        auth_time: g.auth_time,
        sid: Some(g.sid),
        family: None,
        // RFC 9449 §5: refresh tokens of public clients are bound to the DPoP key; a
        // confidential client's are already bound to its authentication.
        dpop_jkt: g.dpop_jkt.filter(|_| g.client.is_public()),
    };
    let rt = state.issuer.refresh_token(grant, now);
    if !state.store.create_refresh_token(&rt.record).await? {
        return Err(Error::invalid_grant("the sign-in session has ended"));
    }
    Ok(Some(rt))
}

/// What was issued, for the audit log (never a token value).
struct Issued<'a> {
    grant: GrantType,
    client: &'a Client,
    subject: &'a str,
    aud: &'a str,
    scope: &'a ScopeSet,
    refresh: bool,
}

async fn audit_issued(state: &AppState, ctx: &RequestContext, i: Issued<'_>) {
    let ev = AuditEvent::new(ctx.now, kinds::TOKEN_ISSUED, Outcome::Success)
        .client(&i.client.id)
        .subject(i.subject)
        .details(serde_json::json!({
            "grant_type": i.grant.as_str(),
            "aud": i.aud,
            "scope": i.scope.to_string(),
            "refresh_token": i.refresh,
        }))
        .ctx(ctx);
    state.audit_async(ev).await;
    // A self-described client that gets tokens is in use (pruning reads this).
    // The (cached) record decides first, so a busy client costs no write per token.
    let stale = i.client.last_used_at.is_none_or(|t| t < ctx.now - 3600);
    if i.client.registration != Registration::Admin
        && stale
        && let Err(e) = state.store.touch_client(&i.client.id, ctx.now).await
    {
        tracing::warn!(error = %e, client = %i.client.id, "recording client use failed");
    }
}
