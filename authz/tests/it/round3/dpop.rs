//! Issue 24, items 10 and 14 at the authorization server (RFC 9449 §7): the management API
//! applies the DPoP binding of a token like every other resource endpoint of this server — a
//! bound token is used only under the `DPoP` scheme with a proof for the request (`htm`, `htu`,
//! `ath`) signed by the key named in `cnf.jkt` — and a proof is used once.

use authz::store::{AuthMethod, GrantType};
use serde_json::{Value, json};
use shared::dpop::DpopKey;

use crate::password::ALICE_PW;
use crate::support::{Backend, TestApp, expect_error, jwt_claims};
use testkit::both_backends;

both_backends!(
    item_10_dpop_bound_token_as_bearer_is_refused_by_the_management_api,
    item_10_management_api_checks_the_proof_of_a_bound_token,
);

/// A first-party public client for the management API (password grant) and the user alice.
async fn setup(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    let api = app.state.config.management_audience();
    app.client(
        "console-cli",
        AuthMethod::None,
        &[GrantType::Password],
        "keys:write notes:read",
        &[api.as_str()],
    )
    .await;
    app.user("alice", ALICE_PW, "user").await;
    app
}

/// alice's management-API token; bound to `key` when given (a proof at the token endpoint).
async fn api_token(app: &TestApp, key: Option<&DpopKey>) -> String {
    let api = app.state.config.management_audience();
    let mut req = app.http.post(app.url("/token")).form(&[
        ("grant_type", "password"),
        ("client_id", "console-cli"),
        ("username", "alice"),
        ("password", ALICE_PW),
        ("scope", "keys:write notes:read"),
        ("resource", api.as_str()),
    ]);
    if let Some(k) = key {
        let proof = k.proof("POST", &app.url("/token"), app.state.now(), None, None);
        req = req.header("DPoP", proof);
    }
    let body: Value = req.send().await.unwrap().json().await.unwrap();
    let token = body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_owned();
    assert_eq!(jwt_claims(&token)["aud"], api.as_str());
    assert_eq!(
        jwt_claims(&token)["cnf"]["jkt"].as_str(),
        key.map(|k| k.jkt().to_b64()).as_deref()
    );
    token
}

/// `POST /api/v1/api-keys` with `Authorization: <scheme> <token>` and an optional proof.
async fn create_key(
    app: &TestApp,
    scheme: &str,
    token: &str,
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url("/api/v1/api-keys"))
        .header("authorization", format!("{scheme} {token}"))
        .json(&json!({ "name": "ci", "scope": "notes:read" }));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

