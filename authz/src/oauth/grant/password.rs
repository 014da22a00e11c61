//! Resource Owner Password Credentials grant (RFC 6749 §4.3). Legacy: RFC 9700 §2.4 says it
//! MUST NOT be used, so it is off for new clients and on only where a client is explicitly
//! allowed it (first-party command-line tools).
//!
//! 1. `username` and `password` present and bounded.
//! 2. Verify with argon2id off the runtime; unknown users cost the same (dummy hash); one
//!    generic error for unknown user, wrong password and disabled account (no enumeration).
//! 3. Scope = requested ⊆ (role scopes ∪ OIDC scopes) ∩ client scopes; `openid` refused (ID
//!    tokens come from the authorization-code flow).
//! 4. Audience from `resource` or the default.
//! 5. Access token; a refresh token with `offline_access` or by client policy.

use shared::scope::OFFLINE_ACCESS;

use super::{Issued, RequestContext, audit_issued, user_allowed_scopes};
use crate::error::{Error, Result};
use crate::oauth::form::Form;
use crate::oauth::issuer::{Subject, TokenResponse};
use crate::oauth::resource::select_audience;
use crate::state::AppState;
use crate::store::{AuditEvent, Client, GrantType, Outcome};

const MAX_USERNAME_BYTES: usize = 256;
const INVALID_CREDENTIALS: &str = "invalid username or password";

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    let username = form.require("username")?;
    let password = form.require("password")?;
    if username.len() > MAX_USERNAME_BYTES {
        return Err(Error::invalid_request("username is too long"));
    }
    if password.chars().count() > state.config.password_policy.max_length {
        return Err(Error::invalid_grant(INVALID_CREDENTIALS));
    }

    let user = state.store.get_user_by_username(username).await?;
    let ok = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await?;
    let now = state.now();
    let user = match user {
        Some(u) if ok && u.disabled_at.is_none() => u,
        other => {
            let reason = match &other {
                None => "unknown_user",
                Some(u) if u.disabled_at.is_some() => "disabled",
                Some(_) => "bad_password",
            };
            let mut ev = AuditEvent::new(now, "login.failed", Outcome::Failure)
                .actor(username.chars().take(64).collect::<String>())
                .client(&client.id)
                .details(serde_json::json!({ "grant_type": "password", "reason": reason }));
            if let Some(u) = &other {
                ev = ev.subject(&u.id);
            }
            ev.ip = ctx.ip.clone();
            state.audit(ev).await;
            return Err(Error::invalid_grant(INVALID_CREDENTIALS));
        }
    };

    let allowed = user_allowed_scopes(state, &user, client);
    let scope = state.scopes.resolve(
        form.get("scope"),
        &allowed,
        &[(
            "openid",
            "ID tokens are issued by the authorization_code flow only",
        )],
    )?;
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

    let access = state.issuer.access_token(
        Subject::User {
            user: &user,
            auth_time: now,
        },
        client,
        &aud,
        &scope,
        now,
    )?;
    let refresh = if can_refresh && (scope.contains(OFFLINE_ACCESS) || client.always_issue_refresh)
    {
        // The grant covers the chosen audience first, then the client's other resources, so a
        // refresh may ask for another of them (RFC 8707 §2.2).
        let mut resources = vec![aud.clone()];
        resources.extend(client.resources.iter().filter(|r| **r != aud).cloned());
        let rt = state.issuer.refresh_token(
            client,
            &user,
            &scope.to_string(),
            resources,
            now,
            None,
            now,
        );
        state.store.create_refresh_token(&rt.record).await?;
        Some(rt.token)
    } else {
        None
    };

    let mut ev = AuditEvent::new(now, "login.succeeded", Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .client(&client.id)
        .details(serde_json::json!({ "grant_type": "password" }));
    ev.ip = ctx.ip.clone();
    state.audit(ev).await;
    let issued = Issued {
        grant: GrantType::Password,
        client,
        subject: &user.id,
        aud: &aud,
        scope: &scope,
        refresh: refresh.is_some(),
    };
    audit_issued(state, ctx, issued).await;
    Ok(state.issuer.response(access, &scope, refresh))
}
