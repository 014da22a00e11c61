//! The token vault (issue 26): a provider's tokens for a user, kept for the resource servers
//! that call the provider's API on the user's behalf — never passed through, never our own
//! tokens sent upstream.
//!
//! - Kept at the callback of a provider with `vault = true`: access token, refresh token,
//!   expiry and scope, sealed under the master key (AES-256-GCM, associated data = user +
//!   provider + which token), one row per (user, provider).
//! - Released only by RFC 8693 token exchange (`protocol::grant::token_exchange`, `audience` =
//!   the provider's id), to a confidential client the provider lists in `vault_clients`,
//!   presenting a live token of the user issued for that client's own resource and carrying
//!   the scope `upstream:<id>` — the scope the consent page asked the user for. Audited
//!   (`upstream.token_released`) every time.
//! - An access token within a minute of its expiry is refreshed first, with the provider's
//!   rotation (a new refresh token replaces the old), written only over the tokens read: a
//!   remedy that discarded them while the provider answered wins (the new tokens are revoked
//!   there), and a concurrent release's refresh stands; a refused refresh discards them.
//! - Released only while the user's current roles still grant `upstream:<id>`.
//! - Discarded (and revoked at the provider when it offers RFC 7009 revocation) on unlink, an
//!   administrator's "end all sessions" and the provider's back-channel logout; deleted with
//!   the account and by a reset that removes linked accounts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::FederationServices;
use super::token_endpoint::{Tokens, client_call};
use crate::config::upstream::Upstream;
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::store::{AuditEvent, Client, Outcome, SealedUpstreamTokens, User};

/// Refresh an access token this close to its expiry before releasing it.
const REFRESH_MARGIN_SECS: i64 = 60;

fn aad(user_id: &str, provider: &str, which: &str) -> String {
    format!("upstream-token:{which}:{user_id}:{provider}")
}

fn seal(
    svc: FederationServices<'_>,
    user_id: &str,
    provider: &str,
    which: &str,
    v: &str,
) -> String {
    let sealed = svc
        .identity
        .master
        .seal(aad(user_id, provider, which).as_bytes(), v.as_bytes());
    URL_SAFE_NO_PAD.encode(sealed)
}

fn open(
    svc: FederationServices<'_>,
    user_id: &str,
    provider: &str,
    which: &str,
    v: &str,
) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(v).ok()?;
    let plain = svc
        .identity
        .master
        .open(aad(user_id, provider, which).as_bytes(), &bytes)
        .ok()?;
    String::from_utf8(plain).ok()
}

/// The row `tokens` of `up` make for `user_id`; a refresh token the answer leaves out keeps
/// `held_refresh` (RFC 6749 §6: the server may not rotate it).
fn sealed(
    svc: FederationServices<'_>,
    up: &Upstream,
    (user_id, subject): (&str, &str),
    tokens: &Tokens,
    held_refresh: Option<String>,
    now: i64,
) -> SealedUpstreamTokens {
    SealedUpstreamTokens {
        user_id: user_id.to_owned(),
        provider: up.id.clone(),
        subject: subject.to_owned(),
        access_enc: seal(svc, user_id, &up.id, "access", &tokens.access_token),
        refresh_enc: match &tokens.refresh_token {
            Some(r) => Some(seal(svc, user_id, &up.id, "refresh", r)),
            None => held_refresh,
        },
        expires_at: tokens.expires_in.map(|s| now + s),
        scope: tokens.scope.clone().unwrap_or_default(),
        updated_at: now,
    }
}

/// Keep `tokens` of `up` for `user_id` at a sign-in of its identity `subject` (a provider with
/// `vault = true`), while that identity is linked to the user (an unlink racing the sign-in
/// leaves nothing behind).
pub(crate) async fn keep(
    svc: FederationServices<'_>,
    up: &Upstream,
    (user_id, subject): (&str, &str),
    tokens: &Tokens,
    now: i64,
) -> Result<()> {
    let store = svc.identity.store;
    let held = store
        .upstream_tokens(user_id, &up.id)
        .await?
        .and_then(|t| t.refresh_enc);
    let row = sealed(svc, up, (user_id, subject), tokens, held, now);
    if !store.put_upstream_tokens(&row).await? {
        revoke_at(svc, up, tokens, now).await;
    }
    Ok(())
}

