//! DPoP authorization code binding (RFC 9449 §10, §10.1): `dpop_jkt` on `/authorize`, or a
//! DPoP proof sent to `/par`, binds the code to a key; the code is then redeemed only with a
//! proof signed by that key. A stolen code is worth nothing without the key. Each refusal has
//! its positive control beside it.

use serde_json::Value;
use shared::dpop::DpopKey;
use testkit::agent::FormAgent;
use testkit::both_backends;

use crate::support::{Backend, CB, TestApp, expect_error, jwt_claims, pkce, query};
use authz::store::AuthMethod;

both_backends!(
    dpop_jkt_binds_the_code_to_the_key,
    malformed_dpop_jkt_is_refused_and_ignored_with_dpop_off,
    a_proof_at_par_binds_the_code,
    par_refuses_a_dpop_jkt_that_is_not_the_proof_key,
);

const PW: &str = "correct horse battery staple";
const CLIENT: &str = "native-app";

async fn setup(backend: Backend, dpop: bool) -> TestApp {
    let app = TestApp::spawn_with(backend, |c| c.dpop.enabled = dpop).await;
    app.user("alice", PW, "user").await;
    app.code_client(CLIENT, AuthMethod::None, "notes:read offline_access")
        .await;
    app
}

/// Sign alice in through `url` (the real pages); the code.
async fn code_via(app: &TestApp, url: &str) -> String {
    let back = app
        .browser_sign_in(&FormAgent::new(), url, "alice", PW)
        .await;
    back["code"].clone()
}

/// A code for a front-channel request with `extra` parameters; (code, verifier).
async fn front_code(app: &TestApp, extra: &[(&str, &str)]) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut params = vec![("scope", "notes:read")];
    params.extend_from_slice(extra);
    let url = app.authorize_url(CLIENT, &challenge, &params);
    (code_via(app, &url).await, verifier)
}

/// Redeem `code` at `/token`, with a proof by `key` when given.
async fn redeem(
    app: &TestApp,
    code: &str,
    verifier: &str,
    key: Option<&DpopKey>,
) -> reqwest::Response {
    let mut req = app.http.post(app.url("/token")).form(&[
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT),
        ("code", code),
        ("redirect_uri", CB),
        ("code_verifier", verifier),
    ]);
    if let Some(k) = key {
        req = req.header(
            "DPoP",
            k.proof("POST", &app.url("/token"), app.state.now(), None, None),
        );
    }
    req.send().await.unwrap()
}

/// A successful redemption: the access token is bound to `key` (`cnf.jkt`, `token_type`).
async fn expect_bound(resp: reqwest::Response, key: &DpopKey) {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(token)["cnf"]["jkt"], key.jkt().to_b64());
}

/// A redemption refused because the code is bound to another key (or the proof is missing).
async fn refused_as_bound(resp: reqwest::Response) {
    let d = expect_error(resp, 400, "invalid_grant").await;
    assert!(d.contains("bound to a DPoP key"), "{d}");
}

async fn dpop_jkt_binds_the_code_to_the_key(backend: Backend) {
    let app = setup(backend, true).await;
    let key = DpopKey::generate().unwrap();
    let thief = DpopKey::generate().unwrap();
    let jkt = key.jkt().to_b64();
    // Stored with the code.
    let (code, verifier) = front_code(&app, &[("dpop_jkt", &jkt)]).await;
    let stored = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM auth_codes WHERE dpop_jkt = '{jkt}'"
        ))
        .await;
    assert_eq!(stored, 1);
    // Another key's proof: refused (and the code is spent).
    refused_as_bound(redeem(&app, &code, &verifier, Some(&thief)).await).await;
    // No proof at all: refused.
    let (code, verifier) = front_code(&app, &[("dpop_jkt", &jkt)]).await;
    refused_as_bound(redeem(&app, &code, &verifier, None).await).await;
    // Positive control: the named key's proof redeems it, and the token is bound to it.
    let (code, verifier) = front_code(&app, &[("dpop_jkt", &jkt)]).await;
    expect_bound(redeem(&app, &code, &verifier, Some(&key)).await, &key).await;
    // A code without dpop_jkt is not bound: any key (or none) may redeem it.
    let (code, verifier) = front_code(&app, &[]).await;
    expect_bound(redeem(&app, &code, &verifier, Some(&thief)).await, &thief).await;
}

