//! Discovery, per-role tool visibility and the exact 401/403 challenges.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{Backend, System, call, call_tool, challenge_params, initialize, text};
use testkit::both_backends;

both_backends!(
    protected_resource_metadata_points_at_the_issuer,
    each_role_sees_exactly_its_tools,
    missing_or_bad_token_gets_401_challenge,
    insufficient_scope_gets_403_with_needed_scopes,
    stateless_requests_and_host_check,
    foreign_origins_are_refused,
    unknown_tool_names_are_clipped_in_the_audit_log,
    descriptions_and_resources_follow_the_one_declaration,
    mcp_method_and_name_headers_must_match_the_body,
    probes_say_live_and_ready_without_a_token,
);

async fn protected_resource_metadata_points_at_the_issuer(backend: Backend) {
    let sys = System::start(backend).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = sys
            .http
            .get(format!("{}{path}", sys.mcp_base))
            .header("Origin", "https://x.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["resource"], sys.mcp_url);
        assert_eq!(
            m["authorization_servers"],
            json!([sys.authz_url]),
            "byte-identical issuer"
        );
        assert_eq!(m["bearer_methods_supported"], json!(["header"]));
        assert_eq!(
            m["scopes_supported"],
            json!([
                "audit:read",
                "keys:write",
                "notes:read",
                "notes:write",
                "profile:read",
                "security:read"
            ])
        );
    }
}

async fn each_role_sees_exactly_its_tools(backend: Backend) {
    let sys = System::start(backend).await;
    let notes = [
        "create_secure_note",
        "get_secure_note",
        "get_user_profile",
        "list_secure_notes",
        "logout",
    ];
    let keys = ["create_api_key", "list_api_keys", "revoke_api_key"];
    let admin_only = ["get_security_summary", "list_audit_events"];
    let user: Vec<&str> = notes.iter().chain(&keys).copied().collect();
    let admin: Vec<&str> = user.iter().chain(&admin_only).copied().collect();
    let expected: [(&str, &[&str]); 4] = [
        ("admin", &admin),
        ("testuser", &user),
        ("service_bot", &notes),
        (
            "readonly",
            &[
                "get_secure_note",
                "get_user_profile",
                "list_secure_notes",
                "logout",
            ],
        ),
    ];
    for (user, tools) in expected {
        let client = sys.client(&sys.user_token(user).await).await;
        let listed: BTreeSet<String> = client
            .list_tools(None)
            .await
            .unwrap()
            .tools
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        let want: BTreeSet<String> = tools.iter().map(|s| s.to_string()).collect();
        assert_eq!(listed, want, "tools for {user}");
        let profile: Value = serde_json::from_str(&text(
            &call_tool(&client, "get_user_profile", json!({})).await,
        ))
        .unwrap();
        assert_eq!(profile["username"], user);
        assert_eq!(profile["client_id"], "mcp-cli");
        client.cancel().await.unwrap();
    }
    // A service bot with client_credentials acts as the client itself.
    let client = sys.client(&sys.service_token().await).await;
    let profile: Value = serde_json::from_str(&text(
        &call_tool(&client, "get_user_profile", json!({})).await,
    ))
    .unwrap();
    assert_eq!(profile["subject"], "client:demo-service");
    // The resource user://profile needs profile:read, which every role has.
    let r = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "user://profile",
        ))
        .await
        .unwrap();
    assert_eq!(r.contents.len(), 1);
    client.cancel().await.unwrap();
}