/// A provider's token as released.
#[derive(Debug)]
pub struct Released {
    pub access_token: shared::secret::AccessToken,
    pub expires_in: Option<i64>,
    pub scope: String,
}

/// Release `user`'s token of `up` to `client`, whose user token carried `scope` (the module's
/// rules); an OAuth error for the token endpoint otherwise.
pub async fn release(
    svc: FederationServices<'_>,
    up: &Upstream,
    client: &Client,
    user: &User,
    scope: &shared::ScopeSet,
    ctx: &RequestContext,
) -> Result<Released> {
    if !up.vault_clients.iter().any(|c| c == &client.id) {
        return Err(Error::invalid_target(format!(
            "this client may not obtain {} tokens",
            up.name
        )));
    }
    let needed = up.vault_scope();
    let roles = svc
        .identity
        .config
        .role_scopes(user.roles.iter().map(String::as_str));
    // The consent the token carries, and the user's roles as they are now (issue 26 review
    // 2, V2: a role taken away ends the release, not only the next refresh).
    if !scope.contains(&needed) || !roles.contains(&needed) {
        return Err(Error::invalid_scope(format!(
            "the user did not allow the use of their {} account: the subject_token lacks the \
             scope {needed}",
            up.name
        )));
    }
    let now = ctx.now;
    let store = svc.identity.store;
    let gone = || {
        Error::invalid_grant(format!(
            "no {} token is held for this user: they must sign in with {} again",
            up.name, up.name
        ))
    };
    let Some(mut row) = store.upstream_tokens(&user.id, &up.id).await? else {
        return Err(gone());
    };
    if row
        .expires_at
        .is_some_and(|e| e <= now + REFRESH_MARGIN_SECS)
    {
        row = match refresh(svc, up, &row, now).await? {
            Refreshed::Now(r) => r,
            Refreshed::Gone => return Err(gone()),
            Refreshed::Refused => {
                // Unless another release refreshed meanwhile (its tokens stand), they are
                // dead: forgotten, only if still the ones this release read.
                match store.upstream_tokens(&user.id, &up.id).await? {
                    Some(current) if current.access_enc != row.access_enc => current,
                    _ => {
                        store.take_upstream_tokens(&user.id, Some(&up.id)).await?;
                        return Err(gone());
                    }
                }
            }
        };
    }
    let Some(access) = open(svc, &user.id, &up.id, "access", &row.access_enc) else {
        return Err(gone());
    };
    let ev = AuditEvent::new(now, kinds::UPSTREAM_TOKEN_RELEASED, Outcome::Success)
        .actor(&client.id)
        .subject(&user.id)
        .client(&client.id)
        .details(serde_json::json!({ "provider": up.id, "scope": row.scope }))
        .ctx(ctx);
    svc.identity.audit(ev).await;
    Ok(Released {
        access_token: shared::secret::AccessToken::new(access),
        expires_in: row.expires_at.map(|e| (e - now).max(0)),
        scope: row.scope,
    })
}

/// The provider cannot refresh the token now: 503 `temporarily_unavailable`.
fn unreachable(up: &Upstream) -> Error {
    Error::oauth(
        shared::ErrorCode::TemporarilyUnavailable,
        format!(
            "{} cannot be reached to refresh the token; retry later",
            up.name
        ),
    )
}

