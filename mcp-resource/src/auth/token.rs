//! The token layer: from a request's credentials to the verified [`Caller`], or a refusal.
//!
//! In order, each step refusing on its own:
//! 1. **Where.** The token comes only from the `Authorization` header, sent once (two are a
//!    400 `invalid_request`, as at `authz`): a token in the query string is a 400 (RFC 6750 §2: §2.3's URI parameter is not accepted, §2.2's form body is
//!    never read for it).
//! 2. **Scheme.** `Bearer <token>` (RFC 6750 §2.1) or `DPoP <token>` (RFC 9449 §7.1); none is
//!    401 without an error code, a malformed header 401 `invalid_token`.
//! 3. **Verify.** `shared::verifier` offline (RFC 9068 §4: signature, `typ`, `iss`, `aud` = this
//!    server, `exp`); keys that cannot be fetched are 503, not a client error.
//! 4. **Binding.** DPoP (RFC 9449 §7), the rule of `shared::dpop::binding` that `authz` applies
//!    too: a `DPoP` proof for this request (`htm`, `htu` = the configured `MCP_RESOURCE_URL`,
//!    never a Host header a proxy rewrote, `iat` window, `ath` = the token's hash, this server's
//!    nonce with `MCP_DPOP_NONCE`, §9) signed by the key the token is bound to (`cnf.jkt`); a
//!    bound token sent as `Bearer` is refused, and with `MCP_DPOP_REQUIRED` every Bearer token
//!    is.
//! 5. **Revocation.** Sessions, grants and accounts ended elsewhere (Shared Signals, the logout
//!    tool: `revocations`).
//! 6. **Caller limit.** Per `sub` + `client_id`, after verification, so nobody can spend another
//!    caller's budget.
//! 7. **Spend.** The proof's `jti` is used up last, once every check and limit let the request
//!    through (RFC 9449 §11.1: in Redis with `MCP_REDIS_URL`, shared by replicas); a full replay
//!    store refuses (`use_dpop_nonce`, or 503 with `Retry-After`) rather than forget a live
//!    proof.
//!
//! Every request is authorized on its own: the server is stateless (no MCP sessions), so there
//! is no session id another user could reuse.

use axum::http::header;
use axum::http::request::Parts;
use shared::dpop::{Authorization, Binding, DpopError, Presented, Scheme};
use shared::verifier::VerifyError;
use shared::{AccessTokenClaims, ScopeSet};

use super::caller::Caller;
use super::refusal::{AuthError, Refusal};
use crate::state::McpState;

