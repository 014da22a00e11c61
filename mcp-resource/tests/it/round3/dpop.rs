//! Issue 24, item 14 at the MCP server (RFC 9449 §8, §9, §11.1): a proof is used once across
//! replicas sharing Redis (`MCP_REDIS_URL`, and `AUTHZ_REDIS_URL` at the token endpoint); the
//! `jti` is recorded only once the per-caller limit let the request through; server nonces
//! (`MCP_DPOP_NONCE`) with the `use_dpop_nonce` challenge.

use serde_json::{Value, json};
use shared::dpop::DpopKey;
use shared::secret::DatabaseUrl;

use crate::dpop::{bound_token, dpop_challenge, post, refused};
use crate::support::{Backend, System, call};
use testkit::both_backends;

both_backends!(
    item_14_a_proof_replayed_to_another_mcp_replica_is_refused,
    item_14_a_token_request_proof_replayed_to_another_authz_replica_is_refused,
    item_14_the_jti_is_recorded_only_after_the_per_caller_limit,
    item_14_the_mcp_server_asks_for_its_nonce_when_configured,
);

fn redis_url() -> String {
    std::env::var("AUTHZ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Redis under a prefix of this test's own (tests run at once).
fn with_redis(url: &mut Option<DatabaseUrl>, prefix: &mut String) {
    *url = Some(DatabaseUrl::new(redis_url()));
    *prefix = format!("it-{}", shared::crypto::random_id(""));
}

/// A second MCP server on the first one's configuration (database, notes key, Redis, resource
/// URL: the `htu` its clients sign) and clock, on a listener of its own; stopped when dropped.
struct Replica {
    /// Where to send requests (the `htu` stays the configured resource URL).
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn mcp_replica(sys: &System) -> Replica {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let state = mcp_resource::build_state_with_clock(sys.mcp.config.clone(), sys.clock.clone())
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        mcp_resource::serve(state, listener, std::future::pending())
            .await
            .unwrap();
    });
    Replica { url, task }
}

/// POST a JSON-RPC message to `url` under the DPoP scheme with `proof`.
async fn post_to(sys: &System, url: &str, token: &str, proof: String) -> reqwest::Response {
    sys.http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .body(call("get_user_profile", json!({})).to_string())
        .send()
        .await
        .unwrap()
}

/// Regression (issue 24, item 14): each replica had its own replay cache, so a captured proof
/// was accepted once more by every other replica within its `iat` window.
async fn item_14_a_proof_replayed_to_another_mcp_replica_is_refused(backend: Backend) {
    let sys = System::start_with(backend, |m| {
        with_redis(&mut m.redis_url, &mut m.redis_prefix)
    })
    .await;
    let other = mcp_replica(&sys).await;
    let key = DpopKey::generate().unwrap();
    let token = bound_token(&sys, &key).await;
    let htu = sys.mcp.config.resource_url.clone();
    let proof = || key.proof("POST", &htu, sys.mcp.now(), Some(&token), None);

    let captured = proof();
    let r = post_to(&sys, &sys.mcp_url, &token, captured.clone()).await;
    assert_eq!(r.status(), 200);
    // The same proof at the other replica: refused.
    refused(
        post_to(&sys, &other.url, &token, captured.clone()).await,
        "invalid_dpop_proof",
        "already used",
    )
    .await;
    // And at the first one, as before.
    refused(
        post_to(&sys, &sys.mcp_url, &token, captured).await,
        "invalid_dpop_proof",
        "already used",
    )
    .await;
    // Positive control: fresh proofs work at either replica.
    let r = post_to(&sys, &other.url, &token, proof()).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("testuser"));
    let r = post_to(&sys, &sys.mcp_url, &token, proof()).await;
    assert_eq!(r.status(), 200);
}

