//! Identity Assertion JWT Authorization Grants (draft-ietf-oauth-identity-assertion-authz-grant,
//! "ID-JAG"; the MCP enterprise-managed authorization extension): a JWT an enterprise IdP
//! signs for one user, one client and this server, presented on the jwt-bearer grant
//! (RFC 7523 §2.1). This module checks the assertion itself; the grant
//! (`grant::jwt_bearer`) maps it to a user, a resource and scopes.
//!
//! The checklist, each refusal its own `invalid_grant` description (RFC 6749 §5.2, RFC 7521
//! §5.2, the draft's "Processing Rules" of the access token request):
//! 1. header `typ` = `oauth-id-jag+jwt`, compared case-insensitively, `application/` prefix
//!    allowed (draft "ID-JAG" section; RFC 8725 §3.11, RFC 7515 §4.1.9);
//! 2. an asymmetric `alg` (never `none` or HMAC: RFC 8725 §3.1, §2.1);
//! 3. `iss` one of the configured trusted issuers (RFC 7523 §3 item 1), compared exactly;
//! 4. the signature, by a key of that issuer's JWK Set (by `kid`; an unknown `kid` refetches
//!    the set once, at most once a minute per set), a trusted key set (`outbound::key_sets`:
//!    fetched through the SSRF-guarded fetcher outside the anonymous fetch budgets, cached,
//!    served stale while the IdP's host fails) (RFC 7523 §3 item 9);
//! 5. `aud` = this server's issuer (or the issuer's configured `audience`), as a single JSON
//!    string — not an array, even of that one value (`keys::jws::sole_audience`;
//!    draft-ietf-oauth-rfc7523bis, "Updates to RFC 7523": audience injection; RFC 7523 §3
//!    item 3);
//! 6. `exp` in the future (30 s leeway), `iat` present and not in the future, `nbf` if present
//!    passed, lifetime (`exp` − `iat`) at most 5 minutes (RFC 7523 §3 items 4–6: the draft's
//!    example IdP issues for 300 s; a long-lived ID-JAG is a bearer credential);
//! 7. `jti` present (draft: REQUIRED; spent by the grant, once, until `exp`: RFC 7523 §3 item 7);
//! 8. `client_id` present (draft: REQUIRED) and `sub` present (RFC 7523 §3 item 2).
//!
//! Never logged nor audited: the assertion or its claims (only which check failed).

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use crate::clients::cimd::resolver::KeySetError;
use crate::config::id_jag::TrustedIssuer;
use crate::keys::jws::{self, SignatureError, sole_audience, unverified_claim};
use crate::outbound::cimd::Source;
use crate::state::AppState;

/// The JWT `typ` of an ID-JAG (draft: media type `application/oauth-id-jag+jwt`).
pub(crate) const TYP: &str = "oauth-id-jag+jwt";

/// The grant profile advertised in `authorization_grant_profiles_supported`.
pub const GRANT_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";

/// The longest an ID-JAG may live (`exp` − `iat`), and the furthest its `exp` may be.
pub const MAX_LIFETIME_SECS: i64 = 300;

/// Clock skew allowed on `exp`, `iat` and `nbf`.
pub(crate) const SKEW_SECS: i64 = 30;

/// Longest accepted assertion, in bytes (an ID-JAG is a few hundred).
pub(crate) const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// Why an assertion was refused: a short code for the audit log and the description the
/// client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub description: String,
}

impl Refusal {
    pub fn new(reason: &'static str, description: impl Into<String>) -> Self {
        Self {
            reason,
            description: description.into(),
        }
    }
}

/// A verified ID-JAG: what the grant needs of it.
#[derive(Debug, Clone)]
pub struct IdJag {
    pub issuer: TrustedIssuer,
    pub sub: String,
    pub client_id: String,
    pub jti: String,
    pub exp: i64,
    pub iat: i64,
    /// The `resource` claim (a string or an array; empty when absent).
    pub resources: Vec<String>,
    /// The `scope` claim, as sent (absent: the IdP did not narrow the scopes).
    pub scope: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub preferred_username: Option<String>,
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
}

