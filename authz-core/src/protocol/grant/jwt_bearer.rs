//! The JWT bearer grant (RFC 7523 §2.1) for Identity Assertion JWT Authorization Grants
//! (draft-ietf-oauth-identity-assertion-authz-grant, "ID-JAG"; the MCP enterprise-managed
//! authorization extension): an enterprise IdP this server trusts vouches that one of its
//! users lets one client reach one of our resources.
//!
//! 1. The client is confidential (the draft's Security Considerations, "Client
//!    Authentication": public clients use the authorization code flow) and allowed the grant
//!    (checked by the caller) — `unauthorized_client`.
//! 2. The assertion passes `protocol::id_jag::verify` (typ, alg, trusted `iss`, signature, `aud`,
//!    `exp`/`iat`, `jti`, `client_id`, `sub`) — `invalid_grant`, one description per check.
//! 3. Its `client_id` is the authenticated client (draft, "Processing Rules": client
//!    continuity), and that client is in the issuer's `allowed_clients` — `invalid_grant`.
//! 4. Its subject maps to a local, enabled user under `protocol::id_jag_subject` (RFC 7523 §3
//!    item 2: the AS decides how `sub` identifies a resource owner): an operator's link of
//!    (`iss`, `sub`) by default, a verified email of an allowed domain, or a username; never a
//!    privileged user unless the issuer is allowed to speak for them — `invalid_grant`.
//! 5. Resource (RFC 8707 §2; draft: process `resource` per RFC 8707): the requested `resource`
//!    must be one the assertion names (when it names any); without one, the assertion's single
//!    resource, else the default; always one of the client's resources — `invalid_target`. The
//!    token's `aud` is that one resource (MCP extension: audience-restricted to the MCP server).
//! 6. Scope (draft: RFC 6749 §3.3, "MAY be a subset"): requested ∩ asserted `scope` ∩ the
//!    user's role scopes ∩ the client's; no `openid` (ID tokens come from the code flow), no
//!    `offline_access` — `invalid_scope`.
//! 7. The `jti` is spent, atomically, until `exp` (RFC 7523 §3 item 7), in the store of spent
//!    client assertions under its own key namespace (profile, issuer, jti) — a replay is
//!    `invalid_grant`.
//! 8. An access token for the user (no `sid`: no sign-in session here; `amr` as asserted);
//!    no refresh token (draft "Refresh Token": the AS SHOULD NOT return one; the client
//!    presents a fresh ID-JAG instead). Audited `token.issued` and `id_jag.accepted`, or
//!    `id_jag.refused` with the reason — never the assertion.

use crate::events::kinds;
use shared::ScopeSet;

use crate::crypto::sha256_hex;
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::keys::issuer::{Subject, TokenResponse};
use crate::protocol::form::Form;
use crate::protocol::grant::{Issued, audit_issued, user_allowed_scopes};
use crate::protocol::id_jag::{self, GRANT_PROFILE, IdJag, Refusal};
use crate::protocol::id_jag_subject;
use crate::protocol::resource::{same_resource, select_audience};
use crate::state::AppState;
use crate::store::{AuditEvent, Client, GrantType, Outcome};

