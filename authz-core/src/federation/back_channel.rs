//! OpenID Connect Back-Channel Logout 1.0, as the relying party: a provider's logout token
//! (POSTed to `/login/upstream/<id>/backchannel-logout`) ends the local sessions it names, and
//! `session::end` sends the Shared Signals `session-revoked` event to the MCP servers, so an
//! enterprise's off-boarding reaches the tools.
//!
//! The token's checklist (§2.6):
//! 1. a signed JWT (the provider's metadata algorithms, asymmetric; `typ`, when present,
//!    `logout+jwt`: §2.4 explicit typing), verified with the provider's keys;
//! 2. `iss` the provider's, `aud` holds our client id, `iat` recent (within the round-trip
//!    lifetime, 60 s skew), `exp` (when present) not passed;
//! 3. `events` holds `http://schemas.openid.net/event/backchannel-logout` (an object);
//! 4. `sub` or `sid` present; no `nonce` (§2.6 step 5: an ID token is not a logout token);
//! 5. `jti` present and not seen before (spent until `iat` + the window).
//!
//! Whom it ends: the user linked to (`provider`, `sub`), or whose last sign-in through the
//! provider was in its session `sid` — every session of theirs signed in through an upstream
//! provider (`amr` `fed`), their grants, and their sign-ins in progress.

use serde_json::Value;

use super::id_token::{self, Expected, SKEW_SECS};
use super::{FederationServices, Refusal};
use crate::config::upstream::Upstream;
use crate::crypto::sha256_hex;
use crate::error::Result;
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::identity::session;
use crate::keys::jws;
use crate::outbound::cimd::Source;
use crate::store::{AuditEvent, Outcome};

/// The event a logout token carries (§2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const MAX_TOKEN_BYTES: usize = 16 * 1024;

fn bad(reason: &'static str) -> Refusal {
    Refusal::new(reason, format!("the logout token was refused ({reason})"))
}

/// Act on a logout token of `up`: how many sessions ended; a refusal (400 at the endpoint).
pub async fn logout(
    svc: FederationServices<'_>,
    up: &Upstream,
    token: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<usize, Refusal>> {
    let outcome = checked(svc, up, token, ctx).await?;
    let ev = match &outcome {
        Ok(ended) => AuditEvent::new(ctx.now, kinds::SESSION_ENDED, Outcome::Success)
            .actor(format!("upstream:{}", up.id))
            .details(serde_json::json!({
                "via": "backchannel_logout", "provider": up.id, "sessions_ended": ended,
            })),
        Err(r) => AuditEvent::new(ctx.now, kinds::UPSTREAM_REFUSED, Outcome::Failure).details(
            serde_json::json!({ "provider": up.id, "reason": r.reason, "via": "backchannel_logout" }),
        ),
    };
    svc.identity.audit(ev.ctx(ctx)).await;
    Ok(outcome)
}

async fn checked(
    svc: FederationServices<'_>,
    up: &Upstream,
    token: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<usize, Refusal>> {
    let now = ctx.now;
    let config = svc.identity.config;
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Ok(Err(bad("malformed")));
    }
    let Ok(endpoints) = svc.endpoints(up, now).await else {
        return Ok(Err(bad("unavailable")));
    };
    let Some(uri) = endpoints.jwks_uri.as_deref() else {
        return Ok(Err(bad("no_keys")));
    };
    let window = config.federation.login_ttl_secs;
    let e = Expected {
        up,
        endpoints: &endpoints,
        nonce_hash: "",
        now,
        max_age_secs: window,
    };
    // 1. Signed by the provider.
    let header = match id_token::header(token, &e) {
        Ok(h) => h,
        Err(_) => return Ok(Err(bad("malformed"))),
    };
    let typ_ok = header.typ.as_deref().is_none_or(|t| {
        let t = t.to_ascii_lowercase();
        t == "logout+jwt" || t == "application/logout+jwt"
    });
    if !typ_ok {
        return Ok(Err(bad("typ")));
    }
    let Ok(keys) = svc
        .cimd
        .key_set(uri, header.kid.as_deref(), Source::Trusted, now)
        .await
    else {
        return Ok(Err(bad("keys")));
    };
    let Ok(Value::Object(claims)) = jws::verify_with_set(token, &header, &keys) else {
        return Ok(Err(bad("signature")));
    };
    // 2. From the provider, for us, recent.
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
    };
    let iss = text("iss").unwrap_or_default();
    let issuer_ok = match &endpoints.issuer {
        Some(expected) => iss == expected,
        None => up.allowed_issuers.iter().any(|a| a == iss),
    };
    if !issuer_ok {
        return Ok(Err(bad("iss")));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == &up.client_id,
        Some(Value::Array(l)) => l.iter().any(|a| a.as_str() == Some(&up.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Ok(Err(bad("aud")));
    }
    let int = |k: &str| claims.get(k).and_then(Value::as_i64);
    let Some(iat) = int("iat") else {
        return Ok(Err(bad("malformed")));
    };
    if iat > now + SKEW_SECS || iat < now - window - SKEW_SECS {
        return Ok(Err(bad("iat")));
    }
    if int("exp").is_some_and(|exp| exp + SKEW_SECS <= now) {
        return Ok(Err(bad("expired")));
    }
    // 3. A logout event.
    let event_ok = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|e| e.get(EVENT))
        .is_some_and(Value::is_object);
    if !event_ok {
        return Ok(Err(bad("events")));
    }
    // 4. Whom, and not an ID token.
    if claims.contains_key("nonce") {
        return Ok(Err(bad("nonce")));
    }
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return Ok(Err(bad("no_subject")));
    }
    // 5. Once.
    let Some(jti) = text("jti") else {
        return Ok(Err(bad("no_jti")));
    };
    let key = sha256_hex(&format!("{}\n{jti}", up.id));
    let until = iat + window + 2 * SKEW_SECS;
    if !svc
        .identity
        .store
        .spend_logout_token(&key, until, now)
        .await?
    {
        return Ok(Err(bad("replayed")));
    }
    let store = svc.identity.store;
    let link = match (sub, sid) {
        (Some(sub), _) => store.federated_identity(&up.id, sub).await?,
        (None, Some(sid)) => store.federated_identity_by_sid(&up.id, sid).await?,
        (None, None) => None,
    };
    // Nobody here (never signed in, or unlinked): nothing to end, and that is no error (§2.8).
    let Some(link) = link else {
        return Ok(Ok(0));
    };
    let mut ended = 0;
    for s in store.user_sessions(&link.user_id).await? {
        if s.amr.iter().any(|m| m == "fed") {
            session::end(store, svc.identity.events, &s, "upstream_logout", ctx).await?;
            ended += 1;
        }
    }
    store.end_pending_signins(&link.user_id).await?;
    // The provider ended its session: the tokens it gave for it go too.
    super::vault::discard(svc, &link.user_id, Some(&up.id), now).await?;
    Ok(Ok(ended))
}
