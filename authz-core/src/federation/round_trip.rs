//! The round trip to an upstream provider (RFC 6749 §4.1 as a client, OIDC Core §3.1, RFC 9700
//! §2.1 and §4.7).
//!
//! `begin`: a random `state` (the row's key, as SHA-256), `nonce` and PKCE verifier (S256,
//! RFC 7636), and a random browser binding the browser keeps in a cookie; the row says where
//! the sign-in continues (the pending authorization request, or a console page) and expires
//! after `federation.login_ttl_secs`. The redirect URI is the provider's own
//! (`/login/upstream/<id>/callback`).
//!
//! `complete`, the callback, as a checklist:
//! 1. `state` names a round trip not yet spent (spent now: single use), begun for this
//!    provider, by this browser (its binding cookie, compared as SHA-256 in constant time);
//!    an explicit link only in a live session of the user who began it;
//! 2. RFC 9207 §2.4: an `iss` in the response is the provider's issuer; a provider that
//!    advertises `authorization_response_iss_parameter_supported` must send it;
//! 3. an `error` response is refused (its code audited, nothing reflected);
//! 4. the code is exchanged with the verifier and the client's credentials (RFC 6749 §4.1.3);
//!    the answer is a Bearer token (and, for OIDC, an ID token: `id_token`'s checklist);
//! 5. user-info (OIDC Core §5.3; the only source for OAuth 2.0 providers): its `sub` is the
//!    ID token's (§5.3.2);
//! 6. the allowed email domains; then `account::resolve`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::account::{self, Asserted, Found};
use super::discovery::Endpoints;
use super::id_token::{self, Expected};
use super::token_endpoint::{Tokens, client_call};
use super::{FederationServices, Refusal};
use crate::config::upstream::{Upstream, UpstreamKind};
use crate::crypto::{ct_eq, random_secret, sha256_hex};
use crate::error::Result;
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::outbound::cimd::Source;
use crate::outbound::fetch::Call;
use crate::store::{AuditEvent, Outcome, UpstreamLogin, User};

/// A round trip begun: where to send the browser, and the binding cookie's value.
#[derive(Debug)]
pub struct Begun {
    pub location: String,
    pub browser: String,
}

fn unavailable(up: &Upstream) -> Refusal {
    Refusal::new(
        "unavailable",
        format!(
            "{} cannot be reached right now, so signing in with it is not possible. Try again \
             in a few minutes, or sign in another way.",
            up.name
        ),
    )
}

/// Begin a round trip to `up` that continues at `target` (JSON: `{"request": …}` or
/// `{"next": …}`), for an explicit link of `link_user` when given.
pub async fn begin(
    svc: FederationServices<'_>,
    up: &Upstream,
    target: &str,
    link_user: Option<&str>,
    now: i64,
) -> Result<std::result::Result<Begun, Refusal>> {
    let config = svc.identity.config;
    let Ok(endpoints) = svc.endpoints(up, now).await else {
        return Ok(Err(unavailable(up)));
    };
    let (state, nonce, verifier, browser) = (
        random_secret(),
        random_secret(),
        random_secret(),
        random_secret(),
    );
    let state_hash = sha256_hex(&state);
    let sealed = svc
        .identity
        .master
        .seal(aad(&state_hash).as_bytes(), verifier.as_bytes());
    let row = UpstreamLogin {
        provider: up.id.clone(),
        browser_hash: sha256_hex(&browser),
        nonce_hash: sha256_hex(&nonce),
        verifier_enc: URL_SAFE_NO_PAD.encode(&sealed),
        target: target.to_owned(),
        link_user_id: link_user.map(str::to_owned),
        created_at: now,
        expires_at: now + config.federation.login_ttl_secs,
    };
    svc.identity
        .store
        .put_upstream_login(&state_hash, &row, now)
        .await?;
    let mut url = endpoints.authorization.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &up.params {
            q.append_pair(k, v);
        }
        q.append_pair("response_type", "code")
            .append_pair("client_id", &up.client_id)
            .append_pair("redirect_uri", &svc.redirect_uri(&up.id))
            .append_pair("state", &state)
            .append_pair("code_challenge", &crate::crypto::s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        let scope = up.scope();
        if !scope.is_empty() {
            q.append_pair("scope", &scope);
        }
        if up.kind == UpstreamKind::Oidc {
            q.append_pair("nonce", &nonce);
        }
    }
    Ok(Ok(Begun {
        location: url.into(),
        browser,
    }))
}

