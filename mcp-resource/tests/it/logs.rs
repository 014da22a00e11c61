//! The real `mcp-resource` binary at debug log level, in JSON: a session of tool calls
//! (including a token exchange and a refused token) never writes a token, secret or note
//! content to the log, every line is one JSON object, and each request's access line carries
//! the request id returned as `X-Request-Id`.

use std::process::Stdio;

use serde_json::{Value, json};
use testkit::both_backends;

use crate::support::{Backend, System, call};

both_backends!(mcp_logs_never_contain_tokens_or_secrets);

async fn mcp_logs_never_contain_tokens_or_secrets(backend: Backend) {
    let sys = System::start(backend).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let resource = format!("{base}/mcp");
    // A client allowed tokens for the binary's resource URL.
    let (_, secret) = authz::identity::admin::add_client(
        sys.authz.client_services(),
        "test",
        Some("logcheck".into()),
        authz::store::ClientSettings {
            name: "log check".into(),
            auth_method: authz::store::AuthMethod::None,
            grant_types: vec![authz::store::GrantType::Password],
            scopes: shared::ScopeSet::parse("profile:read notes:read notes:write keys:write")
                .unwrap(),
            resources: vec![resource.clone()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(secret.is_none());
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mcp.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-resource"))
        .env("MCP_BIND", format!("127.0.0.1:{port}"))
        .env("MCP_ISSUER", &sys.authz_url)
        .env("MCP_RESOURCE_URL", &resource)
        .env("MCP_DATA_DIR", dir.path())
        .env("MCP_LOG", "debug")
        .env("MCP_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    testkit::wait_ready(&http, &format!("{base}/healthz"), Some(&log)).await;
    let token = sys
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "logcheck"),
                ("username", "testuser"),
                ("password", "TestPass123!"),
                ("resource", resource.as_str()),
            ],
            None,
        )
        .await;
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let post = |body: Value, t: Option<String>| {
        let http = http.clone();
        let resource = resource.clone();
        let ids = ids.clone();
        async move {
            let mut r = http
                .post(&resource)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body.to_string());
            if let Some(t) = t {
                r = r.bearer_auth(t);
            }
            let resp = r.send().await.unwrap();
            let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
            ids.lock().unwrap().push((id, resp.status().as_u16()));
            resp.status().as_u16()
        }
    };
    let note = "a very private note body 7f3a";
    assert_eq!(
        post(
            call(
                "create_secure_note",
                json!({"title": "private title 9c1", "content": note})
            ),
            Some(token.clone())
        )
        .await,
        200
    );
    assert_eq!(
        post(call("list_secure_notes", json!({})), Some(token.clone())).await,
        200
    );
    assert_eq!(
        post(
            call("get_user_profile", json!({})),
            Some(format!("{token}x"))
        )
        .await,
        401
    );
    assert_eq!(
        post(call("list_api_keys", json!({})), Some(token.clone())).await,
        200
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 3, "debug logging was on:\n{text}");
    let sig = token.rsplit('.').next().unwrap();
    for s in [token.as_str(), sig, note, "TestPass123!"] {
        assert!(
            !text.contains(s),
            "the log contains a secret ({}…)",
            &s[..s.len().min(8)]
        );
    }
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let ids = ids.lock().unwrap().clone();
    assert_eq!(ids.len(), 4);
    for (id, status) in ids {
        let access = lines
            .iter()
            .find(|l| l["target"] == "access" && l["span"]["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no access line for request {id}"));
        assert_eq!(access["fields"]["status"], status);
        assert_eq!(access["fields"]["method"], "POST");
    }
}