/// Refresh the held tokens at the provider (RFC 6749 §6), written only over the tokens read
/// (`replace_upstream_tokens`).
async fn refresh(
    svc: FederationServices<'_>,
    up: &Upstream,
    row: &SealedUpstreamTokens,
    now: i64,
) -> Result<Refreshed> {
    let Some(refresh) = row
        .refresh_enc
        .as_deref()
        .and_then(|r| open(svc, &row.user_id, &up.id, "refresh", r))
    else {
        return Ok(Refreshed::Refused);
    };
    let Ok(endpoints) = svc.endpoints(up, now).await else {
        return Err(unreachable(up));
    };
    let fields = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("refresh_token".to_owned(), refresh),
    ];
    let call = client_call(up, &endpoints, &endpoints.token, fields, now).map_err(|e| {
        tracing::warn!(provider = %up.id, error = %e, "upstream client authentication");
        unreachable(up)
    })?;
    let answer = match svc
        .cimd
        .fetcher()
        .call_trusted(&endpoints.token, &call, now)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(provider = %up.id, error = %e, "upstream refresh failed");
            return Err(unreachable(up));
        }
    };
    let body: Value = serde_json::from_slice(&answer.fetched.body).unwrap_or(Value::Null);
    let Some(tokens) = (answer.status == 200)
        .then(|| Tokens::from_response(&body))
        .flatten()
    else {
        tracing::info!(provider = %up.id, status = answer.status, "upstream refresh refused");
        return Ok(Refreshed::Refused);
    };
    // Only over the tokens read: a remedy that discarded them meanwhile wins, and what the
    // provider just gave is revoked there (issue 26 review 2, V1).
    // Another release that refreshed first keeps its tokens (nothing revoked: revoking at
    // the provider may end the whole grant).
    let whose = (row.user_id.as_str(), row.subject.as_str());
    let new = sealed(svc, up, whose, &tokens, row.refresh_enc.clone(), now);
    let store = svc.identity.store;
    if store.replace_upstream_tokens(&new, &row.access_enc).await? {
        return Ok(Refreshed::Now(new));
    }
    match store.upstream_tokens(&row.user_id, &up.id).await? {
        Some(current) => Ok(Refreshed::Now(current)),
        None => {
            revoke_at(svc, up, &tokens, now).await;
            Ok(Refreshed::Gone)
        }
    }
}

/// What a refresh came to.
enum Refreshed {
    /// The tokens to release (this refresh's, or a concurrent one's).
    Now(SealedUpstreamTokens),
    /// The provider refused (or there is no refresh token).
    Refused,
    /// A remedy discarded the tokens while the provider answered.
    Gone,
}

/// Revoke freshly obtained `tokens` at `up` (best effort): a refresh token, else the access
/// token.
async fn revoke_at(svc: FederationServices<'_>, up: &Upstream, tokens: &Tokens, now: i64) {
    let (token, hint) = match &tokens.refresh_token {
        Some(r) => (r.clone(), "refresh_token"),
        None => (tokens.access_token.clone(), "access_token"),
    };
    revoke(svc, up, token, hint, now).await;
}

/// RFC 7009 revocation of `token` at `up`, when its metadata offers it; a failure is logged.
async fn revoke(svc: FederationServices<'_>, up: &Upstream, token: String, hint: &str, now: i64) {
    let Ok(endpoints) = svc.endpoints(up, now).await else {
        return;
    };
    let Some(url) = &endpoints.revocation else {
        return;
    };
    let fields = vec![
        ("token".to_owned(), token),
        ("token_type_hint".to_owned(), hint.to_owned()),
    ];
    let call = match client_call(up, &endpoints, url, fields, now) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(provider = %up.id, error = %e, "upstream revocation not sent");
            return;
        }
    };
    if let Err(e) = svc.cimd.fetcher().call_trusted(url, &call, now).await {
        tracing::warn!(provider = %up.id, error = %e, "upstream revocation failed");
    }
}

/// Discard a user's held tokens (of `provider`, or all), revoking each refresh token (else the
/// access token) at its provider when it offers revocation (RFC 7009; best effort: a failure
/// is logged): how many were held.
pub async fn discard(
    svc: FederationServices<'_>,
    user_id: &str,
    provider: Option<&str>,
    now: i64,
) -> Result<usize> {
    let rows = svc
        .identity
        .store
        .take_upstream_tokens(user_id, provider)
        .await?;
    for row in &rows {
        let Some(up) = svc.provider(&row.provider) else {
            continue;
        };
        let held = match row
            .refresh_enc
            .as_deref()
            .and_then(|r| open(svc, user_id, &up.id, "refresh", r))
        {
            Some(r) => Some((r, "refresh_token")),
            None => {
                open(svc, user_id, &up.id, "access", &row.access_enc).map(|a| (a, "access_token"))
            }
        };
        if let Some((token, hint)) = held {
            revoke(svc, up, token, hint, now).await;
        }
    }
    Ok(rows.len())
}