/// The associated data the verifier is sealed with: its round trip.
fn aad(state_hash: &str) -> String {
    format!("upstream-login:{state_hash}")
}

/// The provider's response, as the callback's query carries it.
#[derive(Debug, Default)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
    /// The user of the browser's live session, if any: an explicit link is finished only in
    /// a live session of the user who began it (a remedy since ended it: no link).
    pub session_user: Option<String>,
}

/// A round trip completed: who signed in, how, and where the sign-in continues.
#[derive(Debug)]
pub struct Completed {
    pub user: User,
    /// RFC 8176 methods for the session: `fed`, and `mfa` when the provider is trusted for it
    /// and says so.
    pub amr: Vec<String>,
    pub target: String,
    pub found: Found,
    pub link_user_id: Option<String>,
}

/// A refused callback, with where the sign-in was to continue (when the round trip was
/// found), so the page can offer to start again.
#[derive(Debug)]
pub struct Failed {
    pub refusal: Refusal,
    pub target: Option<String>,
}

/// The callback of provider `up` (the module's checklist); `browser` is the binding cookie.
pub async fn complete(
    svc: FederationServices<'_>,
    up: &Upstream,
    cb: &Callback,
    browser: Option<&str>,
    ctx: &RequestContext,
) -> Result<std::result::Result<Completed, Failed>> {
    let (row, outcome) = match checked(svc, up, cb, browser, ctx).await? {
        Ok((row, done)) => (Some(row), done),
        Err((row, refusal)) => (row, Err(refusal)),
    };
    let target = row.as_ref().map(|r| r.target.clone());
    match outcome {
        Ok((user, amr, found)) => {
            let ev = AuditEvent::new(ctx.now, kinds::UPSTREAM_SIGNED_IN, Outcome::Success)
                .actor(&user.username)
                .subject(&user.id)
                .details(serde_json::json!({ "provider": up.id, "how": found.as_str() }))
                .ctx(ctx);
            svc.identity.audit(ev).await;
            Ok(Ok(Completed {
                user,
                amr,
                target: target.unwrap_or_default(),
                found,
                link_user_id: row.and_then(|r| r.link_user_id),
            }))
        }
        Err(refusal) => {
            tracing::info!(provider = %up.id, reason = refusal.reason, "upstream sign-in refused");
            let ev = AuditEvent::new(ctx.now, kinds::UPSTREAM_REFUSED, Outcome::Failure)
                .details(serde_json::json!({ "provider": up.id, "reason": refusal.reason }))
                .ctx(ctx);
            svc.identity.audit(ev).await;
            Ok(Err(Failed { refusal, target }))
        }
    }
}

type Done = (User, Vec<String>, Found);
type Checked = std::result::Result<
    (UpstreamLogin, std::result::Result<Done, Refusal>),
    (Option<UpstreamLogin>, Refusal),
>;

async fn checked(
    svc: FederationServices<'_>,
    up: &Upstream,
    cb: &Callback,
    browser: Option<&str>,
    ctx: &RequestContext,
) -> Result<Checked> {
    let now = ctx.now;
    let expired = || {
        Refusal::new(
            "state",
            "This sign-in has expired or was already used (or began in another browser): \
             start again.",
        )
    };
    // 1. Our round trip, spent now, this provider's, this browser's.
    let Some(state) = cb.state.as_deref().filter(|s| s.len() <= 128) else {
        return Ok(Err((None, expired())));
    };
    let state_hash = sha256_hex(state);
    let Some(row) = svc
        .identity
        .store
        .take_upstream_login(&state_hash, now)
        .await?
    else {
        return Ok(Err((None, expired())));
    };
    let same_browser =
        browser.is_some_and(|b| ct_eq(sha256_hex(b).as_bytes(), row.browser_hash.as_bytes()));
    if row.provider != up.id || !same_browser {
        return Ok(Err((None, expired())));
    }
    // An explicit link: still the session of the user who began it (issue 26 review F1: a
    // reset, disabling or signing out since then ends it, and the link with it).
    if let Some(uid) = &row.link_user_id
        && cb.session_user.as_deref() != Some(uid.as_str())
    {
        let ended = Refusal::new(
            "link_session",
            "The sign-in that began this link has ended (signed out, or the account's password \
             or status changed). Sign in again and link the account from the account page.",
        );
        return Ok(Err((Some(row), ended)));
    }
    let done = exchange_and_resolve(svc, up, cb, &row, &state_hash, ctx).await?;
    Ok(Ok((row, done)))
}

