//! Resource Owner Password Credentials grant (RFC 6749 §4.3). Legacy: RFC 9700 §2.4 says it
//! MUST NOT be used, so it is off for new clients and on only where a client is explicitly
//! allowed it (first-party command-line tools).
//!
//! 1. `username` and `password` present and bounded.
//! 2. Verify through `identity::signin` (argon2id off the runtime, dummy hash for unknown users,
//!    one generic error, per-username lockout).
//! 3. A user with two-factor sign-in on is refused (a password alone is not their sign-in):
//!    `invalid_grant` saying so, only after the right password (so it reveals nothing to
//!    someone without it). So is a user whose role is in `[mfa] required_roles`, enrolled or
//!    not (a password alone is never enough for them). API keys (`client_credentials`) are not affected.
//! 4. Scope = requested ⊆ (role scopes ∪ OIDC scopes) ∩ client scopes; a vault scope
//!    (`upstream:<id>`) refused (it is consent, given on the consent page); `openid` refused (ID
//!    tokens come from the authorization-code flow).
//! 5. Audience from `resource` or the default.
//! 6. Access token; a refresh token with `offline_access` or by client policy.

use shared::scope::OFFLINE_ACCESS;

use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::identity::signin::{self, LoginFailure};
use crate::keys::issuer::{Subject, TokenResponse};
use crate::protocol::form::Form;
use crate::protocol::grant::{
    Issued, UserGrant, audit_issued, first_refresh_token, user_allowed_scopes,
};
use crate::protocol::resource::select_audience;
use crate::state::AppState;
use crate::store::{Client, GrantType};
use shared::secret::Password;

const INVALID_CREDENTIALS: &str = "invalid username or password";

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    let username = form.require("username")?;
    let password = form.require("password")?;
    let password = Password::new(password);
    let user = match signin::authenticate(
        state.identity(),
        username,
        &password,
        &client.id,
        "password_grant",
        ctx,
    )
    .await?
    {
        Ok(user) => user,
        Err(LoginFailure::Invalid) => return Err(Error::invalid_grant(INVALID_CREDENTIALS)),
        Err(LoginFailure::Refused { message }) => return Err(Error::invalid_grant(message)),
        Err(LoginFailure::Locked { retry_after }) => {
            return Err(Error::invalid_grant(format!(
                "too many failed sign-in attempts; try again in {retry_after} s"
            )));
        }
    };
    // A role that must sign in with a second factor gets no password-only token either
    // (the one `[mfa] required_roles` rule, as at the console and the consent page).
    if state.config.mfa.required_for(&user.roles) {
        return Err(Error::invalid_grant(
            "this account's role must sign in with a second factor, so the password grant \
             cannot be used (sign in through the browser, or use an API key)",
        ));
    }
    if crate::identity::two_factor::is_enabled(&*state.store, &user).await? {
        return Err(Error::invalid_grant(
            "this account signs in interactively: two-factor sign-in is on, so the password \
             grant cannot be used (sign in through the browser, or use an API key)",
        ));
    }
    let now = ctx.now;

    // A provider's vault scope (`upstream:<id>`) is the user's consent to hand their provider
    // account to tools: given on a consent page, never by a password alone.
    let vault: Vec<String> = state
        .config
        .upstream
        .iter()
        .filter(|u| u.vault)
        .map(|u| u.vault_scope())
        .collect();
    let mut refused = vec![(
        "openid",
        "ID tokens are issued by the authorization_code flow only",
    )];
    refused.extend(vault.iter().map(|s| {
        (
            s.as_str(),
            "the use of an upstream account is allowed on the consent page only",
        )
    }));
    let mut allowed = user_allowed_scopes(state, &user, client);
    for s in &vault {
        allowed.remove(s);
    }
    let scope = state
        .scopes
        .resolve(form.get("scope"), &allowed, &refused)?;
    let can_refresh = client.allows_grant(GrantType::RefreshToken);
    if scope.contains(OFFLINE_ACCESS) && !can_refresh {
        return Err(Error::invalid_scope(
            "offline_access: this client may not use refresh tokens",
        ));
    }
    let aud = select_audience(
        &form.all("resource"),
        &[],
        client,
        &state.config.default_resource,
    )?;

    // A grant session: logout and revocation end it (and the tokens carry its sid).
    // Refused (audited) when the password changed or the account was disabled since it was
    // checked: no grant outlives the remedy.
    let session =
        crate::identity::session::start_grant(state.identity(), &user, &client.id, &["pwd"], ctx)
            .await?
            .ok_or_else(|| {
                Error::invalid_grant(
                    "the account's password changed, or it was disabled, during this request",
                )
            })?;
    let access = state.issuer.access_token(
        Subject::User {
            user: &user,
            auth_time: now,
            sid: Some(&session.sid),
            amr: &session.amr,
        },
        client,
        &aud,
        &scope,
        ctx.dpop_jkt,
        now,
    )?;
    // The grant covers the audience it was made for, and only that (RFC 8707 §2.2): a token
    // for another resource needs its own grant.
    let grant = UserGrant {
        client,
        user: &user,
        auth_time: now,
        sid: &session.sid,
        resource: &aud,
        scope: &scope,
        dpop_jkt: ctx.dpop_jkt,
    };
    let refresh = first_refresh_token(state, grant, now)
        .await?
        .map(|rt| rt.token);

    signin::audit_success(state.identity(), &user, &client.id, "password_grant", ctx).await;
    let issued = Issued {
        grant: GrantType::Password,
        client,
        subject: &user.id,
        aud: &aud,
        scope: &scope,
        refresh: refresh.is_some(),
    };
    audit_issued(state, ctx, issued).await;
    Ok(state.issuer.response(access, &scope, refresh, ctx.dpop_jkt))
}
