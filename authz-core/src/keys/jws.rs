//! The one JWS check for every JWT this server verifies: its own (ID token hints, logout
//! tokens it reads back: [`super::KeySet::verify_own`]), client assertions (RFC 7523 §3,
//! `clients::assertion`) and ID-JAGs (`protocol::id_jag`).
//!
//! Here only the signature and the rules that pick the key (RFC 7515 §5.2, RFC 8725 §3.1):
//! - the header's algorithm is one the caller allows (an asymmetric one for remote keys: never
//!   `none`, which `decode_header` refuses, nor HMAC keyed with a public key);
//! - the key is the one the header's `kid` names (or, without a `kid`, any key of the set),
//!   never a key published for encryption (`use: enc`, RFC 7517 §4.2) nor one whose
//!   `key_ops` (§4.3) leave out `verify`, and a key that states its own `alg` (§4.4) is used
//!   with that algorithm only;
//! - a header naming critical extensions (`crit`, RFC 7515 §4.1.11) is refused: this server
//!   understands none, and a recipient must reject what it does not understand;
//! - the payload is a JSON object.
//!
//! Every claim (`iss`, `aud`, `exp`…) is the caller's checklist, against the injected clock.

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::Value;

/// The algorithms a remote party may sign with: asymmetric ones only (RFC 8725 §3.1).
pub(crate) const ASYMMETRIC: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why a JWT's signature was not accepted by a key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No key of the set may verify it (its `kid` is not there, or only encryption keys or
    /// keys of another algorithm are).
    NoMatchingKey,
    /// A key matched, but the signature does not verify with it (or the payload is not a JSON
    /// object).
    BadSignature,
    /// The header lists critical extensions (`crit`), none of which this server implements.
    CriticalExtension,
}

/// The keys of `set` that may have signed a JWT with `header` (the module's key rules).
pub(crate) fn candidates<'a>(set: &'a JwkSet, header: &'a Header) -> impl Iterator<Item = &'a Jwk> {
    set.keys.iter().filter(move |k| {
        (header.kid.is_none() || k.common.key_id == header.kid)
            && k.common.public_key_use != Some(PublicKeyUse::Encryption)
            && k.common
                .key_operations
                .as_ref()
                .is_none_or(|ops| ops.contains(&KeyOperations::Verify))
            && k.common
                .key_algorithm
                .is_none_or(|a| key_algorithm_is(a, header.alg))
    })
}

/// Does a JWK's own `alg` name the algorithm `alg`?
fn key_algorithm_is(key: KeyAlgorithm, alg: Algorithm) -> bool {
    use {Algorithm as A, KeyAlgorithm as K};
    let named = match key {
        K::HS256 => A::HS256,
        K::HS384 => A::HS384,
        K::HS512 => A::HS512,
        K::ES256 => A::ES256,
        K::ES384 => A::ES384,
        K::RS256 => A::RS256,
        K::RS384 => A::RS384,
        K::RS512 => A::RS512,
        K::PS256 => A::PS256,
        K::PS384 => A::PS384,
        K::PS512 => A::PS512,
        K::EdDSA => A::EdDSA,
        // Encryption algorithms (RSA1_5, RSA-OAEP…) and any other name sign nothing.
        _ => return false,
    };
    named == alg
}

/// Verify `jwt`'s signature with a key of `set` (the module's key rules); its payload.
pub(crate) fn verify_with_set(
    jwt: &str,
    header: &Header,
    set: &JwkSet,
) -> Result<Value, SignatureError> {
    if names_critical_extensions(jwt) {
        return Err(SignatureError::CriticalExtension);
    }
    let mut keys = candidates(set, header).peekable();
    if keys.peek().is_none() {
        return Err(SignatureError::NoMatchingKey);
    }
    keys.filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| verify_signature(jwt, &key, header.alg))
        .ok_or(SignatureError::BadSignature)
}

/// Verify `jwt`'s signature with `key` under `alg` (and nothing else: no claim is checked);
/// its payload, when that is a JSON object.
pub fn verify_signature(jwt: &str, key: &DecodingKey, alg: Algorithm) -> Option<Value> {
    if names_critical_extensions(jwt) {
        return None;
    }
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(jwt, key, &v)
        .ok()
        .map(|data| data.claims)
        .filter(Value::is_object)
}

/// Does the JWS header carry `crit` (RFC 7515 §4.1.11)? (`jsonwebtoken`'s `Header` does not
/// keep it, so the raw header is read; an unreadable header fails verification anyway.)
fn names_critical_extensions(jwt: &str) -> bool {
    let Some(header) = jwt.split('.').next() else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|h| h.get("crit").is_some())
}

