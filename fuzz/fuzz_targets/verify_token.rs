//! Access-token verification at a resource server (`shared::verifier`, RFC 8725, RFC 9068):
//! arbitrary bytes never panic and never verify; a genuine token with a fuzzed payload or
//! header (same signature) never verifies.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use shared::verifier::{Verifier, VerifierConfig};

struct Fixture {
    rt: tokio::runtime::Runtime,
    verifier: Arc<Verifier>,
    token: String,
}

const ISS: &str = "http://127.0.0.1:9";
const AUD: &str = "http://127.0.0.1:9/mcp";

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (key, _) = authz::keys::SigningKey::generate(authz::keys::SigningAlg::Rs256).unwrap();
        let mut cfg = VerifierConfig::new(ISS, AUD);
        // Unknown kids must not trigger network traffic in the loop.
        cfg.min_refetch_interval = Duration::from_secs(86_400);
        let verifier = Verifier::new(cfg, reqwest::Client::new());
        let set = jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk().clone()] };
        verifier.install_keys(&set, Duration::from_secs(86_400));
        let now = { use shared::clock::Clock; shared::clock::SystemClock.now() };
        let claims = serde_json::json!({"iss": ISS, "sub": "usr_1", "aud": AUD, "exp": now + 86_400,
            "iat": now, "jti": "j", "client_id": "c", "scope": "notes:read"});
        let token = key.sign_jwt("at+jwt", &claims).unwrap();
        // Sanity: the genuine token verifies.
        rt.block_on(verifier.verify(&token)).unwrap();
        Fixture { rt, verifier, token }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else { return };
    let parts: Vec<&str> = f.token.split('.').collect();
    let candidate = match mode % 3 {
        // Raw bytes as a token.
        0 => String::from_utf8_lossy(rest).into_owned(),
        // The genuine signature over a fuzzed payload.
        1 => format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(rest), parts[2]),
        // A fuzzed header with the genuine payload and signature.
        _ => format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(rest), parts[1], parts[2]),
    };
    if candidate == f.token {
        return;
    }
    let result = f.rt.block_on(f.verifier.verify(&candidate));
    if let Ok(claims) = result {
        // Only a re-encoding of the genuine header/payload may verify (same signed bytes).
        let original = format!("{}.{}", parts[0], parts[1]);
        let (signed, _) = candidate.rsplit_once('.').unwrap();
        assert_eq!(signed, original, "a forged token verified: {claims:?}");
    }
});
