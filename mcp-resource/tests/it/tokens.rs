//! Key rotation at `authz` picked up without a restart, and unknown-kid floods that must not
//! become JWKS fetch floods. (Forged and misdirected tokens: `attacks.rs`.)

use serde_json::json;

use crate::support::{Backend, System, assert_rejected, b64};
use testkit::both_backends;

both_backends!(
    key_rotation_is_picked_up_live,
    bogus_kids_do_not_flood_the_issuer
);

async fn key_rotation_is_picked_up_live(backend: Backend) {
    let sys = System::start_with(backend, |c| c.jwks_min_refetch_secs = 0).await;
    let before = sys.user_token("testuser").await;
    assert_eq!(
        sys.post(Some(&before), &crate::support::initialize())
            .await
            .status(),
        200
    );
    let new_kid = authz::admin::rotate_keys(&sys.authz, "test", authz::keys::SigningAlg::Es256)
        .await
        .unwrap();
    let after = sys.user_token("testuser").await;
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.unwrap(),
        new_kid
    );
    assert_eq!(
        sys.post(Some(&after), &crate::support::initialize())
            .await
            .status(),
        200,
        "new key picked up"
    );
    assert_eq!(
        sys.post(Some(&before), &crate::support::initialize())
            .await
            .status(),
        200,
        "old key still valid"
    );
}

async fn bogus_kids_do_not_flood_the_issuer(backend: Backend) {
    let sys = System::start(backend).await;
    let good = sys.user_token("testuser").await;
    let parts: Vec<&str> = good.split('.').collect();
    let before = sys.mcp.verifier.jwks_fetches();
    for i in 0..25 {
        let header = b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": format!("bogus-{i}")}));
        assert_rejected(
            &sys,
            &format!("{header}.{}.{}", parts[1], parts[2]),
            "bogus kid",
        )
        .await;
    }
    assert!(
        sys.mcp.verifier.jwks_fetches() - before <= 1,
        "at most one refetch per interval"
    );
}
