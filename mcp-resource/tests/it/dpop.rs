//! DPoP at the MCP server (RFC 9449 §7): `Authorization: DPoP <token>` with a proof for the
//! request, each refusal named beside its positive control; bound tokens refused as Bearer;
//! challenges and protected-resource metadata (RFC 9728) advertising DPoP;
//! `MCP_DPOP_REQUIRED`. The DPoP client is built here (`shared::dpop::DpopKey`, ES256).

use serde_json::{Value, json};
use shared::dpop::DpopKey;

use crate::support::{Backend, System, call, challenge_params};
use testkit::both_backends;

both_backends!(
    bound_tokens_call_tools_and_each_refusal_is_named,
    challenges_and_metadata_advertise_dpop,
    dpop_required_refuses_bearer_tokens,
);

/// A DPoP-bound token for `testuser` (password grant through the demo CLI client, with a
/// proof for authz's token endpoint).
pub(crate) async fn bound_token(sys: &System, key: &DpopKey) -> String {
    let url = format!("{}/token", sys.authz_url);
    let proof = key.proof("POST", &url, sys.mcp.now(), None, None);
    let password = authz::seed::DEMO_USERS
        .iter()
        .find(|(u, _, _)| *u == "testuser")
        .unwrap()
        .1;
    let body: Value = sys
        .http
        .post(&url)
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "password"),
            ("client_id", "mcp-cli"),
            ("username", "testuser"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["token_type"], "DPoP", "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// POST a JSON-RPC message with `Authorization: <scheme> <token>` and an optional proof.
pub(crate) async fn post(
    sys: &System,
    scheme: &str,
    token: &str,
    proof: Option<String>,
    body: &Value,
) -> reqwest::Response {
    let mut req = sys
        .http
        .post(&sys.mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("{scheme} {token}"))
        .body(body.to_string());
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

/// The `DPoP` challenge's parameters (the second WWW-Authenticate, or the only one).
pub(crate) fn dpop_challenge(r: &reqwest::Response) -> std::collections::BTreeMap<String, String> {
    let c = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("DPoP "))
        .expect("a DPoP challenge");
    challenge_params(&c.replacen("DPoP ", "Bearer ", 1))
}

pub(crate) async fn refused(r: reqwest::Response, code: &str, needle: &str) {
    assert_eq!(r.status(), 401, "{code}");
    let p = dpop_challenge(&r);
    assert_eq!(p["error"], code, "{p:?}");
    assert_eq!(p["algs"], "ES256 RS256 EdDSA");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code);
    let d = body["error_description"].as_str().unwrap();
    assert!(d.contains(needle), "{d}");
}