/// Every `WWW-Authenticate` value of a response.
fn challenges(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

async fn keys_of_alice(app: &TestApp) -> i64 {
    app.sql_count("SELECT COUNT(*) FROM clients WHERE owner_id IS NOT NULL")
        .await
}

/// Regression (issue 24, item 10): a DPoP-bound token for `<issuer>/api`, sent as a plain
/// bearer token, created a 90-day API key — the management API did not look at `cnf`.
async fn item_10_dpop_bound_token_as_bearer_is_refused_by_the_management_api(backend: Backend) {
    let app = setup(backend).await;
    let key = DpopKey::generate().unwrap();
    let bound = api_token(&app, Some(&key)).await;

    let r = create_key(&app, "Bearer", &bound, None).await;
    assert_eq!(r.status(), 401, "a bound token used as a bearer token");
    let all = challenges(&r);
    assert!(
        all.iter().any(|c| c.starts_with("DPoP algs=")),
        "a DPoP challenge: {all:?}"
    );
    let d = expect_error(r, 401, "invalid_token").await;
    assert!(d.contains("DPoP-bound"), "{d}");
    // A proof beside the Bearer scheme does not make it acceptable either (RFC 9449 §7.1: the
    // bound token goes under the DPoP scheme).
    let url = app.url("/api/v1/api-keys");
    let p = key.proof("POST", &url, app.state.now(), Some(&bound), None);
    expect_error(
        create_key(&app, "Bearer", &bound, Some(p)).await,
        401,
        "invalid_token",
    )
    .await;
    // The same for the other routes (one rule for the whole API).
    let r = app
        .http
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(&bound)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_token").await;
    assert_eq!(keys_of_alice(&app).await, 0, "no key was created");

    // Positive control: an unbound token of the same client as Bearer creates a key.
    let plain = api_token(&app, None).await;
    let r = create_key(&app, "Bearer", &plain, None).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert!(created["client_secret"].is_string(), "{created}");
    assert_eq!(keys_of_alice(&app).await, 1);
}

/// Issue 24, item 10: the management API checks the proof of a bound token as UserInfo and the
/// MCP server do — wrong key, `ath`, `htu`, `htm` and a replay are each refused; the correct
/// proof creates a key.
async fn item_10_management_api_checks_the_proof_of_a_bound_token(backend: Backend) {
    let app = setup(backend).await;
    let key = DpopKey::generate().unwrap();
    let bound = api_token(&app, Some(&key)).await;
    let url = app.url("/api/v1/api-keys");
    let now = app.state.now();

    // Another key than cnf.jkt: the token is not this presenter's.
    let thief = DpopKey::generate().unwrap();
    let p = thief.proof("POST", &url, now, Some(&bound), None);
    let r = create_key(&app, "DPoP", &bound, Some(p)).await;
    let all = challenges(&r);
    assert!(
        all.iter()
            .any(|c| c.starts_with("DPoP ") && c.contains("invalid_token")),
        "the error is in the DPoP challenge: {all:?}"
    );
    let d = expect_error(r, 401, "invalid_token").await;
    assert!(d.contains("another key"), "{d}");
    // A proof made for another token (ath), another URL (htu), another method (htm).
    let wrong = [
        (
            key.proof("POST", &url, now, Some("another token"), None),
            "ath",
        ),
        (
            key.proof("POST", &app.url("/userinfo"), now, Some(&bound), None),
            "htu",
        ),
        (key.proof("GET", &url, now, Some(&bound), None), "htm"),
        (key.proof("POST", &url, now, None, None), "ath"),
    ];
    for (p, what) in wrong {
        let r = create_key(&app, "DPoP", &bound, Some(p)).await;
        let www = challenges(&r).join(" | ");
        assert!(www.contains("DPoP algs="), "{www}");
        let d = expect_error(r, 401, "invalid_dpop_proof").await;
        assert!(d.contains(what), "{what}: {d}");
    }
    // The DPoP scheme without a proof.
    let d = expect_error(
        create_key(&app, "DPoP", &bound, None).await,
        401,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("exactly one"), "{d}");
    assert_eq!(keys_of_alice(&app).await, 0);

    // Positive control: the bound token with a proof for this request by its key.
    let good = key.proof("POST", &url, now, Some(&bound), None);
    let r = create_key(&app, "DPoP", &bound, Some(good.clone())).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert!(created["client_secret"].is_string(), "{created}");
    assert_eq!(keys_of_alice(&app).await, 1);
    // The same proof again: a replay.
    let d = expect_error(
        create_key(&app, "DPoP", &bound, Some(good)).await,
        401,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("already used"), "{d}");
    // GET with its own proof lists the key.
    let r = app
        .http
        .get(&url)
        .header("authorization", format!("DPoP {bound}"))
        .header("DPoP", key.proof("GET", &url, now, Some(&bound), None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An unbound token under the DPoP scheme is refused; as Bearer it works (above).
    let plain = api_token(&app, None).await;
    let p = key.proof("POST", &url, now, Some(&plain), None);
    let d = expect_error(
        create_key(&app, "DPoP", &plain, Some(p)).await,
        401,
        "invalid_token",
    )
    .await;
    assert!(d.contains("not DPoP-bound"), "{d}");
    assert_eq!(keys_of_alice(&app).await, 1);
}
