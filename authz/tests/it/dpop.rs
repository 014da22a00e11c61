//! DPoP at the authorization server (RFC 9449 §5, §7, §8): bound tokens from every grant that
//! issues them, each refusal of a proof beside its positive control, clients that must use
//! DPoP, server nonces, public-client refresh tokens bound to the key, and UserInfo.
//! The client side is built here: an ES256 key (aws-lc-rs) signing proofs
//! (`shared::dpop::DpopKey`).

use authz::store::{AuthMethod, ClientSettings, GrantType};
use serde_json::{Value, json};
use shared::dpop::{DpopKey, ProofClaims};

use crate::password::ALICE_PW;
use crate::support::{Backend, MCP, TestApp, expect_error, jwt_claims};
use testkit::both_backends;

both_backends!(
    metadata_lists_dpop_only_when_enabled,
    every_grant_binds_its_token_to_the_proof_key,
    token_endpoint_refuses_bad_proofs,
    a_dpop_bound_client_must_send_a_proof,
    nonce_required_then_accepted,
    public_client_refresh_is_bound_to_the_key,
    userinfo_wants_the_dpop_scheme_for_bound_tokens,
);

async fn setup(backend: Backend) -> TestApp {
    setup_with(backend, |_| {}).await
}

async fn setup_with(backend: Backend, tweak: impl FnOnce(&mut authz::config::Config)) -> TestApp {
    let app = TestApp::spawn_with(backend, tweak).await;
    app.client(
        "cli",
        AuthMethod::None,
        &[GrantType::Password, GrantType::RefreshToken],
        "openid profile:read notes:read offline_access",
        &[MCP],
    )
    .await;
    app.user("alice", ALICE_PW, "user").await;
    app
}

fn token_url(app: &TestApp) -> String {
    app.url("/token")
}

/// A proof for `POST /token` now.
fn proof(app: &TestApp, key: &DpopKey) -> String {
    key.proof("POST", &token_url(app), app.state.now(), None, None)
}

const PASSWORD: &[(&str, &str)] = &[
    ("grant_type", "password"),
    ("client_id", "cli"),
    ("username", "alice"),
    ("password", ALICE_PW),
    ("scope", "notes:read offline_access"),
];

