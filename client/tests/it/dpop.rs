//! `--dpop` in the library: tokens bound to the session's key, tool calls with proofs through
//! rmcp's transport, refresh with the same key, the key remembered with the tokens, and the
//! `use_dpop_nonce` retry — at the authorization server and at the MCP server.

use mcp_auth_client::AuthenticatedMcpClient;
use testkit::both_backends;

use crate::support::{Backend, System, browser_approves};

both_backends!(
    dpop_sign_in_binds_tokens_and_calls_tools_with_proofs,
    dpop_browser_sign_in_binds_the_code,
    dpop_retries_once_with_the_server_nonce,
    item_14_dpop_client_follows_the_mcp_servers_nonce_challenge,
);

fn cnf_jkt(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["cnf"]["jkt"].as_str().map(str::to_owned)
}

async fn dpop_sign_in_binds_tokens_and_calls_tools_with_proofs(backend: Backend) {
    // 30 s tokens: every call refreshes first, with a proof by the same key.
    let s = System::start_with_authz(backend, |c| c.access_token_ttl_secs = 30).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let c = AuthenticatedMcpClient::connect(&s.mcp_url)
        .await
        .unwrap()
        .with_dpop()
        .unwrap()
        .remember_in(path.clone())
        .await;
    let jkt = c.dpop_key().unwrap().jkt().to_b64();
    c.login_with_password("testuser", "TestPass123!", "")
        .await
        .unwrap();
    let t = c.tokens().await.unwrap();
    assert!(t.dpop_bound);
    assert_eq!(
        cnf_jkt(t.access_token.expose()).as_deref(),
        Some(jkt.as_str())
    );
    let profile = c.get_user_profile().await.unwrap();
    assert_eq!(profile.username.as_deref(), Some("testuser"));
    let t2 = c.tokens().await.unwrap();
    assert_ne!(t.refresh_token, t2.refresh_token, "refreshed with the key");
    assert_eq!(
        cnf_jkt(t2.access_token.expose()).as_deref(),
        Some(jkt.as_str())
    );
    c.list_secure_notes().await.unwrap();

    // The key is remembered with the tokens: a new process picks both up.
    let again = AuthenticatedMcpClient::connect(&s.mcp_url)
        .await
        .unwrap()
        .remember_in(path.clone())
        .await;
    assert_eq!(again.dpop_key().unwrap().jkt().to_b64(), jkt);
    again.get_user_profile().await.unwrap();
    // The remembered key is not shown by Debug.
    let shown = format!("{:?}", again.tokens().await.unwrap());
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let stored = file["dpop_key"].as_str().unwrap();
    assert!(!shown.contains(stored), "{shown}");

    // Positive control: the same bound token without its key is refused at the MCP server.
    let bound = again.tokens().await.unwrap().access_token;
    let r = s
        .post(
            Some(bound.expose()),
            &serde_json::json!({"jsonrpc": "2.0", "id": 1,
        "method": "tools/call", "params": {"name": "get_user_profile", "arguments": {}}}),
        )
        .await;
    assert_eq!(r.status(), 401);
}

async fn dpop_retries_once_with_the_server_nonce(backend: Backend) {
    let s = System::start_with_authz(backend, |c| c.dpop.nonce = true).await;
    let c = AuthenticatedMcpClient::connect(&s.mcp_url)
        .await
        .unwrap()
        .with_dpop()
        .unwrap();
    c.login_with_password("testuser", "TestPass123!", "")
        .await
        .unwrap();
    assert!(c.tokens().await.unwrap().dpop_bound);
    c.get_user_profile().await.unwrap();
}

/// Issue 24, item 14: with `MCP_DPOP_NONCE` the MCP server answers a proof without its nonce
/// with `use_dpop_nonce` (RFC 9449 §9); the client learns the nonce, retries, and keeps
/// sending it on the next calls.
async fn item_14_dpop_client_follows_the_mcp_servers_nonce_challenge(backend: Backend) {
    let s = System::start_with(backend, |m| m.dpop_nonce = true).await;
    let c = AuthenticatedMcpClient::connect(&s.mcp_url)
        .await
        .unwrap()
        .with_dpop()
        .unwrap();
    c.login_with_password("testuser", "TestPass123!", "")
        .await
        .unwrap();
    assert!(c.tokens().await.unwrap().dpop_bound);
    let profile = c.get_user_profile().await.unwrap();
    assert_eq!(profile.username.as_deref(), Some("testuser"));
    c.list_secure_notes().await.unwrap();
    // Positive control: the server does ask (a proof without its nonce is refused).
    let token = c.tokens().await.unwrap().access_token;
    let key = c.dpop_key().unwrap();
    let proof = key.proof("POST", &s.mcp_url, s.mcp.now(), Some(token.expose()), None);
    let r = s
        .http
        .post(&s.mcp_url)
        .header("authorization", format!("DPoP {}", token.expose()))
        .header("dpop", proof)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("dpop-nonce"));
}

/// RFC 9449 §10: with `--dpop` the browser sign-in names the key (`dpop_jkt`), so the code is
/// bound to it, and redeems the code with a proof by that key: the tokens are bound too.
async fn dpop_browser_sign_in_binds_the_code(backend: Backend) {
    let s = System::start(backend).await;
    let c = AuthenticatedMcpClient::connect(&s.mcp_url)
        .await
        .unwrap()
        .with_dpop()
        .unwrap();
    let jkt = c.dpop_key().unwrap().jkt().to_b64();
    let signin = c.start_browser_login("profile:read").await.unwrap();
    let named: Vec<String> = url::Url::parse(&signin.url)
        .unwrap()
        .query_pairs()
        .filter(|(k, _)| k == "dpop_jkt")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(named, std::slice::from_ref(&jkt));
    let url = signin.url.clone();
    let browser = browser_approves(&s.authz_url, &url);
    c.finish_browser_login(signin, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    browser.await.unwrap();
    let t = c.tokens().await.unwrap();
    assert!(t.dpop_bound);
    assert_eq!(
        cnf_jkt(t.access_token.expose()).as_deref(),
        Some(jkt.as_str())
    );
    assert_eq!(
        c.get_user_profile().await.unwrap().username.as_deref(),
        Some("testuser")
    );
    // Positive control of the naming: without --dpop the request carries no dpop_jkt.
    let plain = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    let url = plain.start_browser_login("profile:read").await.unwrap().url;
    assert!(!url.contains("dpop_jkt"), "{url}");
}