pub async fn handle(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
) -> Result<TokenResponse> {
    if client.is_public() {
        return Err(Error::unauthorized_client(
            "the jwt-bearer grant (ID-JAG) requires a confidential client; public clients use \
             the authorization code flow",
        ));
    }
    let assertion = form.require("assertion")?;
    let now = ctx.now;
    let jag = match id_jag::verify(state, assertion, now).await {
        Ok(j) => j,
        Err(r) => return Err(refused(state, ctx, client, None, r).await),
    };
    match accept(state, client, form, ctx, &jag).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(Denied::Grant(r))) => Err(refused(state, ctx, client, Some(&jag), r).await),
        Ok(Err(Denied::Other(reason, e))) => {
            refused(state, ctx, client, Some(&jag), Refusal::new(reason, "")).await;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// A refusal after verification: `invalid_grant`, or another error (target, scope).
enum Denied {
    Grant(Refusal),
    Other(&'static str, Error),
}

impl From<Refusal> for Denied {
    fn from(r: Refusal) -> Self {
        Self::Grant(r)
    }
}

async fn accept(
    state: &AppState,
    client: &Client,
    form: &Form,
    ctx: &RequestContext,
    jag: &IdJag,
) -> Result<std::result::Result<TokenResponse, Denied>> {
    let now = ctx.now;
    // 3. Bound to this client, which the IdP may speak for.
    if jag.client_id != client.id {
        return Ok(Err(Refusal::new(
            "client_mismatch",
            "the assertion's client_id is not the authenticated client",
        )
        .into()));
    }
    if !jag.issuer.allowed_clients.contains(&client.id) {
        return Ok(Err(Refusal::new(
            "client_not_allowed",
            "this identity provider may not issue grants for this client",
        )
        .into()));
    }
    // 4. The local user.
    let user = match id_jag_subject::local_user(state, jag).await? {
        Ok(u) => u,
        Err(r) => return Ok(Err(r.into())),
    };
    let auth_time = jag
        .auth_time
        .filter(|t| *t > 0 && *t <= jag.iat)
        .unwrap_or(jag.iat)
        .min(now);
    if !user.credentials_current_at(auth_time) {
        return Ok(Err(Refusal::new(
            "credentials_changed",
            "the user's credentials were changed here after the identity provider's sign-in",
        )
        .into()));
    }
    // 5. One of our resources, within what the assertion names.
    let aud = match audience(state, client, form, jag) {
        Ok(a) => a,
        Err(e) => return Ok(Err(Denied::Other("unknown_resource", e))),
    };
    // 6. Scope.
    let mut allowed = user_allowed_scopes(state, &user, client);
    if let Some(asserted) = &jag.scope {
        let Ok(asserted) = ScopeSet::parse(asserted) else {
            return Ok(Err(Refusal::new(
                "malformed",
                "the assertion's scope is not a valid scope string (RFC 6749 §3.3)",
            )
            .into()));
        };
        allowed = allowed.intersection(&asserted);
    }
    let scope = match state.scopes.resolve(
        form.get("scope"),
        &allowed,
        &[
            (
                "openid",
                "ID tokens are issued by the authorization_code flow only",
            ),
            (
                "offline_access",
                "the jwt-bearer grant issues no refresh tokens: present a new assertion instead",
            ),
        ],
    ) {
        Ok(s) => s,
        Err(e) => return Ok(Err(Denied::Other("scope", e))),
    };
    // 7. Single use: the last check, so a refused request does not spend a valid assertion.
    let key = sha256_hex(&format!(
        "{GRANT_PROFILE}\n{}\n{}",
        jag.issuer.issuer, jag.jti
    ));
    if !state
        .store
        .use_client_assertion(&client.id, &key, jag.exp + id_jag::SKEW_SECS)
        .await?
    {
        tracing::warn!(client = %client.id, issuer = %jag.issuer.issuer, "ID-JAG replayed");
        return Ok(Err(Refusal::new(
            "replayed",
            "this assertion was already used (jti replayed)",
        )
        .into()));
    }
    // 8. The access token, for that resource only.
    let access = state.issuer.access_token(
        Subject::User {
            user: &user,
            auth_time,
            sid: None,
            amr: &jag.amr,
        },
        client,
        &aud,
        &scope,
        ctx.dpop_jkt,
        now,
    )?;
    let ev = AuditEvent::new(now, kinds::ID_JAG_ACCEPTED, Outcome::Success)
        .client(&client.id)
        .subject(&user.id)
        .details(serde_json::json!({
            "issuer": jag.issuer.issuer,
            "aud": aud,
            "scope": scope.to_string(),
        }))
        .ctx(ctx);
    state.audit_async(ev).await;
    let issued = Issued {
        grant: GrantType::JwtBearer,
        client,
        subject: &user.id,
        aud: &aud,
        scope: &scope,
        refresh: false,
    };
    audit_issued(state, ctx, issued).await;
    Ok(Ok(state.issuer.response(
        access,
        &scope,
        None,
        ctx.dpop_jkt,
    )))
}

/// The token's audience (step 5).
fn audience(state: &AppState, client: &Client, form: &Form, jag: &IdJag) -> Result<String> {
    let requested = form.all("resource");
    let asserted = &jag.resources;
    if let [one] = requested.as_slice()
        && !asserted.is_empty()
        && !asserted.iter().any(|r| same_resource(r, one))
    {
        return Err(Error::invalid_target(format!(
            "the assertion does not grant access to {one}"
        )));
    }
    let chosen: Vec<&str> = match (requested.as_slice(), asserted.as_slice()) {
        ([], [one]) => vec![one.as_str()],
        ([], [_, _, ..]) => {
            return Err(Error::invalid_target(
                "the assertion names several resources: send resource to choose one",
            ));
        }
        _ => requested,
    };
    select_audience(&chosen, asserted, client, &state.config.default_resource)
}

/// Audit a refusal (`id_jag.refused`: the check that failed, the issuer when trusted; never
/// the assertion) and turn it into `invalid_grant`.
async fn refused(
    state: &AppState,
    ctx: &RequestContext,
    client: &Client,
    jag: Option<&IdJag>,
    r: Refusal,
) -> Error {
    tracing::info!(client = %client.id, reason = r.reason, "ID-JAG refused");
    let ev = AuditEvent::new(ctx.now, kinds::ID_JAG_REFUSED, Outcome::Failure)
        .client(&client.id)
        .details(serde_json::json!({
            "reason": r.reason,
            "issuer": jag.map(|j| j.issuer.issuer.as_str()),
        }))
        .ctx(ctx);
    state.audit(ev).await;
    Error::invalid_grant(r.description)
}