async fn exchange_and_resolve(
    svc: FederationServices<'_>,
    up: &Upstream,
    cb: &Callback,
    row: &UpstreamLogin,
    state_hash: &str,
    ctx: &RequestContext,
) -> Result<std::result::Result<Done, Refusal>> {
    let now = ctx.now;
    let config = svc.identity.config;
    let Ok(endpoints) = svc.endpoints(up, now).await else {
        return Ok(Err(unavailable(up)));
    };
    // 2. RFC 9207: the response's issuer.
    match (&cb.iss, &endpoints.issuer) {
        (Some(iss), Some(expected)) if iss != expected => {
            return Ok(Err(Refusal::provider("response_iss")));
        }
        (Some(iss), None) if !up.allowed_issuers.iter().any(|a| a == iss) => {
            return Ok(Err(Refusal::provider("response_iss")));
        }
        (None, _) if endpoints.iss_parameter => {
            return Ok(Err(Refusal::provider("response_iss_missing")));
        }
        _ => {}
    }
    // 3. An error response.
    if let Some(error) = &cb.error {
        let cancelled = error == "access_denied";
        tracing::info!(provider = %up.id, error = %short(error), "upstream error response");
        return Ok(Err(if cancelled {
            Refusal::new(
                "access_denied",
                format!("Signing in with {} was cancelled or not allowed.", up.name),
            )
        } else {
            Refusal::provider("error_response")
        }));
    }
    let Some(code) = cb
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return Ok(Err(Refusal::provider("no_code")));
    };
    // 4. The code, with the verifier.
    let Ok(sealed) = URL_SAFE_NO_PAD.decode(&row.verifier_enc) else {
        return Ok(Err(Refusal::provider("state")));
    };
    let Ok(verifier) = svc
        .identity
        .master
        .open(aad(state_hash).as_bytes(), &sealed)
    else {
        return Ok(Err(Refusal::provider("state")));
    };
    let verifier = String::from_utf8_lossy(&verifier).into_owned();
    let tokens = match token_request(svc, up, &endpoints, code, &verifier, now).await {
        Ok(t) => t,
        Err(r) => return Ok(Err(r)),
    };
    // 4, 5. Who it is.
    let claims = match claims(svc, up, &endpoints, &tokens, row, now).await {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    let asserted = match Asserted::from_claims(&up.claims, &claims) {
        Ok(a) => a,
        Err(r) => return Ok(Err(r)),
    };
    // 6. The allowed domains.
    if !up.email_domains.is_empty() {
        let domain_ok = asserted
            .verified_email()
            .and_then(|e| e.rsplit_once('@'))
            .is_some_and(|(_, d)| up.email_domains.iter().any(|x| x.eq_ignore_ascii_case(d)));
        if !domain_ok {
            return Ok(Err(Refusal::new(
                "email_domain",
                format!(
                    "Your {} account has no verified email address in a domain this server \
                     accepts.",
                    up.name
                ),
            )));
        }
    }
    let fed = &config.federation;
    let link_user = row.link_user_id.as_deref();
    let (user, found) =
        match account::resolve(svc.identity, fed, up, &asserted, link_user, ctx).await? {
            Ok(f) => f,
            Err(r) => return Ok(Err(r)),
        };
    if up.vault {
        let whose = (user.id.as_str(), asserted.subject.as_str());
        super::vault::keep(svc, up, whose, &tokens, now).await?;
    }
    let mut amr = vec!["fed".to_owned()];
    if up.trust_mfa && asserted.multi_factor(up) {
        amr.push("mfa".to_owned());
    }
    Ok(Ok((user, amr, found)))
}

