//! The upstream ID token's checklist (OIDC Core §3.1.3.7), each refusal its own audit reason:
//! 1. a signed JWT whose `alg` is one the provider's metadata lists and asymmetric (never
//!    `none`, never HMAC keyed with a public key: RFC 8725 §2.1, §3.1); no `crit`;
//! 2. the signature, by a key of the provider's `jwks_uri` (`keys::jws`: by `kid`, never an
//!    encryption key; an unknown `kid` refetches the set at most every few seconds; served
//!    stale while the provider fails);
//! 3. `iss` exactly the provider's issuer (or, multi-tenant, one of `allowed_issuers`);
//! 4. `aud` holds our client id; with other audiences, `azp` must be ours; `azp`, when
//!    present, is ours;
//! 5. `nonce` is the one this browser's round trip sent (compared as SHA-256, constant time);
//! 6. `exp` in the future, `iat` present, not in the future and not older than the round trip
//!    may last (60 s skew);
//! 7. `sub` present (at most 255 characters, OIDC Core §2).
//!
//! Never logged: the token or its claims.

use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::Refusal;
use super::discovery::Endpoints;
use crate::config::upstream::Upstream;
use crate::crypto::{ct_eq, sha256_hex};
use crate::keys::jws::{self, SignatureError};

/// Clock skew allowed on `exp` and `iat`.
pub(crate) const SKEW_SECS: i64 = 60;

/// The checks' inputs besides the token.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub up: &'a Upstream,
    pub endpoints: &'a Endpoints,
    /// SHA-256 of the nonce sent.
    pub nonce_hash: &'a str,
    pub now: i64,
    /// The longest a round trip may take (`iat` no older).
    pub max_age_secs: i64,
}

/// The `alg` and `kid` of `jwt`, when it is a signed JWT with an algorithm `endpoints`
/// accept (checks 1).
pub(crate) fn header(jwt: &str, e: &Expected<'_>) -> Result<jsonwebtoken::Header, Refusal> {
    let header =
        jsonwebtoken::decode_header(jwt).map_err(|_| Refusal::provider("id_token_malformed"))?;
    if !e.endpoints.algs.contains(&header.alg) {
        return Err(Refusal::provider("id_token_alg"));
    }
    Ok(header)
}

/// Check `jwt` against `keys` (the provider's set for its `kid`); its claims.
pub(crate) fn verify(
    jwt: &str,
    header: &jsonwebtoken::Header,
    keys: &JwkSet,
    e: &Expected<'_>,
) -> Result<serde_json::Map<String, Value>, Refusal> {
    let claims = jws::verify_with_set(jwt, header, keys).map_err(|err| {
        Refusal::provider(match err {
            SignatureError::NoMatchingKey => "id_token_unknown_key",
            SignatureError::BadSignature => "id_token_signature",
            SignatureError::CriticalExtension => "id_token_crit",
        })
    })?;
    let Value::Object(claims) = claims else {
        return Err(Refusal::provider("id_token_malformed"));
    };
    check_claims(claims, e)
}

/// Checks 3–7 on verified claims.
pub(crate) fn check_claims(
    claims: serde_json::Map<String, Value>,
    e: &Expected<'_>,
) -> Result<serde_json::Map<String, Value>, Refusal> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    // 3. The issuer, exactly.
    let iss = text("iss").unwrap_or_default();
    let issuer_ok = match &e.endpoints.issuer {
        Some(expected) => iss == expected,
        None => e.up.allowed_issuers.iter().any(|a| a == iss),
    };
    if !issuer_ok {
        return Err(Refusal::provider("id_token_iss"));
    }
    // 4. For us.
    let client_id = e.up.client_id.as_str();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(Refusal::provider("id_token_aud"));
    }
    let azp = text("azp");
    if azp.is_some_and(|a| a != client_id) || (audiences.len() > 1 && azp.is_none()) {
        return Err(Refusal::provider("id_token_azp"));
    }
    // 5. This round trip's nonce.
    let nonce_ok =
        text("nonce").is_some_and(|n| ct_eq(sha256_hex(n).as_bytes(), e.nonce_hash.as_bytes()));
    if !nonce_ok {
        return Err(Refusal::provider("id_token_nonce"));
    }
    // 6. Current.
    let int = |name: &str| claims.get(name).and_then(Value::as_i64);
    let (Some(exp), Some(iat)) = (int("exp"), int("iat")) else {
        return Err(Refusal::provider("id_token_malformed"));
    };
    if exp + SKEW_SECS <= e.now {
        return Err(Refusal::provider("id_token_expired"));
    }
    if iat > e.now + SKEW_SECS || iat < e.now - e.max_age_secs - SKEW_SECS {
        return Err(Refusal::provider("id_token_iat"));
    }
    // 7. Whom it is about.
    if !text("sub").is_some_and(|s| !s.is_empty() && s.len() <= 255) {
        return Err(Refusal::provider("id_token_sub"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn endpoints() -> Endpoints {
        Endpoints {
            issuer: Some("https://idp.example".into()),
            authorization: url::Url::parse("https://idp.example/a").unwrap(),
            token: url::Url::parse("https://idp.example/t").unwrap(),
            userinfo: None,
            revocation: None,
            jwks_uri: Some("https://idp.example/jwks".into()),
            iss_parameter: true,
            algs: vec![jsonwebtoken::Algorithm::ES256],
        }
    }

    fn good() -> Value {
        json!({
            "iss": "https://idp.example", "aud": "authz", "sub": "u1", "nonce": "n-1",
            "exp": NOW + 300, "iat": NOW,
        })
    }

    fn run(claims: Value) -> Result<(), &'static str> {
        let up = Upstream {
            client_id: "authz".into(),
            ..Upstream::default()
        };
        let ep = endpoints();
        let hash = sha256_hex("n-1");
        let e = Expected {
            up: &up,
            endpoints: &ep,
            nonce_hash: &hash,
            now: NOW,
            max_age_secs: 600,
        };
        let Value::Object(map) = claims else {
            unreachable!()
        };
        check_claims(map, &e).map(|_| ()).map_err(|r| r.reason)
    }

    fn with(k: &str, v: Value) -> Value {
        let mut c = good();
        c[k] = v;
        c
    }

    #[test]
    fn each_claim_rule_refuses_and_a_good_token_passes() {
        assert_eq!(run(good()), Ok(()));
        assert_eq!(
            run(with("iss", json!("https://evil.example"))),
            Err("id_token_iss")
        );
        assert_eq!(run(with("aud", json!("other"))), Err("id_token_aud"));
        assert_eq!(
            run(with("aud", json!(["authz", "other"]))),
            Err("id_token_azp")
        );
        let mut both = with("aud", json!(["authz", "other"]));
        both["azp"] = json!("authz");
        assert_eq!(run(both), Ok(()));
        assert_eq!(run(with("azp", json!("other"))), Err("id_token_azp"));
        assert_eq!(run(with("nonce", json!("n-2"))), Err("id_token_nonce"));
        let mut none = good();
        none.as_object_mut().unwrap().remove("nonce");
        assert_eq!(run(none), Err("id_token_nonce"));
        assert_eq!(run(with("exp", json!(NOW - 61))), Err("id_token_expired"));
        assert_eq!(run(with("iat", json!(NOW + 61))), Err("id_token_iat"));
        assert_eq!(run(with("iat", json!(NOW - 3600))), Err("id_token_iat"));
        assert_eq!(run(with("sub", json!(""))), Err("id_token_sub"));
    }
}
