//! Unit tests of the DPoP proof verifier (RFC 9449, RFC 7638 examples).

use super::replay::{Seen, Spend};
use super::*;

/// Run a future that never waits (the in-process replay store does no I/O).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the in-process replay store waited"),
    }
}

/// Check and spend, as a server does.
fn verify(
    v: &DpopVerifier,
    p: &str,
    r: &ProofRequest<'_>,
    nonce: Option<&dyn NonceCheck>,
    now: i64,
) -> Result<VerifiedProof, DpopError> {
    ready(v.verify(p, r, nonce, now))
}

const NOW: i64 = 1_800_000_000;
const URI: &str = "https://server.example.com/token";

fn req(uri: &str) -> ProofRequest<'_> {
    ProofRequest {
        method: "POST",
        uri,
        access_token: None,
    }
}

/// RFC 7638 §3.1: the example RSA key's thumbprint.
#[test]
fn rfc7638_thumbprint_example() {
    let jwk = serde_json::json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        thumbprint(&jwk, "RS256").unwrap().to_b64(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

/// RFC 9449 §6.1: the thumbprint of the examples' EC key is the `cnf.jkt` shown there.
#[test]
fn rfc9449_example_key_thumbprint() {
    let jwk = serde_json::json!({
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256"
    });
    assert_eq!(
        thumbprint(&jwk, "ES256").unwrap().to_b64(),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
}

/// RFC 9449 §7.1: the example `ath` of the example access token.
#[test]
fn rfc9449_ath_example() {
    assert_eq!(
        ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn htu_normalisation() {
    let n = |u| normalise_htu(u).unwrap();
    assert_eq!(n("HTTPS://Server.Example.COM:443/token"), n(URI));
    assert_eq!(n("https://server.example.com/token?x=1#f"), n(URI));
    assert_eq!(n("https://server.example.com/a/../token"), n(URI));
    assert_eq!(n("http://h:80"), "http://h/");
    assert_ne!(n("https://server.example.com:8443/token"), n(URI));
    assert_ne!(n("https://server.example.com/Token"), n(URI));
    assert!(normalise_htu("/token").is_none());
    assert!(normalise_htu("ftp://h/x").is_none());
}

#[test]
fn a_good_proof_verifies_and_binds_to_the_thumbprint() {
    let key = DpopKey::generate().unwrap();
    let v = DpopVerifier::new(60, 100);
    let p = key.proof("POST", URI, NOW, None, None);
    let ok = verify(&v, &p, &req(URI), None, NOW).unwrap();
    assert_eq!(&ok.jkt, key.jkt());
    // Saved and loaded, the key is the same key.
    let again = DpopKey::from_pkcs8(&key.to_pkcs8().unwrap()).unwrap();
    assert_eq!(again.jkt(), key.jkt());
}

fn refused(v: &DpopVerifier, p: &str, r: &ProofRequest<'_>, now: i64) -> String {
    match verify(v, p, r, None, now) {
        Err(DpopError::Invalid(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn each_check_refuses_and_its_positive_control_passes() {
    let key = DpopKey::generate().unwrap();
    let v = DpopVerifier::new(60, 100);
    // htm
    let p = key.proof("GET", URI, NOW, None, None);
    assert!(refused(&v, &p, &req(URI), NOW).contains("htm"));
    // htu
    let p = key.proof("POST", "https://other.example.com/token", NOW, None, None);
    assert!(refused(&v, &p, &req(URI), NOW).contains("htu"));
    // iat, both ways; at the edge it passes
    let p = key.proof("POST", URI, NOW - 61, None, None);
    assert!(refused(&v, &p, &req(URI), NOW).contains("iat"));
    let p = key.proof("POST", URI, NOW + 61, None, None);
    assert!(refused(&v, &p, &req(URI), NOW).contains("iat"));
    let p = key.proof("POST", URI, NOW - 60, None, None);
    verify(&v, &p, &req(URI), None, NOW).unwrap();
    let p = key.proof("POST", URI, i64::MIN, None, None);
    assert!(refused(&v, &p, &req(URI), NOW).contains("iat"));
    // jti replay
    let p = key.proof("POST", URI, NOW, None, None);
    verify(&v, &p, &req(URI), None, NOW).unwrap();
    assert!(refused(&v, &p, &req(URI), NOW).contains("already used"));
    // ath
    let with_token = ProofRequest {
        access_token: Some("token-a"),
        ..req(URI)
    };
    let p = key.proof("POST", URI, NOW, Some("token-b"), None);
    assert!(refused(&v, &p, &with_token, NOW).contains("ath"));
    let p = key.proof("POST", URI, NOW, None, None);
    assert!(refused(&v, &p, &with_token, NOW).contains("ath"));
    let p = key.proof("POST", URI, NOW, Some("token-a"), None);
    verify(&v, &p, &with_token, None, NOW).unwrap();
}

#[test]
fn header_rules() {
    let key = DpopKey::generate().unwrap();
    let v = DpopVerifier::new(60, 100);
    let claims = serde_json::json!({"jti": "j1", "htm": "POST", "htu": URI, "iat": NOW});
    let jwk = key.public_jwk().clone();
    let mut header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    // Positive control: the hand-built proof passes.
    verify(&v, &key.sign(&header, &claims), &req(URI), None, NOW).unwrap();
    let claims = serde_json::json!({"jti": "j2", "htm": "POST", "htu": URI, "iat": NOW});
    header["typ"] = "JWT".into();
    assert!(refused(&v, &key.sign(&header, &claims), &req(URI), NOW).contains("typ"));
    header["typ"] = "dpop+jwt".into();
    for alg in ["none", "HS256", "ES384"] {
        header["alg"] = alg.into();
        assert!(refused(&v, &key.sign(&header, &claims), &req(URI), NOW).contains("alg"));
    }
    header["alg"] = "ES256".into();
    header["jwk"]["d"] = "AAAA".into();
    assert!(refused(&v, &key.sign(&header, &claims), &req(URI), NOW).contains("private"));
    // Another key in the header: the signature does not verify.
    let other = DpopKey::generate().unwrap();
    header["jwk"] = other.public_jwk().clone();
    assert!(refused(&v, &key.sign(&header, &claims), &req(URI), NOW).contains("signature"));
    // An unsigned proof.
    let p = key.proof("POST", URI, NOW, None, None);
    let unsigned = format!("{}.", p.rsplit_once('.').unwrap().0);
    assert!(refused(&v, &unsigned, &req(URI), NOW).contains("signature"));
    for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        refused(&v, junk, &req(URI), NOW);
    }
}

#[test]
fn eddsa_and_rs256_proofs_verify() {
    use signature::KeyPair;
    let v = DpopVerifier::new(60, 100);
    let claims = serde_json::json!({"jti": "e1", "htm": "POST", "htu": URI, "iat": NOW});
    let sign = |header: &Value, f: &dyn Fn(&[u8]) -> Vec<u8>| {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = B64.encode(f(input.as_bytes()));
        format!("{input}.{sig}")
    };
    let ed = signature::Ed25519KeyPair::generate().unwrap();
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA",
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": B64.encode(ed.public_key().as_ref())}});
    let p = sign(&header, &|m| ed.sign(m).as_ref().to_vec());
    verify(&v, &p, &req(URI), None, NOW).unwrap();

    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let comps: aws_lc_rs::rsa::PublicKeyComponents<Vec<u8>> = rsa.public_key().into();
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "RS256",
        "jwk": {"kty": "RSA", "n": B64.encode(&comps.n), "e": B64.encode(&comps.e)}});
    let claims2 = serde_json::json!({"jti": "r1", "htm": "POST", "htu": URI, "iat": NOW});
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims2.to_string())
    );
    let mut sig = vec![0; rsa.public_modulus_len()];
    rsa.sign(
        &signature::RSA_PKCS1_SHA256,
        &rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let p = format!("{input}.{}", B64.encode(&sig));
    verify(&v, &p, &req(URI), None, NOW).unwrap();
}

#[test]
fn nonces_rotate_and_the_previous_window_is_accepted() {
    let n = NonceSource::new([7; 32], 300);
    let key = DpopKey::generate().unwrap();
    let v = DpopVerifier::new(60, 100);
    let p = key.proof("POST", URI, NOW, None, None);
    assert_eq!(
        verify(&v, &p, &req(URI), Some(&n), NOW).unwrap_err(),
        DpopError::UseNonce
    );
    let p = key.proof("POST", URI, NOW, None, Some("made-up"));
    assert_eq!(
        verify(&v, &p, &req(URI), Some(&n), NOW).unwrap_err(),
        DpopError::UseNonce
    );
    let current = n.current(NOW);
    let p = key.proof("POST", URI, NOW, None, Some(&current));
    verify(&v, &p, &req(URI), Some(&n), NOW).unwrap();
    assert!(n.accepts(&current, NOW + 300));
    assert!(!n.accepts(&current, NOW + 600));
    // Another key (another server) does not accept it.
    assert!(!NonceSource::new([8; 32], 300).accepts(&current, NOW));
}

/// The cache holds at most its bound under a flood, and entries go when their proofs expire.
#[test]
fn the_replay_cache_is_bounded_in_count_and_time() {
    let c = ReplayCache::new(64);
    let k = Jkt([1; 32]);
    for i in 0..10_000u32 {
        let _ = c.first_use(&Seen::of(&k, &i.to_string(), NOW + 61), NOW);
        assert!(c.len() <= 64, "grew past its bound");
    }
    assert_eq!(c.len(), 64);
    assert_eq!(
        c.first_use(&Seen::of(&k, "late", NOW + 122), NOW + 61),
        Spend::First
    );
    assert_eq!(c.len(), 1, "the expired entries were reclaimed");
}

/// Regression (issue 24, item 14): the cache evicted its oldest entry when full, live or not,
/// so 100 000 proofs of one's own flushed a captured proof out and it replayed. Now a full
/// cache refuses the new proof and forgets nothing live; expired entries are still reclaimed.
#[test]
fn item_14_a_full_replay_cache_refuses_instead_of_evicting_a_live_entry() {
    let c = ReplayCache::new(3);
    let k = Jkt([1; 32]);
    let seen = |jti, expires| Seen::of(&k, jti, expires);
    assert_eq!(c.first_use(&seen("captured", NOW + 61), NOW), Spend::First);
    assert_eq!(c.first_use(&seen("b", NOW + 70), NOW), Spend::First);
    assert_eq!(c.first_use(&seen("c", NOW + 80), NOW), Spend::First);
    // Full: the next proof is refused, with the time until the first entry expires.
    assert_eq!(
        c.first_use(&seen("flood", NOW + 71), NOW + 11),
        Spend::Full { retry_after: 50 }
    );
    assert_eq!(c.len(), 3);
    // The captured proof is still remembered: its replay is refused.
    assert_eq!(
        c.first_use(&seen("captured", NOW + 61), NOW + 11),
        Spend::Replayed
    );
    // Expired entries are reclaimed: at NOW + 61 the first one is gone, and there is room.
    assert_eq!(c.first_use(&seen("d", NOW + 121), NOW + 61), Spend::First);
    assert_eq!(c.len(), 3);
    assert_eq!(
        c.first_use(&seen("e", NOW + 121), NOW + 61),
        Spend::Full { retry_after: 9 }
    );
    assert_eq!(c.first_use(&seen("b", NOW + 70), NOW + 61), Spend::Replayed);
    // Later, everything expired goes at once.
    assert_eq!(c.first_use(&seen("f", NOW + 200), NOW + 130), Spend::First);
    assert_eq!(c.len(), 1);
    // Per key: the same jti under another key is another proof.
    let other = Seen::of(&Jkt([2; 32]), "f", NOW + 200);
    assert_eq!(c.first_use(&other, NOW + 130), Spend::First);
}

/// Issue 24, item 14: a proof is spent only by `spend` (a server spends it once its limits let
/// the request through), and a full store answers 503 `Retry-After` — or `use_dpop_nonce`
/// where the server issues nonces (RFC 9449 §8, §9).
#[test]
fn item_14_spending_is_a_step_of_its_own_and_full_is_refused() {
    let key = DpopKey::generate().unwrap();
    let v = DpopVerifier::new(60, 1);
    let p = key.proof("POST", URI, NOW, None, None);
    let checked = v.check(&p, &req(URI), None, NOW).unwrap();
    // Checked twice: not spent yet.
    v.check(&p, &req(URI), None, NOW).unwrap();
    ready(v.spend(&checked, NOW)).unwrap();
    assert!(refused(&v, &p, &req(URI), NOW).contains("already used"));
    // The store (one entry) is full until the first proof expires (iat + 60 s).
    let q = key.proof("POST", URI, NOW + 10, None, None);
    assert_eq!(
        verify(&v, &q, &req(URI), None, NOW + 10).unwrap_err(),
        DpopError::Unavailable { retry_after: 51 }
    );
    assert_eq!(
        DpopError::Unavailable { retry_after: 51 }.error_code(),
        crate::ErrorCode::TemporarilyUnavailable
    );
    // The refused proof was not spent: once there is room it is accepted.
    verify(&v, &q, &req(URI), None, NOW + 61).unwrap();
    // With nonces, a full store asks for a nonce instead.
    let v = DpopVerifier::new(60, 1).with_nonces(NonceSource::new([7; 32], 300));
    verify(
        &v,
        &key.proof("POST", URI, NOW, None, None),
        &req(URI),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        verify(
            &v,
            &key.proof("POST", URI, NOW, None, None),
            &req(URI),
            None,
            NOW
        )
        .unwrap_err(),
        DpopError::UseNonce
    );
}