/// Steps 1–7 above: the request's scheme and its verified caller (the DPoP proof, if any,
/// already spent).
pub(super) async fn authenticate(
    state: &McpState,
    req: &Parts,
) -> Result<(Scheme, Caller), AuthError> {
    if req
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("access_token=")))
    {
        return Err(state.refuse(Refusal::TokenNotInHeader, None));
    }
    // `Bearer <token>` (RFC 6750 §2.1) or `DPoP <token>` (RFC 9449 §7.1), in one header.
    let mut headers = req.headers.get_all(header::AUTHORIZATION).iter();
    let authorization = headers.next().map(|v| v.as_bytes());
    if headers.next().is_some() {
        return Err(state.refuse(Refusal::TwoAuthorizations, None));
    }
    let (scheme, token) = match Authorization::parse(authorization) {
        Authorization::Token(scheme, token) => (scheme, token.to_owned()),
        Authorization::Missing => return Err(state.refuse(Refusal::NoToken, None)),
        Authorization::Malformed(scheme) => {
            let msg = "the Authorization header is malformed";
            state.audit(None, "token", "denied", Some(msg.into())).await;
            let e = state.refuse(Refusal::InvalidToken(msg.into()), None);
            return Err(e.via(scheme));
        }
    };
    let refuse_token = |kind| state.refuse(kind, None).via(scheme);
    let claims = match state.verifier.verify(&token).await {
        Ok(c) => c,
        Err(VerifyError::KeysUnavailable(cause)) => {
            tracing::error!(%cause, "cannot verify tokens: signing keys unavailable");
            return Err(state.refuse(Refusal::KeysUnavailable, None));
        }
        Err(e) => {
            state.metrics.verification_failed(e.reason());
            state
                .audit(None, "token", "denied", Some(e.to_string()))
                .await;
            return Err(refuse_token(Refusal::InvalidToken(e.to_string())));
        }
    };
    let binding = match check_binding(state, req, &token, scheme, &claims) {
        Ok(binding) => binding,
        Err(refusal) => {
            state.metrics.verification_failed(match &refusal {
                Refusal::InvalidDpopProof(_) => "dpop_proof",
                Refusal::UseDpopNonce(_) => "dpop_nonce",
                _ => "dpop_binding",
            });
            let reason = match &refusal {
                Refusal::InvalidDpopProof(m) | Refusal::InvalidToken(m) => m.clone(),
                _ => String::new(),
            };
            // A nonce request is the protocol's normal first round (§9), not a denial.
            if !matches!(refusal, Refusal::UseDpopNonce(_)) {
                state.audit(None, "token", "denied", Some(reason)).await;
            }
            return Err(refuse_token(refusal));
        }
    };
    if let Some(msg) = state.revocations.refuses(&claims) {
        state.metrics.verification_failed("revoked");
        state
            .audit(None, "token", "denied", Some(msg.to_owned()))
            .await;
        return Err(refuse_token(Refusal::InvalidToken(msg.to_owned())));
    }
    // Per authenticated caller (a user through one client, or a service client), after the
    // token is verified: nobody can spend another caller's budget.
    if let Some(limit) = &state.caller_limiter {
        let key = format!("{} {}", claims.sub, claims.client_id);
        if let Err(retry_after) = limit.check(&key, state.now()).await {
            state.metrics.rate_limited(limit.name());
            return Err(state.refuse(Refusal::TooMany { retry_after }, None));
        }
    }
    // RFC 9449 §11.1: the proof is used up only now, once every check and limit let the
    // request through (refused requests cannot fill the replay store).
    if let Binding::Proved(proof) = &binding
        && let Err(e) = state.dpop.spend(proof, state.now()).await
    {
        if let DpopError::Invalid(m) = &e {
            state.metrics.verification_failed("dpop_proof");
            state.audit(None, "token", "denied", Some(m.clone())).await;
        }
        return Err(refuse_token(e.into()));
    }
    let scopes = ScopeSet::parse(&claims.scope).unwrap_or_default();
    let caller = Caller {
        claims,
        scopes,
        token: shared::secret::AccessToken::new(token),
    };
    Ok((scheme, caller))
}

/// RFC 9449 §7: the token's binding and the request's scheme and proof agree
/// (`shared::dpop::binding`, with this server's nonce when `MCP_DPOP_NONCE` is on), and with
/// `MCP_DPOP_REQUIRED` no Bearer token is taken. The proof is not spent here.
fn check_binding(
    state: &McpState,
    req: &Parts,
    token: &str,
    scheme: Scheme,
    claims: &AccessTokenClaims,
) -> Result<Binding, Refusal> {
    let presented = Presented {
        scheme,
        token,
        bound: claims.cnf.as_ref().map(|c| c.jkt.as_str()),
        method: req.method.as_str(),
        uri: &state.config.resource_url,
    };
    let proofs = req
        .headers
        .get_all(shared::dpop::DPOP_HEADER)
        .iter()
        .map(|v| v.as_bytes());
    match state
        .dpop
        .check_presented(&presented, proofs, true, state.now())
    {
        Ok(Binding::Bearer) if state.config.dpop_required => Err(Refusal::InvalidToken(
            "this server accepts only DPoP-bound tokens (RFC 9449)".into(),
        )),
        Ok(binding) => Ok(binding),
        Err(shared::dpop::Refusal::Token(m)) => Err(Refusal::InvalidToken(m.into())),
        Err(shared::dpop::Refusal::Proof(e)) => Err(e.into()),
    }
}