async fn missing_or_bad_token_gets_401_challenge(backend: Backend) {
    let sys = System::start(backend).await;
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp", sys.mcp_base);
    let r = sys.post(None, &initialize()).await;
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        www,
        format!("Bearer scope=\"profile:read notes:read\", resource_metadata=\"{metadata}\"")
    );

    let r = sys.post(Some("not-a-jwt"), &initialize()).await;
    assert_eq!(r.status(), 401);
    let p = challenge_params(r.headers()["www-authenticate"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_token");
    assert_eq!(p["resource_metadata"], metadata);
    assert_eq!(p["scope"], "profile:read notes:read");

    // Tokens only in the header: a query-string token is refused outright.
    let good = sys.user_token("testuser").await;
    let r = sys
        .http
        .post(format!("{}?access_token={good}", sys.mcp_url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // rmcp's client sees the challenge and reports that authorization is required.
    let cfg =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            sys.mcp_url.clone(),
        );
    let err = rmcp::ServiceExt::serve(
        (),
        rmcp::transport::StreamableHttpClientTransport::from_config(cfg),
    )
    .await
    .unwrap_err();
    assert!(err.is_authorization_required(), "{err}");
}

async fn insufficient_scope_gets_403_with_needed_scopes(backend: Backend) {
    let sys = System::start(backend).await;
    let token = sys.user_token("readonly").await;
    let r = sys
        .post(
            Some(&token),
            &call("create_secure_note", json!({"title": "t", "content": "c"})),
        )
        .await;
    assert_eq!(r.status(), 403);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let p = challenge_params(&www);
    assert_eq!(p["error"], "insufficient_scope");
    assert_eq!(
        p["scope"], "notes:read notes:write profile:read",
        "held scopes plus the missing one"
    );
    assert_eq!(
        p["resource_metadata"],
        format!("{}/.well-known/oauth-protected-resource/mcp", sys.mcp_base)
    );

    // Through rmcp's client the same call fails with the challenge, and nothing is stored.
    let client = sys.client(&token).await;
    let mut params = rmcp::model::CallToolRequestParams::new("create_secure_note");
    params = params.with_arguments(
        json!({"title": "t", "content": "c"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let err = client.call_tool(params).await.unwrap_err();
    assert!(format!("{err:?}").contains("insufficient_scope"), "{err:?}");
    let notes = call_tool(&client, "list_secure_notes", json!({})).await;
    assert_eq!(
        serde_json::from_str::<Value>(&text(&notes)).unwrap()["notes"],
        json!([])
    );
    client.cancel().await.unwrap();

    sys.mcp.audit_log.flush().await;
    let audit = sys.mcp.store.recent_audit(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "tool:create_secure_note" && a.outcome == "denied")
    );
    assert!(
        audit
            .iter()
            .any(|a| a.action == "tool:list_secure_notes" && a.outcome == "allowed")
    );
    let dump = serde_json::to_string(&audit).unwrap();
    assert!(!dump.contains(&token), "no token in the audit table");
}

/// Stateless Streamable HTTP: no session ids to steal; each request stands on its own token.
/// A foreign Host header (DNS rebinding) is refused.
async fn stateless_requests_and_host_check(backend: Backend) {
    let sys = System::start(backend).await;
    let alice = sys.user_token("testuser").await;
    let r = sys.post(Some(&alice), &initialize()).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("mcp-session-id").is_none(),
        "no session is created"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    // A call straight away, with a made-up session id, is answered for the token's subject.
    let r = sys
        .http
        .post(&sys.mcp_url)
        .bearer_auth(&alice)
        .header("mcp-session-id", "someone-elses-session")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(call("get_user_profile", json!({})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A tool's answer is the caller's own (notes, a new key's secret): never cached (the
    // review of issue 25); the public metadata document is (control).
    let cache = |r: &reqwest::Response| r.headers().get("cache-control").cloned();
    assert_eq!(
        cache(&r).as_ref().map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let body: Value = r.json().await.unwrap();
    let profile: Value =
        serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(profile["username"], "testuser");
    let prm = sys
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            sys.mcp_base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(prm.status(), 200);
    assert_ne!(
        cache(&prm).as_ref().map(|v| v.to_str().unwrap()),
        Some("no-store")
    );

    let r = sys
        .http
        .post(&sys.mcp_url)
        .bearer_auth(&alice)
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "Host not in the allow-list");

    // Bad input is a client error, never a 5xx.
    let post_raw = |body: String| {
        sys.http
            .post(&sys.mcp_url)
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    let r = post_raw("{not json".into()).await.unwrap();
    assert!(
        r.status().is_client_error(),
        "malformed JSON: {}",
        r.status()
    );
    // The server answers 413 as soon as the limit is crossed; a client still sending may see
    // the connection closed instead. Either way nothing past the limit is accepted.
    match post_raw(format!("{{\"x\":\"{}\"}}", "a".repeat(2 * 1024 * 1024))).await {
        Ok(r) => assert_eq!(r.status(), 413, "oversized body"),
        Err(e) => assert!(e.is_request() || e.is_body(), "unexpected error: {e}"),
    }
    // An unknown tool: a JSON-RPC result that is a tool error naming it (never a 5xx).
    let r = sys
        .post(Some(&alice), &call("no_such_tool", json!({})))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert_eq!(
        body["result"]["content"][0]["text"], "unknown tool \"no_such_tool\"",
        "{body}"
    );
}

/// Regression (issue 11, item 13): `Origin: http://evil.example` got 200 (fails on the code
/// before the fix). The MCP Streamable HTTP transport requires servers to validate `Origin`:
/// foreign origins get 403 before any token is looked at; the server's own origin, loopback
/// origins and configured ones pass, and requests without `Origin` are unaffected.
async fn foreign_origins_are_refused(backend: Backend) {
    let sys = System::start_with(backend, |c| {
        c.allowed_origins = vec!["https://app.example.org".into()];
    })
    .await;
    let alice = sys.user_token("testuser").await;
    let send = |origin: Option<String>, token: Option<String>| {
        let sys = &sys;
        async move {
            let mut req = sys
                .http
                .post(&sys.mcp_url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(call("get_user_profile", json!({})).to_string());
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };
    for bad in [
        "http://evil.example",
        "null",
        "https://app.example.org.evil.example",
        "http://app.example.org",
    ] {
        for token in [Some(alice.clone()), None] {
            let r = send(Some(bad.into()), token.clone()).await;
            assert_eq!(r.status(), 403, "{bad} (token: {})", token.is_some());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], -32600, "{body}");
        }
    }
    for good in [
        None,
        Some(sys.mcp_base.clone()),
        Some("http://localhost:6274".to_owned()),
        Some("http://127.0.0.1:5173".to_owned()),
        Some("https://app.example.org".to_owned()),
    ] {
        let r = send(good.clone(), Some(alice.clone())).await;
        assert_eq!(r.status(), 200, "{good:?}");
    }
}

/// Regression (issue 11, item 11): a call to an unknown tool was audited with its whole name
/// (up to the 1 MiB body limit). Fails on the code before the fix: a 100 000-character row.
async fn unknown_tool_names_are_clipped_in_the_audit_log(backend: Backend) {
    let sys = System::start(backend).await;
    let alice = sys.user_token("testuser").await;
    let name = "x".repeat(100_000);
    let r = sys.post(Some(&alice), &call(&name, json!({}))).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let message = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(message.len() < 200, "the answer echoes a clipped name");
    sys.mcp.audit_log.flush().await;
    let rows = sys.mcp.store.recent_audit(20).await.unwrap();
    let row = rows
        .iter()
        .find(|r| r.action.starts_with("tool:xxx"))
        .expect("the call is audited");
    assert!(
        row.action.chars().count() <= 5 + 64 + 1,
        "{}",
        row.action.len()
    );
    // Positive control: a real tool's name is recorded whole.
    sys.post(Some(&alice), &call("get_user_profile", json!({})))
        .await;
    sys.mcp.audit_log.flush().await;
    let rows = sys.mcp.store.recent_audit(20).await.unwrap();
    assert!(rows.iter().any(|r| r.action == "tool:get_user_profile"));
}

/// Each tool's and resource's scope is declared once (`rbac`): the descriptions say it, the
/// resource list is filtered by it, and a URI that is not declared is an MCP error (never
/// served as some other resource).
async fn descriptions_and_resources_follow_the_one_declaration(backend: Backend) {
    let sys = System::start(backend).await;
    let admin = sys.client(&sys.user_token("admin").await).await;
    let tools = admin.list_tools(None).await.unwrap().tools;
    let described = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.description.clone())
            .unwrap_or_else(|| panic!("{name} listed with a description"))
    };
    for (tool, says) in [
        ("create_secure_note", "(needs notes:write)"),
        ("get_user_profile", "(needs profile:read)"),
        ("create_api_key", "(needs keys:write)"),
        ("list_audit_events", "(needs audit:read)"),
        ("get_security_summary", "(needs security:read)"),
        ("logout", "(any valid token)"),
    ] {
        let d = described(tool);
        assert!(d.ends_with(says), "{tool}: {d}");
        assert_eq!(
            d.matches("(needs").count(),
            usize::from(says.starts_with("(needs")),
            "{tool}: {d}"
        );
    }
    let listed = |resources: Vec<rmcp::model::Resource>| -> Vec<(String, String)> {
        resources
            .into_iter()
            .map(|r| (r.uri.clone(), r.description.clone().unwrap_or_default()))
            .collect()
    };
    let all = listed(admin.list_resources(None).await.unwrap().resources);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter()
            .any(|(u, d)| u == "user://profile" && d.ends_with("(needs profile:read)"))
    );
    assert!(
        all.iter()
            .any(|(u, d)| u == "security://summary" && d.ends_with("(needs security:read)"))
    );
    // Positive control: a declared URI reads; an undeclared one is an error, not the profile.
    let read =
        |uri: &'static str| admin.read_resource(rmcp::model::ReadResourceRequestParams::new(uri));
    assert_eq!(read("user://profile").await.unwrap().contents.len(), 1);
    for uri in ["user://profil", "user://profile/../x", "file:///etc/passwd"] {
        let e = read(uri).await.expect_err(uri);
        assert!(e.to_string().contains("unknown resource"), "{uri}: {e}");
        // SEP-2164: Invalid Params (not the legacy -32002), the URI in `data`.
        let rmcp::ServiceError::McpError(data) = e else {
            panic!("{uri}: not a JSON-RPC error: {e}");
        };
        assert_eq!(data.code.0, -32602, "{uri}: {data:?}");
        assert_eq!(data.data, Some(json!({ "uri": uri })), "{uri}");
    }
    admin.cancel().await.unwrap();
    // readonly holds profile:read but not security:read: the list shows only what it may read.
    let readonly = sys.client(&sys.user_token("readonly").await).await;
    let mine = listed(readonly.list_resources(None).await.unwrap().resources);
    assert_eq!(
        mine.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
        ["user://profile"]
    );
    readonly.cancel().await.unwrap();
}

/// Streamable HTTP (2026-07-28): `Mcp-Method` / `Mcp-Name`, when present, must match the
/// JSON-RPC body (else 400 with a JSON-RPC error); the scope decision comes from the body.
async fn mcp_method_and_name_headers_must_match_the_body(backend: Backend) {
    let sys = System::start(backend).await;
    let reader = sys.user_token("readonly").await;
    let profile = call("get_user_profile", json!({}));
    // Control: matching headers (and none at all) are served.
    for headers in [
        vec![],
        vec![
            ("mcp-method", "tools/call"),
            ("mcp-name", "get_user_profile"),
        ],
    ] {
        let r = sys.post_with(Some(&reader), &profile, &headers).await;
        assert_eq!(r.status(), 200, "{headers:?}");
    }
    for headers in [
        vec![("mcp-method", "tools/list")],
        vec![
            ("mcp-method", "tools/call"),
            ("mcp-name", "list_secure_notes"),
        ],
        vec![
            ("mcp-name", "Get_User_Profile"),
            ("mcp-method", "tools/call"),
        ],
    ] {
        let r = sys.post_with(Some(&reader), &profile, &headers).await;
        assert_eq!(r.status(), 400, "{headers:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], 2);
        // SEP-2243: HeaderMismatch.
        assert_eq!(body["error"]["code"], -32020, "{body}");
    }
    // Headers cannot launder a call: the body asks for a tool readonly may not call, the
    // headers name one it may; refused either way, never run.
    let write = call("create_secure_note", json!({"title": "t", "content": "c"}));
    let r = sys
        .post_with(
            Some(&reader),
            &write,
            &[
                ("mcp-method", "tools/call"),
                ("mcp-name", "get_user_profile"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = sys
        .post_with(
            Some(&reader),
            &write,
            &[
                ("mcp-method", "tools/call"),
                ("mcp-name", "create_secure_note"),
            ],
        )
        .await;
    assert_eq!(r.status(), 403, "the body decides the scope");
    // resources/read: Mcp-Name is the URI.
    let read = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read",
                      "params": {"uri": "user://profile"}});
    let ok = sys
        .post_with(Some(&reader), &read, &[("mcp-name", "user://profile")])
        .await;
    assert_eq!(ok.status(), 200);
    let bad = sys
        .post_with(Some(&reader), &read, &[("mcp-name", "security://summary")])
        .await;
    assert_eq!(bad.status(), 400);
}

/// `/healthz` and `/readyz` need no token; ready means the database answers and the issuer's
/// keys are held (fetched by the probe if not yet); with the database gone, 503.
async fn probes_say_live_and_ready_without_a_token(backend: Backend) {
    let sys = System::start(backend).await;
    let ready: Value = sys.get_json(&format!("{}/readyz", sys.mcp_base)).await;
    assert_eq!(
        ready,
        json!({ "status": "ready", "database": "up", "issuer_keys": "loaded" })
    );
    sys.mcp.store.close().await;
    let r = sys
        .http
        .get(format!("{}/readyz", sys.mcp_base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["database"], "down");
    let live = sys
        .http
        .get(format!("{}/healthz", sys.mcp_base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
}