/// Issue 24, item 14 at the authorization server: with `AUTHZ_REDIS_URL`, a token request's
/// proof is used once across `authz` replicas too.
async fn item_14_a_token_request_proof_replayed_to_another_authz_replica_is_refused(
    backend: Backend,
) {
    let mut sys = System::start_with_authz(backend, |c| {
        with_redis(&mut c.redis_url, &mut c.redis_prefix)
    })
    .await;
    let (other, _) = sys.replica(|_| {}).await;
    let key = DpopKey::generate().unwrap();
    let htu = format!("{}/token", sys.authz_url);
    let password = authz::seed::DEMO_USERS
        .iter()
        .find(|(u, _, _)| *u == "testuser")
        .unwrap()
        .1;
    let form = [
        ("grant_type", "password"),
        ("client_id", "mcp-cli"),
        ("username", "testuser"),
        ("password", password),
    ];
    let ask = |base: String, proof: String| {
        let req = sys
            .http
            .post(format!("{base}/token"))
            .header("DPoP", proof)
            .form(&form);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let captured = key.proof("POST", &htu, sys.authz.now(), None, None);
    let (status, body) = ask(sys.authz_url.clone(), captured.clone()).await;
    assert_eq!(
        (status, &body["token_type"]),
        (200, &json!("DPoP")),
        "{body}"
    );
    let (status, body) = ask(other.clone(), captured).await;
    assert_eq!(
        status, 400,
        "replayed at another replica: {}",
        body["token_type"]
    );
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
    // Positive control: a fresh proof at the other replica.
    let fresh = key.proof("POST", &htu, sys.authz.now(), None, None);
    let (status, body) = ask(other, fresh).await;
    assert_eq!(
        (status, &body["token_type"]),
        (200, &json!("DPoP")),
        "{body}"
    );
}

/// Regression (issue 24, item 14): the MCP server recorded a proof's `jti` before the
/// per-caller limit, so requests refused by the limit still filled the replay cache (100 000
/// own requests flushed it). Now a proof refused with 429 is not spent: once the window has
/// passed, the same proof (still within its `iat` window) is accepted.
async fn item_14_the_jti_is_recorded_only_after_the_per_caller_limit(backend: Backend) {
    let sys = System::start_with(backend, |m| m.rate_per_caller_per_minute = 2).await;
    let key = DpopKey::generate().unwrap();
    let token = bound_token(&sys, &key).await;
    let htu = sys.mcp.config.resource_url.clone();
    let msg = call("get_user_profile", json!({}));
    let t0 = sys.mcp.now();
    for _ in 0..2 {
        let p = key.proof("POST", &htu, t0, Some(&token), None);
        assert_eq!(
            post(&sys, "DPoP", &token, Some(p), &msg).await.status(),
            200
        );
    }
    let limited = key.proof("POST", &htu, t0, Some(&token), None);
    let r = post(&sys, "DPoP", &token, Some(limited.clone()), &msg).await;
    assert_eq!(r.status(), 429);
    // The caller's next window: the proof that was refused by the limit is still unused.
    sys.clock.advance(60);
    let r = post(&sys, "DPoP", &token, Some(limited.clone()), &msg).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Positive control of the replay rule: now it was used.
    refused(
        post(&sys, "DPoP", &token, Some(limited), &msg).await,
        "invalid_dpop_proof",
        "already used",
    )
    .await;
}

/// Issue 24, item 14: with `MCP_DPOP_NONCE` the MCP server asks for its nonce (RFC 9449 §9):
/// 401 `use_dpop_nonce` in the DPoP challenge with a `DPoP-Nonce` header; the retry with that
/// nonce is served. Without the setting no nonce is asked for.
async fn item_14_the_mcp_server_asks_for_its_nonce_when_configured(backend: Backend) {
    let sys = System::start_with(backend, |m| m.dpop_nonce = true).await;
    let key = DpopKey::generate().unwrap();
    let token = bound_token(&sys, &key).await;
    let htu = sys.mcp.config.resource_url.clone();
    let msg = call("get_user_profile", json!({}));
    let now = sys.mcp.now();

    let r = post(
        &sys,
        "DPoP",
        &token,
        Some(key.proof("POST", &htu, now, Some(&token), None)),
        &msg,
    )
    .await;
    assert_eq!(r.status(), 401);
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(dpop_challenge(&r)["error"], "use_dpop_nonce");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    // A nonce of our own making is refused the same way.
    let p = key.proof("POST", &htu, now, Some(&token), Some("guessed"));
    refused(
        post(&sys, "DPoP", &token, Some(p), &msg).await,
        "use_dpop_nonce",
        "nonce",
    )
    .await;
    // Positive control: the retry with the server's nonce is served.
    let p = key.proof("POST", &htu, now, Some(&token), Some(&nonce));
    let r = post(&sys, "DPoP", &token, Some(p), &msg).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("dpop-nonce"), "the next nonce");
    assert!(r.text().await.unwrap().contains("testuser"));
    // Bearer tokens are not affected by nonces.
    let plain = sys.user_token("testuser").await;
    assert_eq!(sys.post(Some(&plain), &msg).await.status(), 200);

    // Without the setting: no nonce needed (positive control of the default).
    let off = System::start(backend).await;
    let token = bound_token(&off, &key).await;
    let htu = off.mcp.config.resource_url.clone();
    let p = key.proof("POST", &htu, off.mcp.now(), Some(&token), None);
    let r = post(&off, "DPoP", &token, Some(p), &msg).await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("dpop-nonce"));
}
