//! `System`: the whole product for one test — a real `authz` (demo accounts and clients
//! seeded, argon2 made cheap, a manual clock) and a real `mcp-resource` whose canonical URL is
//! the `aud` of the tokens, each on a fresh database, sharing a temp data dir (where the MCP
//! server finds its client secret). Used by the MCP server's and the client's tests alike.

use std::sync::Arc;

use authz::clock::{Clock, ManualClock, SystemClock};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use shared::secret::DatabaseUrl;

use crate::{Backend, TestDb};

/// Both servers, running until dropped.
pub struct System {
    pub authz: authz::state::AppState,
    /// The clock of both servers: advance it to expire tokens, sessions and keys.
    pub clock: Arc<ManualClock>,
    pub authz_url: String,
    pub mcp: Arc<mcp_resource::McpState>,
    /// The MCP endpoint, the `aud` of its tokens.
    pub mcp_url: String,
    pub mcp_base: String,
    /// An HTTP client that does not follow redirects.
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    _dbs: (TestDb, TestDb),
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl System {
    pub async fn start(backend: Backend) -> Self {
        Self::start_tweaked(backend, |_| {}, |_| {}).await
    }

    /// With the MCP server's configuration adjusted.
    pub async fn start_with(backend: Backend, mcp: impl FnOnce(&mut mcp_resource::Config)) -> Self {
        Self::start_tweaked(backend, |_| {}, mcp).await
    }

    /// With the authorization server's configuration adjusted.
    pub async fn start_with_authz(
        backend: Backend,
        authz: impl FnOnce(&mut authz::config::Config),
    ) -> Self {
        Self::start_tweaked(backend, authz, |_| {}).await
    }

    pub async fn start_tweaked(
        backend: Backend,
        authz_tweak: impl FnOnce(&mut authz::config::Config),
        mcp_tweak: impl FnOnce(&mut mcp_resource::Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let m_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authz_url = format!("http://{}", a_listener.local_addr().unwrap());
        let mcp_base = format!("http://{}", m_listener.local_addr().unwrap());
        let mcp_url = format!("{mcp_base}/mcp");
        let a_db = TestDb::new(backend, dir.path(), "authz").await;
        let m_db = TestDb::new(backend, dir.path(), "mcp").await;

        let mut config = authz::config::Config {
            issuer: authz_url.clone(),
            database_url: Some(DatabaseUrl::new(a_db.url.clone())),
            default_resource: mcp_url.clone(),
            ..authz::config::Config::for_tests(dir.path())
        };
        authz_tweak(&mut config);
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
            database_url: Some(DatabaseUrl::new(m_db.url.clone())),
            ..Default::default()
        };
        mcp_tweak(&mut mcfg);
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

    /// Start one more `authz` replica on the same database, data dir (master key), issuer and
    /// clock, with its own caches, key ring and listener: its base URL and state. It runs until
    /// the system is dropped. `tweak` adjusts its copy of the first replica's configuration.
    pub async fn replica(
        &mut self,
        tweak: impl FnOnce(&mut authz::config::Config),
    ) -> (String, authz::state::AppState) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = (*self.authz.config).clone();
        tweak(&mut config);
        let state = authz::build_state(config, self.clock.clone())
            .await
            .unwrap();
        let s = state.clone();
        self.tasks.push(tokio::spawn(async move {
            authz::serve(s, listener, std::future::pending())
                .await
                .unwrap();
        }));
        (url, state)
    }

    /// The demo service client's id and secret (client_credentials).
    pub fn service_secret(&self) -> (String, String) {
        let secret: Value = serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join(authz::seed::DEMO_SECRETS_FILE)).unwrap(),
        )
        .unwrap();
        let secret = secret["client_secret"].as_str().unwrap().to_owned();
        (authz::seed::DEMO_SERVICE_CLIENT.to_owned(), secret)
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
        let (id, secret) = self.service_secret();
        self.token(
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await
    }

    /// The access token of a token request (panics with the response when there is none).
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

    /// `GET url` as JSON (metadata documents).
    pub async fn get_json(&self, url: &str) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A demo user signs in and consents through the real pages for `client_id` (a public
    /// client, PKCE `challenge`, the MCP server as resource): the authorization code.
    pub async fn authorization_code(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        challenge: &str,
        username: &str,
    ) -> String {
        let password = authz::seed::DEMO_USERS
            .iter()
            .find(|(u, _, _)| *u == username)
            .unwrap()
            .1;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("resource", &self.mcp_url)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "s1");
        let url = format!("{}/authorize?{}", self.authz_url, q.finish());
        let back = crate::agent::FormAgent::new()
            .sign_in(&self.authz_url, &url, username, password, "approve")
            .await
            .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
        url::Url::parse(&back)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {back}"))
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
        self.post_with(token, body, &[]).await
    }

    /// A raw JSON-RPC POST with extra headers (`Mcp-Method`, `Mcp-Name`, …).
    pub async fn post_with(
        &self,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(&self.mcp_url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("authz_url", &self.authz_url)
            .field("mcp_url", &self.mcp_url)
            .finish_non_exhaustive()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