/// A string claim of a JWT's payload, **unverified**: only to know whose keys to verify it
/// with (the `iss` of an ID-JAG, the `sub` of a client assertion sent without `client_id`).
pub(crate) fn unverified_claim(jwt: &str, name: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?.as_str().map(str::to_owned)
}

/// Is `aud` exactly `expected`, as a single JSON string? The one audience rule for JWTs
/// addressed to this authorization server — client assertions and ID-JAGs
/// (draft-ietf-oauth-rfc7523bis: the issuer identifier as the sole audience value, a JSON
/// string, not a single-valued JSON array; Simple String Comparison, RFC 3986 §6.2.1).
pub(crate) fn sole_audience(aud: Option<&Value>, expected: &str) -> bool {
    aud.and_then(Value::as_str) == Some(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: Value) -> JwkSet {
        serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap()
    }

    fn header(alg: Algorithm, kid: Option<&str>) -> Header {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_owned);
        h
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn rsa(kid: &str, extra: Value) -> Value {
        let mut k = serde_json::json!({ "kty": "RSA", "kid": kid, "n": N, "e": "AQAB" });
        k.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        k
    }

    #[test]
    fn keys_are_chosen_by_kid_use_and_alg() {
        let keys = set(Value::Array(vec![
            rsa("sig", serde_json::json!({})),
            rsa("enc", serde_json::json!({ "use": "enc" })),
            rsa("ps", serde_json::json!({ "alg": "PS256" })),
            rsa("rs", serde_json::json!({ "alg": "RS256", "use": "sig" })),
            rsa("ops-enc", serde_json::json!({ "key_ops": ["encrypt"] })),
            rsa("ops-verify", serde_json::json!({ "key_ops": ["verify"] })),
        ]));
        let kids = |h: Header| {
            candidates(&keys, &h)
                .map(|k| k.common.key_id.clone().unwrap())
                .collect::<Vec<_>>()
        };
        // The kid names the key; an encryption key is never one.
        assert_eq!(kids(header(Algorithm::RS256, Some("sig"))), ["sig"]);
        assert!(kids(header(Algorithm::RS256, Some("enc"))).is_empty());
        assert!(kids(header(Algorithm::RS256, Some("other"))).is_empty());
        // key_ops without "verify" (RFC 7517 §4.3) is no signing key either (review 5, second
        // round, F3); with it, it is.
        assert!(kids(header(Algorithm::RS256, Some("ops-enc"))).is_empty());
        assert_eq!(
            kids(header(Algorithm::RS256, Some("ops-verify"))),
            ["ops-verify"]
        );
        // A key with its own alg is used with that alg only.
        assert_eq!(kids(header(Algorithm::PS256, Some("ps"))), ["ps"]);
        assert!(kids(header(Algorithm::RS256, Some("ps"))).is_empty());
        // No kid: every signing key the algorithm allows.
        assert_eq!(
            kids(header(Algorithm::RS256, None)),
            ["sig", "rs", "ops-verify"]
        );
    }

    #[test]
    fn every_key_algorithm_name_matches_its_algorithm() {
        for (key, alg) in [
            (KeyAlgorithm::RS256, Algorithm::RS256),
            (KeyAlgorithm::RS384, Algorithm::RS384),
            (KeyAlgorithm::PS256, Algorithm::PS256),
            (KeyAlgorithm::ES256, Algorithm::ES256),
            (KeyAlgorithm::ES384, Algorithm::ES384),
            (KeyAlgorithm::EdDSA, Algorithm::EdDSA),
        ] {
            assert!(key_algorithm_is(key, alg));
        }
        assert!(!key_algorithm_is(KeyAlgorithm::RS256, Algorithm::PS256));
        assert!(!key_algorithm_is(KeyAlgorithm::ES256, Algorithm::ES384));
    }

    #[test]
    fn unverified_claims_and_the_audience_rule() {
        let jwt = format!(
            "e30.{}.sig",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"iss":"a","n":1}"#)
        );
        assert_eq!(unverified_claim(&jwt, "iss").as_deref(), Some("a"));
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let crit = format!("{}.e30.sig", b64(r#"{"alg":"ES256","crit":["exp"]}"#));
        assert!(names_critical_extensions(&crit));
        assert!(!names_critical_extensions(&format!(
            "{}.e30.sig",
            b64(r#"{"alg":"ES256"}"#)
        )));
        assert_eq!(unverified_claim(&jwt, "n"), None);
        assert_eq!(unverified_claim("garbage", "iss"), None);
        let aud = serde_json::json!("https://as");
        assert!(sole_audience(Some(&aud), "https://as"));
        assert!(!sole_audience(
            Some(&serde_json::json!(["https://as"])),
            "https://as"
        ));
        assert!(!sole_audience(None, "https://as"));
    }
}