async fn bound_tokens_call_tools_and_each_refusal_is_named(backend: Backend) {
    let sys = System::start(backend).await;
    let key = DpopKey::generate().unwrap();
    let token = bound_token(&sys, &key).await;
    let url = sys.mcp.config.resource_url.clone();
    let now = sys.mcp.now();
    let msg = call("get_user_profile", json!({}));
    let good = || key.proof("POST", &url, now, Some(&token), None);

    // Positive control: a proof for this request, by the bound key.
    let r = post(&sys, "DPoP", &token, Some(good()), &msg).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("testuser"));

    // Wrong htm.
    let p = key.proof("GET", &url, now, Some(&token), None);
    refused(
        post(&sys, "DPoP", &token, Some(p), &msg).await,
        "invalid_dpop_proof",
        "htm",
    )
    .await;
    // Wrong htu: authz's token endpoint, another path of this server.
    for htu in [
        format!("{}/token", sys.authz_url),
        format!("{}/other", sys.mcp_base),
    ] {
        let p = key.proof("POST", &htu, now, Some(&token), None);
        refused(
            post(&sys, "DPoP", &token, Some(p), &msg).await,
            "invalid_dpop_proof",
            "htu",
        )
        .await;
    }
    // Stale iat (and from the future).
    for iat in [now - 61, now + 61] {
        let p = key.proof("POST", &url, iat, Some(&token), None);
        refused(
            post(&sys, "DPoP", &token, Some(p), &msg).await,
            "invalid_dpop_proof",
            "iat",
        )
        .await;
    }
    // Replayed jti: a proof accepted once is refused the second time.
    let once = good();
    let r = post(&sys, "DPoP", &token, Some(once.clone()), &msg).await;
    assert_eq!(r.status(), 200);
    refused(
        post(&sys, "DPoP", &token, Some(once), &msg).await,
        "invalid_dpop_proof",
        "already used",
    )
    .await;
    // Wrong ath: a proof made for another token; none at all.
    let p = key.proof("POST", &url, now, Some("another token"), None);
    refused(
        post(&sys, "DPoP", &token, Some(p), &msg).await,
        "invalid_dpop_proof",
        "ath",
    )
    .await;
    let p = key.proof("POST", &url, now, None, None);
    refused(
        post(&sys, "DPoP", &token, Some(p), &msg).await,
        "invalid_dpop_proof",
        "ath",
    )
    .await;
    // Key mismatch: a valid proof by another key than cnf.jkt.
    let thief = DpopKey::generate().unwrap();
    let p = thief.proof("POST", &url, now, Some(&token), None);
    refused(
        post(&sys, "DPoP", &token, Some(p), &msg).await,
        "invalid_token",
        "another key",
    )
    .await;
    // The DPoP scheme without a proof.
    refused(
        post(&sys, "DPoP", &token, None, &msg).await,
        "invalid_dpop_proof",
        "exactly one",
    )
    .await;

    // A bound token presented as Bearer: refused (the error is in the Bearer challenge).
    let r = post(&sys, "Bearer", &token, None, &msg).await;
    assert_eq!(r.status(), 401);
    let p = challenge_params(r.headers()["www-authenticate"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_token");
    assert!(p["error_description"].contains("DPoP-bound"), "{p:?}");
    // An unbound token under the DPoP scheme: refused; as Bearer (positive control): fine.
    let plain = sys.user_token("testuser").await;
    let p = key.proof("POST", &url, now, Some(&plain), None);
    refused(
        post(&sys, "DPoP", &plain, Some(p), &msg).await,
        "invalid_token",
        "not DPoP-bound",
    )
    .await;
    assert_eq!(post(&sys, "Bearer", &plain, None, &msg).await.status(), 200);
    // Time moves on with the injected clock: a proof made now is fine, one from before the
    // window is stale.
    sys.clock.advance(120);
    let p = key.proof("POST", &url, now, Some(&token), None);
    refused(
        post(&sys, "DPoP", &token, Some(p), &msg).await,
        "invalid_dpop_proof",
        "iat",
    )
    .await;
    let p = key.proof("POST", &url, sys.mcp.now(), Some(&token), None);
    assert_eq!(
        post(&sys, "DPoP", &token, Some(p), &msg).await.status(),
        200
    );
}

async fn challenges_and_metadata_advertise_dpop(backend: Backend) {
    let sys = System::start(backend).await;
    let r = sys.post(None, &call("get_user_profile", json!({}))).await;
    assert_eq!(r.status(), 401);
    let all: Vec<String> = r
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].starts_with("Bearer "), "Bearer first: {all:?}");
    let p = dpop_challenge(&r);
    assert_eq!(p["algs"], "ES256 RS256 EdDSA");
    assert!(p.contains_key("resource_metadata"));
    assert!(!p.contains_key("error"), "no error without a token");
    let m = sys
        .get_json(&format!(
            "{}/.well-known/oauth-protected-resource",
            sys.mcp_base
        ))
        .await;
    assert_eq!(
        m["dpop_signing_alg_values_supported"],
        json!(["ES256", "RS256", "EdDSA"])
    );
    assert_eq!(m["dpop_bound_access_tokens_required"], false);
}

async fn dpop_required_refuses_bearer_tokens(backend: Backend) {
    let sys = System::start_with(backend, |c| c.dpop_required = true).await;
    let m = sys
        .get_json(&format!(
            "{}/.well-known/oauth-protected-resource",
            sys.mcp_base
        ))
        .await;
    assert_eq!(m["dpop_bound_access_tokens_required"], true);
    let msg = call("get_user_profile", json!({}));
    // An unbound Bearer token: refused; only a DPoP challenge is offered.
    let plain = sys.user_token("testuser").await;
    let r = post(&sys, "Bearer", &plain, None, &msg).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get_all("www-authenticate").iter().count(), 1);
    let p = dpop_challenge(&r);
    assert_eq!(p["error"], "invalid_token");
    // Positive control: a bound token with its proof.
    let key = DpopKey::generate().unwrap();
    let token = bound_token(&sys, &key).await;
    let url = sys.mcp.config.resource_url.clone();
    let p = key.proof("POST", &url, sys.mcp.now(), Some(&token), None);
    assert_eq!(
        post(&sys, "DPoP", &token, Some(p), &msg).await.status(),
        200
    );
}