/// An error code from the provider, cut to a short, printable word (for the log only).
fn short(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

async fn token_request(
    svc: FederationServices<'_>,
    up: &Upstream,
    endpoints: &Endpoints,
    code: &str,
    verifier: &str,
    now: i64,
) -> std::result::Result<Tokens, Refusal> {
    let fields = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), svc.redirect_uri(&up.id)),
        ("code_verifier".to_owned(), verifier.to_owned()),
    ];
    let call = client_call(up, endpoints, &endpoints.token, fields, now).map_err(|e| {
        tracing::warn!(provider = %up.id, error = %e, "upstream client authentication");
        svc.providers.failed(&up.id, &e, now);
        Refusal::provider("client_key")
    })?;
    let answer = svc
        .cimd
        .fetcher()
        .call_trusted(&endpoints.token, &call, now)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %up.id, error = %e, "upstream token endpoint failed");
            svc.providers
                .failed(&up.id, &format!("token endpoint: {e}"), now);
            Refusal::provider("token_endpoint")
        })?;
    let body: Value = serde_json::from_slice(&answer.fetched.body).unwrap_or(Value::Null);
    if answer.status != 200 {
        let error = body.get("error").and_then(Value::as_str).unwrap_or("");
        tracing::info!(provider = %up.id, status = answer.status, error = %short(error),
            "upstream token request refused");
        return Err(Refusal::provider("token_error"));
    }
    let Some(tokens) = Tokens::from_response(&body) else {
        return Err(Refusal::provider("token_response"));
    };
    if up.kind == UpstreamKind::Oidc && tokens.id_token.is_none() {
        return Err(Refusal::provider("no_id_token"));
    }
    Ok(tokens)
}

/// The person's claims: the verified ID token's (OIDC) merged with user-info's, or
/// user-info's alone (OAuth 2.0).
async fn claims(
    svc: FederationServices<'_>,
    up: &Upstream,
    endpoints: &Endpoints,
    tokens: &Tokens,
    row: &UpstreamLogin,
    now: i64,
) -> std::result::Result<serde_json::Map<String, Value>, Refusal> {
    let mut claims = serde_json::Map::new();
    if let Some(jwt) = &tokens.id_token {
        let e = Expected {
            up,
            endpoints,
            nonce_hash: &row.nonce_hash,
            now,
            max_age_secs: svc.identity.config.federation.login_ttl_secs,
        };
        let header = id_token::header(jwt, &e)?;
        let uri = endpoints.jwks_uri.as_deref().unwrap_or_default();
        let keys = svc
            .cimd
            .key_set(uri, header.kid.as_deref(), Source::Trusted, now)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %up.id, error = ?e, "upstream keys unavailable");
                Refusal::provider("id_token_keys")
            })?;
        claims = id_token::verify(jwt, &header, &keys, &e)?;
    }
    let Some(userinfo) = &endpoints.userinfo else {
        return Ok(claims);
    };
    let answer = svc
        .cimd
        .fetcher()
        .call_trusted(userinfo, &Call::Bearer(tokens.access_token.clone()), now)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %up.id, error = %e, "upstream user-info failed");
            Refusal::provider("userinfo")
        })?;
    let Ok(Value::Object(info)) = serde_json::from_slice::<Value>(&answer.fetched.body) else {
        return Err(Refusal::provider("userinfo"));
    };
    if answer.status != 200 {
        return Err(Refusal::provider("userinfo"));
    }
    if tokens.id_token.is_some() {
        // OIDC Core §5.3.2: the user-info `sub` must be the ID token's.
        if info.get("sub") != claims.get("sub") {
            return Err(Refusal::provider("userinfo_sub"));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
        Ok(claims)
    } else {
        Ok(info)
    }
}
