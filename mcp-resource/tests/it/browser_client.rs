//! Browser-based MCP clients (MCP Inspector, web apps): headless Chromium loads a page from a
//! loopback origin that is neither server's and, with `fetch()` only, does what such a client
//! does: the unauthenticated POST and its 401 challenge, protected-resource and AS metadata,
//! registration, the PKCE code exchange, and a tool call. Hostile origins get no CORS grant.

use serde_json::{Value, json};
use testkit::webdriver::Browser;
use testkit::{both_backends, pkce};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Backend, System};

both_backends!(
    preflights_and_challenges_carry_cors_for_allowed_origins_only,
    a_browser_client_discovers_registers_exchanges_and_calls_a_tool,
);

const INSPECTOR: &str = "http://localhost:6274";

async fn preflights_and_challenges_carry_cors_for_allowed_origins_only(backend: Backend) {
    let sys = System::start(backend).await;
    let preflight = |origin: &'static str| {
        sys.http
            .request(reqwest::Method::OPTIONS, &sys.mcp_url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version, mcp-session-id",
            )
            .send()
    };
    // A preflight never carries credentials: answered 204 before the token check.
    let ok = preflight(INSPECTOR).await.unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(ok.headers()["access-control-allow-origin"], INSPECTOR);
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for h in [
        "authorization",
        "content-type",
        "mcp-protocol-version",
        "mcp-session-id",
        "mcp-method",
        "mcp-name",
        "last-event-id",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    // The 401 is readable by the allowed origin, challenge included.
    let unauth = sys
        .http
        .post(&sys.mcp_url)
        .header("origin", INSPECTOR)
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unauth.status(), 401);
    assert_eq!(unauth.headers()["access-control-allow-origin"], INSPECTOR);
    let exposed = unauth.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in ["www-authenticate", "mcp-session-id", "mcp-protocol-version"] {
        assert!(exposed.contains(h), "{exposed}");
    }
    // A hostile origin gets no grant, on the preflight or on the (refused) request.
    let hostile = preflight("https://evil.example").await.unwrap();
    assert!(
        hostile
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let refused = sys
        .http
        .post(&sys.mcp_url)
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Serve one small HTML page (the "web app") on a loopback port; its origin is
/// `http://localhost:<port>`.
async fn web_app() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = sock.read(&mut buf).await;
                let body = "<!doctype html><title>Browser MCP client</title><p>ready";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://localhost:{port}")
}

/// Step 1 of the client, in the page: the 401 and what it points at, then registration.
const DISCOVER: &str = r#"
const [mcpUrl, redirectUri, done] = arguments;
(async () => {
  const v = { 'mcp-protocol-version': '2025-11-25' };
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {
    protocolVersion: '2025-11-25', capabilities: {},
    clientInfo: { name: 'browser-client', version: '1' } } };
  const r = await fetch(mcpUrl, { method: 'POST', body: JSON.stringify(init), headers: {
    ...v, 'content-type': 'application/json', 'accept': 'application/json, text/event-stream' } });
  const challenge = r.headers.get('www-authenticate');
  const prmUrl = /resource_metadata="([^"]+)"/.exec(challenge)[1];
  const prm = await (await fetch(prmUrl, { headers: v })).json();
  const issuer = prm.authorization_servers[0];
  const as = await (await fetch(issuer + '/.well-known/oauth-authorization-server',
    { headers: v })).json();
  const jwks = await fetch(as.jwks_uri, { headers: v });
  const reg = await fetch(as.registration_endpoint, { method: 'POST',
    headers: { ...v, 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'Browser MCP client', redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'] }) });
  const client = await reg.json();
  done({ status: r.status, challenge, resource: prm.resource, issuer: as.issuer,
    jwks: jwks.status, token_endpoint: as.token_endpoint, registered: reg.status,
    client_id: client.client_id });
})().catch(e => done({ error: String(e) }));
"#;

/// Step 2: the code exchange with PKCE at `/token`, then a tool call with the token.
const EXCHANGE_AND_CALL: &str = r#"
const [tokenEndpoint, mcpUrl, form, done] = arguments;
(async () => {
  const t = await fetch(tokenEndpoint, { method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form) });
  const tokens = await t.json();
  if (!tokens.access_token) { done({ token_status: t.status, tokens }); return; }
  const headers = { 'content-type': 'application/json',
    'accept': 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-11-25', 'authorization': 'Bearer ' + tokens.access_token };
  const rpc = async (body) => {
    const r = await fetch(mcpUrl, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: r.status, text: await r.text() };
  };
  const init = await rpc({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {
    protocolVersion: '2025-11-25', capabilities: {},
    clientInfo: { name: 'browser-client', version: '1' } } });
  await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' });
  const call = await rpc({ jsonrpc: '2.0', id: 2, method: 'tools/call',
    params: { name: 'get_user_profile', arguments: {} } });
  done({ token_status: t.status, scope: tokens.scope, init: init.status, call });
})().catch(e => done({ error: String(e) }));
"#;

async fn a_browser_client_discovers_registers_exchanges_and_calls_a_tool(backend: Backend) {
    let sys = System::start(backend).await;
    let origin = web_app().await;
    let redirect_uri = "http://127.0.0.1:7999/callback";
    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{origin}/")).await.unwrap();
    assert!(
        browser
            .title()
            .await
            .unwrap()
            .contains("Browser MCP client")
    );

    let found = browser
        .execute_async(DISCOVER, vec![json!(sys.mcp_url), json!(redirect_uri)])
        .await
        .unwrap();
    assert!(found.get("error").is_none(), "{found}");
    assert_eq!(found["status"], 401, "{found}");
    assert!(
        found["challenge"].as_str().unwrap().starts_with("Bearer "),
        "{found}"
    );
    assert_eq!(found["resource"], sys.mcp_url);
    assert_eq!(found["issuer"], sys.authz_url);
    assert_eq!(found["jwks"], 200);
    assert_eq!(found["registered"], 201, "{found}");
    let client_id = found["client_id"].as_str().unwrap().to_owned();

    // The code, obtained by the test: the user signs in and consents in the pages.
    let (verifier, challenge) = pkce();
    let code = sys
        .authorization_code(
            &client_id,
            redirect_uri,
            "profile:read",
            &challenge,
            "testuser",
        )
        .await;

    let form = json!({
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "client_id": client_id, "code_verifier": verifier, "resource": sys.mcp_url,
    });
    let done = browser
        .execute_async(
            EXCHANGE_AND_CALL,
            vec![found["token_endpoint"].clone(), json!(sys.mcp_url), form],
        )
        .await
        .unwrap();
    browser.quit().await;
    assert!(done.get("error").is_none(), "{done}");
    assert_eq!(done["token_status"], 200, "{done}");
    assert_eq!(done["init"], 200, "{done}");
    assert_eq!(done["call"]["status"], 200, "{done}");
    let reply: Value = serde_json::from_str(done["call"]["text"].as_str().unwrap()).unwrap();
    let text = reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("testuser"), "{reply}");
    assert_ne!(reply["result"]["isError"], true, "{reply}");
}