async fn post_token(app: &TestApp, form: &[(&str, &str)], dpop: Option<&str>) -> reqwest::Response {
    let mut req = app.http.post(token_url(app)).form(form);
    if let Some(p) = dpop {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn ok_json(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "body: {body}");
    body
}

async fn metadata_lists_dpop_only_when_enabled(backend: Backend) {
    let app = setup(backend).await;
    let m: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        m["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );
    drop(app);
    let off = setup_with(backend, |c| c.dpop.enabled = false).await;
    let m: Value = off
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(m.get("dpop_signing_alg_values_supported").is_none(), "{m}");
    // Off: the header is ignored (RFC 9449 §5), the token is a plain bearer token.
    let key = DpopKey::generate().unwrap();
    let t = ok_json(post_token(&off, PASSWORD, Some(&proof(&off, &key))).await).await;
    assert_eq!(t["token_type"], "Bearer");
    assert!(
        jwt_claims(t["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

async fn every_grant_binds_its_token_to_the_proof_key(backend: Backend) {
    let app = setup(backend).await;
    let key = DpopKey::generate().unwrap();
    // Positive control: without a proof, a Bearer token without cnf.
    let t = ok_json(post_token(&app, PASSWORD, None).await).await;
    assert_eq!(t["token_type"], "Bearer");
    assert!(
        jwt_claims(t["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
    // Password grant with a proof.
    let t = ok_json(post_token(&app, PASSWORD, Some(&proof(&app, &key))).await).await;
    assert_eq!(t["token_type"], "DPoP");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["cnf"]["jkt"], key.jkt().to_b64());
    // Introspection shows the binding (RFC 9449 §6.2).
    let rs = app.exchange_client("notes:read").await;
    let i = app.introspect(&rs, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], key.jkt().to_b64());

    // client_credentials, a confidential client.
    let secret = app.bot("notes:read").await;
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "notes:read"),
    ];
    let r = app
        .http
        .post(token_url(&app))
        .basic_auth("bot", Some(&secret))
        .form(&form)
        .header("DPoP", proof(&app, &key))
        .send()
        .await
        .unwrap();
    let t = ok_json(r).await;
    assert_eq!(t["token_type"], "DPoP");
    assert_eq!(
        jwt_claims(t["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt().to_b64()
    );
    // Refresh (below, with the refresh binding) and the code grant go through the same
    // issuer call with the request's key.
}

async fn token_endpoint_refuses_bad_proofs(backend: Backend) {
    let app = setup(backend).await;
    let key = DpopKey::generate().unwrap();
    let now = app.state.now();
    let url = token_url(&app);
    let with = |htm: &'static str, htu: String, iat: i64| {
        let key = &key;
        move || key.proof(htm, &htu, iat, None, None)
    };
    // Positive control.
    ok_json(post_token(&app, PASSWORD, Some(&with("POST", url.clone(), now)())).await).await;
    // Wrong htm.
    let d = expect_error(
        post_token(&app, PASSWORD, Some(&with("GET", url.clone(), now)())).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("htm"), "{d}");
    // Wrong htu (another endpoint of this server; another host).
    for htu in [
        app.url("/userinfo"),
        "https://evil.example/token".to_owned(),
    ] {
        let d = expect_error(
            post_token(&app, PASSWORD, Some(&with("POST", htu, now)())).await,
            400,
            "invalid_dpop_proof",
        )
        .await;
        assert!(d.contains("htu"), "{d}");
    }
    // htu normalised: the same URL in other case with a query still matches.
    let loud = url.replace("http://", "HTTP://") + "?x=1";
    ok_json(post_token(&app, PASSWORD, Some(&with("POST", loud, now)())).await).await;
    // Stale iat (and one from the future); at the window's edge it passes.
    for iat in [now - 61, now + 61] {
        let d = expect_error(
            post_token(&app, PASSWORD, Some(&with("POST", url.clone(), iat)())).await,
            400,
            "invalid_dpop_proof",
        )
        .await;
        assert!(d.contains("iat"), "{d}");
    }
    ok_json(post_token(&app, PASSWORD, Some(&with("POST", url.clone(), now - 59)())).await).await;
    // Replayed jti: the same proof twice.
    let once = with("POST", url.clone(), now)();
    ok_json(post_token(&app, PASSWORD, Some(&once)).await).await;
    let d = expect_error(
        post_token(&app, PASSWORD, Some(&once)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("already used"), "{d}");
    // A forged signature, an HMAC "proof", two DPoP headers: refused, never a 500.
    let good = with("POST", url.clone(), now)();
    let (input, _) = good.rsplit_once('.').unwrap();
    let forged = format!("{input}.AAAA");
    expect_error(
        post_token(&app, PASSWORD, Some(&forged)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let hs = key.sign(
        &json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()}),
        &json!({"jti": "x", "htm": "POST", "htu": url, "iat": now}),
    );
    expect_error(
        post_token(&app, PASSWORD, Some(&hs)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let r = app
        .http
        .post(token_url(&app))
        .form(PASSWORD)
        .header("DPoP", with("POST", url.clone(), now)())
        .header("DPoP", with("POST", url.clone(), now)())
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_dpop_proof").await;
    // A proof carrying a jti someone else used under another key is a different proof.
    let other = DpopKey::generate().unwrap();
    let fixed = |k: &DpopKey| {
        k.proof_with(&ProofClaims {
            htm: "POST",
            htu: &url,
            iat: now,
            jti: Some("same-jti"),
            ..Default::default()
        })
    };
    ok_json(post_token(&app, PASSWORD, Some(&fixed(&key))).await).await;
    ok_json(post_token(&app, PASSWORD, Some(&fixed(&other))).await).await;
    expect_error(
        post_token(&app, PASSWORD, Some(&fixed(&key))).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // No proof, token, or description ever reaches the audit log.
    let events = serde_json::to_string(&app.audit_events().await).unwrap();
    assert!(!events.contains(&once), "a proof leaked into the audit log");
}

async fn a_dpop_bound_client_must_send_a_proof(backend: Backend) {
    let app = setup(backend).await;
    authz::identity::admin::add_client(
        app.state.client_services(),
        "test",
        Some("bound".into()),
        ClientSettings {
            name: "always DPoP".into(),
            auth_method: AuthMethod::None,
            grant_types: vec![GrantType::Password],
            scopes: shared::ScopeSet::parse("notes:read").unwrap(),
            resources: vec![MCP.into()],
            dpop_bound_access_tokens: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let form = [
        ("grant_type", "password"),
        ("client_id", "bound"),
        ("username", "alice"),
        ("password", ALICE_PW),
        ("scope", "notes:read"),
    ];
    let d = expect_error(
        post_token(&app, &form, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("must send a DPoP proof"), "{d}");
    // Positive control: with a proof.
    let key = DpopKey::generate().unwrap();
    let t = ok_json(post_token(&app, &form, Some(&proof(&app, &key))).await).await;
    assert_eq!(t["token_type"], "DPoP");

    // RFC 7591: registered with dpop_bound_access_tokens, echoed and enforced.
    let r = app
        .http
        .post(app.url("/register"))
        .json(&json!({
            "client_name": "DPoP app",
            "redirect_uris": ["http://127.0.0.1:33418/cb"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "dpop_bound_access_tokens": true,
        }))
        .send()
        .await
        .unwrap();
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["dpop_bound_access_tokens"], true, "{c}");
    let id = c["client_id"].as_str().unwrap();
    let stored = app.state.store.get_client(id).await.unwrap().unwrap();
    assert!(stored.dpop_bound_access_tokens);
}

async fn nonce_required_then_accepted(backend: Backend) {
    let app = setup_with(backend, |c| c.dpop.nonce = true).await;
    let key = DpopKey::generate().unwrap();
    let r = post_token(&app, PASSWORD, Some(&proof(&app, &key))).await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    expect_error(r, 400, "use_dpop_nonce").await;
    // A made-up nonce is refused the same way.
    let bad = key.proof(
        "POST",
        &token_url(&app),
        app.state.now(),
        None,
        Some("guess"),
    );
    expect_error(
        post_token(&app, PASSWORD, Some(&bad)).await,
        400,
        "use_dpop_nonce",
    )
    .await;
    // Positive control: the server's nonce.
    let good = key.proof(
        "POST",
        &token_url(&app),
        app.state.now(),
        None,
        Some(&nonce),
    );
    let r = post_token(&app, PASSWORD, Some(&good)).await;
    assert!(r.headers().contains_key("dpop-nonce"), "next nonce offered");
    let t = ok_json(r).await;
    assert_eq!(t["token_type"], "DPoP");
    // The nonce of the previous window still works; two windows later it does not.
    app.clock.advance(300);
    let p = key.proof(
        "POST",
        &token_url(&app),
        app.state.now(),
        None,
        Some(&nonce),
    );
    ok_json(post_token(&app, PASSWORD, Some(&p)).await).await;
    app.clock.advance(300);
    let p = key.proof(
        "POST",
        &token_url(&app),
        app.state.now(),
        None,
        Some(&nonce),
    );
    expect_error(
        post_token(&app, PASSWORD, Some(&p)).await,
        400,
        "use_dpop_nonce",
    )
    .await;
}

async fn public_client_refresh_is_bound_to_the_key(backend: Backend) {
    let app = setup(backend).await;
    let key = DpopKey::generate().unwrap();
    let other = DpopKey::generate().unwrap();
    let t = ok_json(post_token(&app, PASSWORD, Some(&proof(&app, &key))).await).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let stored = app
        .sql_text("SELECT dpop_jkt FROM refresh_tokens WHERE dpop_jkt IS NOT NULL")
        .await;
    assert_eq!(stored.as_deref(), Some(key.jkt().to_b64().as_str()));
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "cli"),
        ("refresh_token", rt.as_str()),
    ];
    // Another key: refused, and nothing was rotated.
    let d = expect_error(
        post_token(&app, &form, Some(&proof(&app, &other))).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("another DPoP key"), "{d}");
    // No proof at all.
    expect_error(
        post_token(&app, &form, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // Positive control: the same key refreshes; the new tokens are bound again.
    let t = ok_json(post_token(&app, &form, Some(&proof(&app, &key))).await).await;
    assert_eq!(t["token_type"], "DPoP");
    assert_eq!(
        jwt_claims(t["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt().to_b64()
    );
    let rt2 = t["refresh_token"].as_str().unwrap().to_owned();
    let form2 = [
        ("grant_type", "refresh_token"),
        ("client_id", "cli"),
        ("refresh_token", rt2.as_str()),
    ];
    expect_error(
        post_token(&app, &form2, Some(&proof(&app, &other))).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    ok_json(post_token(&app, &form2, Some(&proof(&app, &key))).await).await;

    // Positive control for the binding rule: without DPoP at the start, refresh tokens stay
    // unbound (and refresh as before).
    let t = ok_json(post_token(&app, PASSWORD, None).await).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "cli"),
        ("refresh_token", rt),
    ];
    let t = ok_json(post_token(&app, &form, None).await).await;
    assert_eq!(t["token_type"], "Bearer");
}

async fn userinfo_wants_the_dpop_scheme_for_bound_tokens(backend: Backend) {
    let app = setup(backend).await;
    let key = DpopKey::generate().unwrap();
    // The code grant with a proof at the token endpoint (a bound ID-token flow).
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let (verifier, challenge) = testkit::pkce();
    let auth = app.authorize_url("rp", &challenge, &[("scope", "openid notes:read")]);
    let q = app
        .browser_sign_in(&testkit::agent::FormAgent::new(), &auth, "alice", ALICE_PW)
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "rp"),
        ("code", q["code"].as_str()),
        ("redirect_uri", crate::support::CB),
        ("code_verifier", verifier.as_str()),
    ];
    let t = ok_json(post_token(&app, &form, Some(&proof(&app, &key))).await).await;
    assert_eq!(t["token_type"], "DPoP");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(at)["cnf"]["jkt"], key.jkt().to_b64());
    let url = app.url("/userinfo");
    let call = |scheme: &'static str, proof: Option<String>| {
        let mut req = app
            .http
            .get(&url)
            .header("Authorization", format!("{scheme} {at}"));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send()
    };
    let now = app.state.now();
    // Bound token sent as Bearer: refused.
    let d = expect_error(call("Bearer", None).await.unwrap(), 401, "invalid_token").await;
    assert!(d.contains("DPoP-bound"), "{d}");
    // Positive control: the DPoP scheme with a proof of the key, ath of the token.
    let r = call("DPoP", Some(key.proof("GET", &url, now, Some(at), None)))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Wrong ath (a proof for another token).
    let r = call(
        "DPoP",
        Some(key.proof("GET", &url, now, Some("other"), None)),
    )
    .await
    .unwrap();
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.starts_with("DPoP algs="), "{www}");
    let d = expect_error(r, 401, "invalid_dpop_proof").await;
    assert!(d.contains("ath"), "{d}");
    // A proof by another key: the binding does not match.
    let other = DpopKey::generate().unwrap();
    let r = call("DPoP", Some(other.proof("GET", &url, now, Some(at), None)))
        .await
        .unwrap();
    expect_error(r, 401, "invalid_token").await;
    // No proof with the DPoP scheme.
    expect_error(call("DPoP", None).await.unwrap(), 401, "invalid_dpop_proof").await;
}