async fn malformed_dpop_jkt_is_refused_and_ignored_with_dpop_off(backend: Backend) {
    let app = setup(backend, true).await;
    let (_, challenge) = pkce();
    for bad in ["not-a-thumbprint", "AAAA", &"A".repeat(44)] {
        let url = app.authorize_url(
            CLIENT,
            &challenge,
            &[("scope", "notes:read"), ("dpop_jkt", bad)],
        );
        let r = app.http.get(&url).send().await.unwrap();
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(loc.starts_with(CB), "{loc}");
        let q = query(&loc);
        assert_eq!(q["error"], "invalid_request", "{bad}: {loc}");
        assert!(q["error_description"].contains("dpop_jkt"), "{loc}");
    }
    // Positive control: a well-formed one gets the sign-in page.
    let jkt = DpopKey::generate().unwrap().jkt().to_b64();
    let url = app.authorize_url(
        CLIENT,
        &challenge,
        &[("scope", "notes:read"), ("dpop_jkt", &jkt)],
    );
    let page = FormAgent::new().get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/login\""));

    // With DPoP off the parameter is unknown, so ignored (RFC 6749 §3.1): Bearer tokens.
    let off = setup(backend, false).await;
    let (code, verifier) = front_code(&off, &[("dpop_jkt", "ignored-when-off")]).await;
    let r = redeem(&off, &code, &verifier, None).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer", "{body}");
}

/// Push the code request to `/par` for the public client, with a proof by `key` and the
/// `extra` parameters.
async fn push(
    app: &TestApp,
    challenge: &str,
    key: Option<&DpopKey>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("client_id", CLIENT),
        ("response_type", "code"),
        ("redirect_uri", CB),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("scope", "notes:read"),
        ("state", "st-dpop"),
    ];
    form.extend_from_slice(extra);
    let mut req = app.http.post(app.url("/par")).form(&form);
    if let Some(k) = key {
        req = req.header(
            "DPoP",
            k.proof("POST", &app.url("/par"), app.state.now(), None, None),
        );
    }
    req.send().await.unwrap()
}

/// Push with a proof by `key`, sign in through the request_uri; (code, verifier).
async fn pushed_code(app: &TestApp, key: &DpopKey) -> (String, String) {
    let (verifier, challenge) = pkce();
    let r = push(app, &challenge, Some(key), &[]).await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let uri: String =
        form_urlencoded::byte_serialize(body["request_uri"].as_str().unwrap().as_bytes()).collect();
    let url = app.url(&format!("/authorize?client_id={CLIENT}&request_uri={uri}"));
    (code_via(app, &url).await, verifier)
}

async fn a_proof_at_par_binds_the_code(backend: Backend) {
    let app = setup(backend, true).await;
    let key = DpopKey::generate().unwrap();
    let thief = DpopKey::generate().unwrap();
    // RFC 9449 §10.1: the proof's key becomes the code's dpop_jkt.
    let (code, verifier) = pushed_code(&app, &key).await;
    refused_as_bound(redeem(&app, &code, &verifier, Some(&thief)).await).await;
    // Positive control: the key that pushed redeems it.
    let (code, verifier) = pushed_code(&app, &key).await;
    expect_bound(redeem(&app, &code, &verifier, Some(&key)).await, &key).await;
    // A proof for another endpoint is refused at /par.
    let (_, challenge) = pkce();
    let wrong_htu = key.proof("POST", &app.url("/token"), app.state.now(), None, None);
    let r = app
        .http
        .post(app.url("/par"))
        .header("DPoP", wrong_htu)
        .form(&[
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", CB),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_dpop_proof").await;
}

async fn par_refuses_a_dpop_jkt_that_is_not_the_proof_key(backend: Backend) {
    let app = setup(backend, true).await;
    let key = DpopKey::generate().unwrap();
    let other = DpopKey::generate().unwrap();
    let (_, challenge) = pkce();
    let mismatch = other.jkt().to_b64();
    let r = push(&app, &challenge, Some(&key), &[("dpop_jkt", &mismatch)]).await;
    let d = expect_error(r, 400, "invalid_dpop_proof").await;
    assert!(d.contains("dpop_jkt"), "{d}");
    // Positive controls: the same key twice, and dpop_jkt alone (no proof), are accepted.
    let same = key.jkt().to_b64();
    let r = push(&app, &challenge, Some(&key), &[("dpop_jkt", &same)]).await;
    assert_eq!(r.status(), 201);
    let r = push(&app, &challenge, None, &[("dpop_jkt", &mismatch)]).await;
    assert_eq!(r.status(), 201);
}
