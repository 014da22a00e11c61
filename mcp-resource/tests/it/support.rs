//! Helpers for the MCP server's tests: raw JSON-RPC messages, challenge parsing, forged
//! tokens. Both servers are started by `testkit::system::System`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use serde_json::{Value, json};

pub use testkit::Backend;
pub use testkit::system::System;

pub fn initialize() -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
}

pub fn call(name: &str, args: Value) -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": args}})
}

pub async fn call_tool(
    client: &RunningService<RoleClient, ()>,
    name: &str,
    args: Value,
) -> CallToolResult {
    let mut p = CallToolRequestParams::new(name.to_owned());
    if let Value::Object(map) = args {
        p = p.with_arguments(map);
    }
    client.call_tool(p).await.unwrap()
}

pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("")
}

/// Parse a WWW-Authenticate `Bearer k="v", …` header into pairs.
pub fn challenge_params(header: &str) -> std::collections::BTreeMap<String, String> {
    let rest = header.strip_prefix("Bearer ").expect("Bearer challenge");
    let mut out = std::collections::BTreeMap::new();
    for part in rest.split("\", ") {
        if let Some((k, v)) = part.split_once('=') {
            out.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
        }
    }
    out
}

pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

pub fn forged_claims(iss: &str, aud: &str) -> Value {
    use authz::clock::Clock;
    let now = authz::clock::SystemClock.now();
    json!({"iss": iss, "sub": "usr_forged", "aud": aud, "exp": now + 300, "iat": now, "jti": "j",
           "client_id": "mcp-cli", "scope": "profile:read notes:read notes:write", "roles": ["admin"],
           "preferred_username": "forged"})
}

pub async fn assert_rejected(sys: &System, token: &str, what: &str) {
    let r = sys
        .post(Some(token), &call("get_user_profile", json!({})))
        .await;
    assert_eq!(r.status(), 401, "{what} must be rejected");
    let p = challenge_params(r.headers()["www-authenticate"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_token", "{what}");
}
