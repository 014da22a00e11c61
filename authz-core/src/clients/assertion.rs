//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9): the client
//! signs a short-lived JWT with its private key; the server checks it against the client's
//! public keys (its `jwks`, or `jwks_uri` fetched through the SSRF-guarded fetcher of
//! `outbound::fetch`, cached by `outbound::key_sets`).
//!
//! The checklist (RFC 7523 §3):
//! 1. an asymmetric algorithm (never `none` or HMAC: the keys are public);
//! 2. the signature, by a key of the client's set (by `kid`, or any key of the set);
//! 3. `iss` = `sub` = the client id;
//! 4. `aud` is this server's issuer identifier, as a single JSON string (`sole_audience`:
//!    draft-ietf-oauth-rfc7523bis, "Updates to RFC 7523" and "Updates to RFC 9126": the token
//!    or PAR endpoint URL MUST NOT be accepted, nor a JSON array, even of that one value —
//!    audience injection: an assertion another server's endpoint tricked a client into
//!    signing must not work here);
//! 5. `exp` in the future, against the injected clock, and at most `MAX_LIFETIME_SECS` away
//!    (a long-lived assertion is a bearer credential); `nbf`/`iat` not in the future;
//! 6. `jti` present, and single use: spent atomically in storage until `exp`.

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use crate::clients::ClientServices;
use crate::crypto::sha256_hex;
use crate::error::{Error, Result};
use crate::keys::jws::{self, SignatureError, sole_audience};
use crate::outbound::cimd::Source;
use crate::outbound::key_sets::KeySetError;
use crate::store::{Client, ClientSettings, Registration};

/// RFC 7523 §2.2 `client_assertion_type`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest an assertion may live (from now to its `exp`).
pub const MAX_LIFETIME_SECS: i64 = 300;

/// Clock skew allowed for `iat` and `nbf`.
const SKEW_SECS: i64 = 30;

/// The algorithms accepted (asymmetric only: `keys::jws`).
pub const ALGORITHMS: [jsonwebtoken::Algorithm; 6] = jws::ASYMMETRIC;

/// A client set up for `private_key_jwt` names where its keys are: exactly one of `jwks_uri`
/// (https) or `jwks` (a JWK Set with at least one key).
pub(crate) fn validate_key_source(settings: &ClientSettings) -> Result<()> {
    match (&settings.jwks_uri, &settings.jwks) {
        (Some(uri), None) => {
            let ok =
                url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !ok {
                return Err(Error::Invalid(format!(
                    "jwks_uri {uri:?} must be an https URL"
                )));
            }
            Ok(())
        }
        (None, Some(jwks)) => match serde_json::from_str::<JwkSet>(jwks) {
            Ok(set) if !set.keys.is_empty() => Ok(()),
            Ok(_) => Err(Error::Invalid("jwks has no keys".into())),
            Err(e) => Err(Error::Invalid(format!("jwks is not a JWK Set: {e}"))),
        },
        (None, None) => Err(Error::Invalid(
            "private_key_jwt needs the client's public keys: jwks_uri or jwks".into(),
        )),
        (Some(_), Some(_)) => Err(Error::Invalid("give jwks_uri or jwks, not both".into())),
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    #[serde(default)]
    aud: serde_json::Value,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

fn refuse(why: &str) -> Error {
    Error::invalid_client(format!("the client assertion is not valid: {why}"))
}

/// The `sub` of an assertion, unverified: which client it claims to be (when the request
/// carries no `client_id`). Verification follows, against that client's keys.
pub(crate) fn claimed_client(assertion: &str) -> Option<String> {
    jws::unverified_claim(assertion, "sub")
}

/// Check `assertion` for `client` (the module's checklist) and spend its `jti`.
pub async fn verify(
    svc: ClientServices<'_>,
    client: &Client,
    assertion: &str,
    now: i64,
) -> Result<()> {
    // 1. An asymmetric algorithm.
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refuse("malformed JWT"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refuse(
            "the algorithm must be an asymmetric one (RS256, PS256, ES256, EdDSA…)",
        ));
    }
    // 2. The signature, by one of the client's keys.
    let keys = key_set(svc, client, header.kid.as_deref(), now).await?;
    let claims = jws::verify_with_set(assertion, &header, &keys).map_err(|e| match e {
        SignatureError::NoMatchingKey => refuse("no key of the client's key set matches its kid"),
        SignatureError::BadSignature => {
            refuse("the signature does not verify with the client's keys")
        }
        SignatureError::CriticalExtension => {
            refuse("its header lists critical extensions (crit) this server does not implement")
        }
    })?;
    let claims: AssertionClaims = serde_json::from_value(claims)
        .map_err(|_| refuse("iss, sub, aud and exp are required (exp a number)"))?;
    // 3. Issued by the client, about itself.
    if claims.iss != client.id || claims.sub != client.id {
        return Err(refuse("iss and sub must both be the client_id"));
    }
    // 4. For this server, and nothing else.
    if !sole_audience(Some(&claims.aud), &svc.config.issuer) {
        return Err(refuse(
            "aud must be the issuer identifier, as a single string (not the token endpoint, \
             not an array)",
        ));
    }
    // 5. Short-lived, against our clock.
    if claims.exp <= now {
        return Err(refuse("it has expired"));
    }
    if claims.exp > now + MAX_LIFETIME_SECS {
        return Err(refuse(
            "exp is more than 5 minutes away; assertions must be short-lived",
        ));
    }
    if claims.nbf.is_some_and(|t| t > now + SKEW_SECS)
        || claims.iat.is_some_and(|t| t > now + SKEW_SECS)
    {
        return Err(refuse("it is not valid yet (nbf/iat in the future)"));
    }
    // 6. Single use.
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| refuse("jti is required (at most 256 characters)"))?;
    let fresh = svc
        .store
        .use_client_assertion(
            &client.id,
            &sha256_hex(&format!("{}\n{jti}", client.id)),
            claims.exp,
        )
        .await?;
    if !fresh {
        tracing::warn!(client = %client.id, "client assertion replayed");
        return Err(refuse("this assertion was already used (jti replayed)"));
    }
    Ok(())
}

/// The client's public keys: inline, or from its `jwks_uri` (cached, served stale while the
/// host fails: `outbound::key_sets`). An administrator's client's keys are trusted key sets,
/// fetched outside the budgets anonymous requests spend; a self-described client's (metadata
/// document, dynamic registration) are fetched within them. An unknown `kid` refetches the
/// set, at most once a minute per set.
async fn key_set(
    svc: ClientServices<'_>,
    client: &Client,
    kid: Option<&str>,
    now: i64,
) -> Result<JwkSet> {
    if let Some(jwks) = &client.jwks {
        return serde_json::from_str(jwks)
            .map_err(|_| refuse("the client's jwks is not a JWK Set"));
    }
    let Some(uri) = &client.jwks_uri else {
        return Err(refuse("the client has no public keys"));
    };
    let whose = if client.registration == Registration::Admin {
        Source::Trusted
    } else {
        Source::ClientNamed
    };
    let set = svc.cimd.key_set(uri, kid, whose, now).await;
    set.map_err(|e| match e {
        KeySetError::NotAUrl => refuse("the client's jwks_uri is not a URL"),
        KeySetError::Unreachable(why) => {
            refuse(&format!("its jwks_uri could not be fetched: {why}"))
        }
        KeySetError::NotAJwkSet => refuse("its jwks_uri did not return a JWK Set"),
    })
}
