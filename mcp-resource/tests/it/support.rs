//! `System`: a real `authz` (with a manual clock and the demo accounts) and a real
//! `mcp-resource` whose canonical URL is the `aud` of the tokens, on fresh databases.

use std::sync::Arc;

use authz::clock::{Clock, ManualClock, SystemClock};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

pub use testkit::Backend;

pub struct System {
    pub authz: authz::state::AppState,
    pub clock: Arc<ManualClock>,
    pub authz_url: String,
    pub mcp: Arc<mcp_resource::McpState>,
    pub mcp_url: String,
    pub mcp_base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    _dbs: (testkit::TestDb, testkit::TestDb),
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl System {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut mcp_resource::Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let m_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authz_url = format!("http://{}", a_listener.local_addr().unwrap());
        let mcp_base = format!("http://{}", m_listener.local_addr().unwrap());
        let mcp_url = format!("{mcp_base}/mcp");
        let a_db = testkit::TestDb::new(backend, dir.path(), "authz").await;
        let m_db = testkit::TestDb::new(backend, dir.path(), "mcp").await;

        let config = authz::config::Config {
            issuer: authz_url.clone(),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(shared::secret::DatabaseUrl::new(a_db.url.clone())),
            db_max_connections: 5,
            default_resource: mcp_url.clone(),
            argon2: authz::config::Argon2Config {
                m_cost: 256,
                t_cost: 1,
                p_cost: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let authz = authz::build_state(config, clock.clone()).await.unwrap();
        authz::seed::seed_demo(&authz).await.unwrap();
        let a_state = authz.clone();
        let mut tasks = vec![tokio::spawn(async move {
            authz::serve(a_state, a_listener, std::future::pending())
                .await
                .unwrap();
        })];

        let mut mcfg = mcp_resource::Config {
            issuer: authz_url.clone(),
            resource_url: mcp_url.clone(),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(shared::secret::DatabaseUrl::new(m_db.url.clone())),
            ..Default::default()
        };
        tweak(&mut mcfg);
        let mcp = mcp_resource::build_state_with_clock(mcfg, clock.clone())
            .await
            .unwrap();
        let m_state = Arc::clone(&mcp);
        tasks.push(tokio::spawn(async move {
            mcp_resource::serve(m_state, m_listener, std::future::pending())
                .await
                .unwrap();
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            authz,
            clock,
            authz_url,
            mcp,
            mcp_url,
            mcp_base,
            http,
            dir,
            _dbs: (a_db, m_db),
            tasks,
        }
    }

    /// A demo user's token for the MCP server (password grant through the demo CLI client).
    pub async fn user_token(&self, username: &str) -> String {
        let password = authz::seed::DEMO_USERS
            .iter()
            .find(|(u, _, _)| *u == username)
            .unwrap()
            .1;
        self.token(
            &[
                ("grant_type", "password"),
                ("client_id", "mcp-cli"),
                ("username", username),
                ("password", password),
            ],
            None,
        )
        .await
    }

    /// The demo service client's token (client_credentials).
    pub async fn service_token(&self) -> String {
        let secret: Value = serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("demo-credentials.json")).unwrap(),
        )
        .unwrap();
        let secret = secret["client_secret"].as_str().unwrap().to_owned();
        self.token(
            &[("grant_type", "client_credentials")],
            Some(("demo-service", &secret)),
        )
        .await
    }

    pub async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> String {
        let mut req = self
            .http
            .post(format!("{}/token", self.authz_url))
            .form(form);
        if let Some((id, s)) = basic {
            req = req.basic_auth(id, Some(s));
        }
        let body: Value = req.send().await.unwrap().json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_owned()
    }

    /// rmcp's client, connected with a bearer token.
    pub async fn client(&self, token: &str) -> RunningService<RoleClient, ()> {
        let cfg = StreamableHttpClientTransportConfig::with_uri(self.mcp_url.clone())
            .auth_header(token.to_owned());
        ().serve(StreamableHttpClientTransport::from_config(cfg))
            .await
            .unwrap()
    }

    /// A raw JSON-RPC POST to the MCP endpoint.
    pub async fn post(&self, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(&self.mcp_url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

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