/// Check `assertion` (the module's checklist) at `now`; a refusal becomes `invalid_grant`.
/// (The `jti` is spent by the grant, after its own checks.)
pub async fn verify(
    state: &AppState,
    assertion: &str,
    now: i64,
) -> std::result::Result<IdJag, Refusal> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(Refusal::new("malformed", "the assertion is too large"));
    }
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| Refusal::new("malformed", "the assertion is not a signed JWT"))?;
    // 1. The explicit type, so no other JWT of the IdP (an ID token) passes as a grant.
    if !header.typ.as_deref().is_some_and(typ_is_id_jag) {
        return Err(Refusal::new(
            "wrong_typ",
            "the assertion's typ must be oauth-id-jag+jwt (an Identity Assertion JWT \
             Authorization Grant)",
        ));
    }
    // 2. An asymmetric algorithm (`decode_header` refuses `none`: it is no Algorithm).
    if !jws::ASYMMETRIC.contains(&header.alg) {
        return Err(Refusal::new(
            "bad_alg",
            "the assertion's algorithm must be an asymmetric one (RS256, PS256, ES256, EdDSA…)",
        ));
    }
    // 3. A trusted issuer (read before the signature, to know whose keys to use).
    let iss = unverified_claim(assertion, "iss")
        .ok_or_else(|| Refusal::new("malformed", "the assertion has no iss"))?;
    let Some(issuer) = state.config.id_jag.issuer(&iss) else {
        return Err(Refusal::new(
            "untrusted_issuer",
            "the assertion's issuer is not a trusted identity provider of this server",
        ));
    };
    // 4. The signature.
    let claims = verify_signature(state, issuer, &header, assertion, now).await?;
    // 5. For this server.
    let expected = issuer
        .audience
        .clone()
        .unwrap_or_else(|| state.config.issuer.clone());
    if !sole_audience(claims.get("aud"), &expected) {
        return Err(Refusal::new(
            "wrong_audience",
            format!(
                "the assertion's aud must be this server's issuer identifier ({expected}), \
                 alone, as a single string"
            ),
        ));
    }
    // 6. Short-lived, against our clock.
    let exp = int_claim(&claims, "exp")
        .ok_or_else(|| Refusal::new("malformed", "the assertion has no numeric exp"))?;
    let iat = int_claim(&claims, "iat")
        .ok_or_else(|| Refusal::new("malformed", "the assertion has no numeric iat"))?;
    if exp + SKEW_SECS <= now {
        return Err(Refusal::new("expired", "the assertion has expired"));
    }
    if iat > now + SKEW_SECS || int_claim(&claims, "nbf").is_some_and(|t| t > now + SKEW_SECS) {
        return Err(Refusal::new(
            "not_yet_valid",
            "the assertion is not valid yet (iat or nbf in the future)",
        ));
    }
    if exp - iat > MAX_LIFETIME_SECS || exp > now + MAX_LIFETIME_SECS + SKEW_SECS {
        return Err(Refusal::new(
            "too_long_lived",
            "the assertion lives longer than 5 minutes; ID-JAGs must be short-lived",
        ));
    }
    // 7, 8. The identifiers.
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(str::to_owned)
    };
    let jti = text("jti").ok_or_else(|| {
        Refusal::new(
            "no_jti",
            "the assertion needs a jti (at most 256 characters)",
        )
    })?;
    let client_id = text("client_id")
        .ok_or_else(|| Refusal::new("no_client_id", "the assertion needs a client_id claim"))?;
    let sub = text("sub").ok_or_else(|| Refusal::new("no_subject", "the assertion has no sub"))?;
    let resources = match claims.get("resource") {
        None => Vec::new(),
        Some(Value::String(r)) => vec![r.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| Refusal::new("malformed", "the assertion's resource must be URIs"))?,
        Some(_) => {
            return Err(Refusal::new(
                "malformed",
                "the assertion's resource must be a URI or an array of URIs",
            ));
        }
    };
    let scope = match claims.get("scope") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(Refusal::new(
                "malformed",
                "the assertion's scope must be a space-separated string (RFC 6749 §3.3)",
            ));
        }
    };
    let amr = claims
        .get("amr")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .filter(|m| {
                    m.len() <= 32 && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
                .take(8)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(IdJag {
        issuer: issuer.clone(),
        sub,
        client_id,
        jti,
        exp,
        iat,
        resources,
        scope,
        email: text("email"),
        email_verified: claims.get("email_verified").and_then(Value::as_bool),
        preferred_username: text("preferred_username"),
        auth_time: int_claim(&claims, "auth_time"),
        amr,
    })
}

/// `oauth-id-jag+jwt`, in any case, with or without `application/` (RFC 7515 §4.1.9).
fn typ_is_id_jag(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    lower.strip_prefix("application/").unwrap_or(&lower) == TYP
}

fn int_claim(claims: &Value, name: &str) -> Option<i64> {
    claims.get(name).and_then(Value::as_i64)
}

async fn verify_signature(
    state: &AppState,
    issuer: &TrustedIssuer,
    header: &jsonwebtoken::Header,
    assertion: &str,
    now: i64,
) -> std::result::Result<Value, Refusal> {
    let keys = key_set(state, issuer, header.kid.as_deref(), now).await?;
    jws::verify_with_set(assertion, header, &keys).map_err(|e| match e {
        SignatureError::NoMatchingKey => Refusal::new(
            "unknown_key",
            "no key of the identity provider's key set matches the assertion's kid",
        ),
        SignatureError::BadSignature => Refusal::new(
            "bad_signature",
            "the assertion's signature does not verify with the identity provider's keys",
        ),
        SignatureError::CriticalExtension => Refusal::new(
            "malformed",
            "the assertion's header lists critical extensions (crit) this server does not \
             implement",
        ),
    })
}

/// The issuer's public keys for `kid`: a trusted key set (`Cimd::key_set`: cached, served stale
/// while the IdP's host fails, fetched through the guarded fetcher — https only, the SSRF
/// guard, no redirects, size and time caps — outside the budgets anonymous requests spend, so
/// a flood of metadata-document lookups cannot make it unavailable).
async fn key_set(
    state: &AppState,
    issuer: &TrustedIssuer,
    kid: Option<&str>,
    now: i64,
) -> std::result::Result<JwkSet, Refusal> {
    let unavailable = |why: String| {
        tracing::warn!(issuer = %issuer.issuer, reason = %why, "ID-JAG issuer key set unavailable");
        Refusal::new(
            "keys_unavailable",
            format!("the identity provider's key set could not be fetched: {why}"),
        )
    };
    state
        .cimd
        .key_set(&issuer.jwks_uri, kid, Source::Trusted, now)
        .await
        .map_err(|e| {
            unavailable(match e {
                KeySetError::NotAUrl => "jwks_uri is not a URL".into(),
                KeySetError::Unreachable(why) => why,
                KeySetError::NotAJwkSet => "it is not a JWK Set".into(),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison() {
        for ok in [
            "oauth-id-jag+jwt",
            "OAuth-ID-JAG+JWT",
            "application/oauth-id-jag+jwt",
        ] {
            assert!(typ_is_id_jag(ok), "{ok}");
        }
        for bad in ["JWT", "at+jwt", "oauth-id-jag", "x/oauth-id-jag+jwt", ""] {
            assert!(!typ_is_id_jag(bad), "{bad}");
        }
    }
}
