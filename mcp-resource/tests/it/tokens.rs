//! Tokens the MCP server must refuse (RFC 8725, RFC 9068 §4), and key rotation at `authz`
//! picked up without a restart.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::support::{Backend, System, call, challenge_params};
use testkit::both_backends;

both_backends!(
    forged_and_misdirected_tokens_are_rejected,
    key_rotation_is_picked_up_live,
    bogus_kids_do_not_flood_the_issuer
);

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn claims(iss: &str, aud: &str) -> Value {
    use authz::clock::Clock;
    let now = authz::clock::SystemClock.now();
    json!({"iss": iss, "sub": "usr_forged", "aud": aud, "exp": now + 300, "iat": now, "jti": "j",
           "client_id": "mcp-cli", "scope": "profile:read notes:read notes:write", "roles": ["admin"],
           "preferred_username": "forged"})
}

async fn assert_rejected(sys: &System, token: &str, what: &str) {
    let r = sys
        .post(Some(token), &call("get_user_profile", json!({})))
        .await;
    assert_eq!(r.status(), 401, "{what} must be rejected");
    let p = challenge_params(r.headers()["www-authenticate"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_token", "{what}");
}

async fn forged_and_misdirected_tokens_are_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let key = sys.authz.keys.current().active.clone();
    let kid = key.kid().to_owned();
    let good = sys.user_token("admin").await;
    let r = sys.post(Some(&good), &crate::support::initialize()).await;
    assert_eq!(r.status(), 200, "a genuine token works");

    // Expired: issued an hour ago by authz's (injected) clock.
    sys.clock.advance(-3600);
    let expired = sys.user_token("admin").await;
    sys.clock.advance(3600);
    assert_rejected(&sys, &expired, "expired token").await;

    // Wrong audience: a real token for another resource (no passthrough).
    let (_, secret) = authz::admin::add_client(
        &sys.authz,
        "test",
        authz::admin::NewClient {
            id: Some("other".into()),
            name: "Other API client".into(),
            auth_method: authz::store::AuthMethod::ClientSecretBasic,
            grant_types: vec![authz::store::GrantType::ClientCredentials],
            redirect_uris: vec![],
            scopes: "profile:read".into(),
            resources: vec!["https://api.other.example".into()],
            always_issue_refresh: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let other = sys
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://api.other.example"),
            ],
            Some(("other", secret.unwrap().expose())),
        )
        .await;
    assert_rejected(&sys, &other, "token for another audience").await;

    // Wrong issuer, though signed by the right key.
    let t = key
        .sign_jwt("at+jwt", &claims("http://evil.example", &sys.mcp_url))
        .unwrap();
    assert_rejected(&sys, &t, "wrong issuer").await;

    // Tampered payload / wrong signature.
    let parts: Vec<&str> = good.split('.').collect();
    let escalated = b64(&claims(&sys.authz_url, &sys.mcp_url));
    assert_rejected(
        &sys,
        &format!("{}.{escalated}.{}", parts[0], parts[2]),
        "tampered payload",
    )
    .await;
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 0x55;
    assert_rejected(
        &sys,
        &format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig)),
        "bad signature",
    )
    .await;

    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        parts[1]
    );
    assert_rejected(&sys, &none, "alg none").await;

    // HS256 keyed with the RSA public key (algorithm confusion).
    let jwks: Value = sys
        .http
        .get(format!("{}/.well-known/jwks.json", sys.authz_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.clone());
    let hs = jsonwebtoken::encode(
        &h,
        &claims(&sys.authz_url, &sys.mcp_url),
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    )
    .unwrap();
    assert_rejected(&sys, &hs, "HS256 with the public key").await;

    // Unknown kid (a key the issuer never published), and jku/jwk headers pointing elsewhere.
    let (rogue, _) = authz::keys::SigningKey::generate(authz::keys::SigningAlg::Rs256).unwrap();
    let t = rogue
        .sign_jwt("at+jwt", &claims(&sys.authz_url, &sys.mcp_url))
        .unwrap();
    assert_rejected(&sys, &t, "unknown kid").await;
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": rogue.kid(), "jku": "http://evil.example/jwks",
                        "jwk": serde_json::to_value(rogue.public_jwk()).unwrap()});
    let input = format!(
        "{}.{}",
        b64(&header),
        b64(&claims(&sys.authz_url, &sys.mcp_url))
    );
    let t = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(rogue.sign(input.as_bytes()).unwrap())
    );
    assert_rejected(&sys, &t, "embedded jwk / jku").await;

    // An ID-token-shaped JWT (typ JWT) signed by the real key is not an access token.
    let t = key
        .sign_jwt("JWT", &claims(&sys.authz_url, &sys.mcp_url))
        .unwrap();
    assert_rejected(&sys, &t, "ID token as access token").await;

    // Garbage and truncation.
    assert_rejected(&sys, "a.b.c", "garbage").await;
    assert_rejected(&sys, &good[..good.len() - 20], "truncated").await;
}

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
