//! `mcp-auth-client`: a library and command-line client for the MCP server. Starting from the
//! MCP server's URL alone it discovers the authorization server, signs in (password, browser
//! with PKCE, or API key), keeps tokens fresh (refresh-token rotation), steps up on
//! `insufficient_scope` where the sign-in method allows, and offers a typed call per tool over
//! rmcp's Streamable HTTP client.

pub mod discovery;
pub mod dpop;
pub mod error;
pub mod signin;
pub mod tokens;

use std::path::PathBuf;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::secret::{AccessToken, ClientSecret};
use tokio::sync::Mutex;

pub use discovery::Endpoints;
pub use error::{ClientError, Result};
pub use tokens::{SignInMethod, Tokens};

use error::challenge_params;
use signin::{BrowserSignIn, DeviceSignIn, now, token_request_with};

/// The public first-party client the demo system registers.
pub const DEFAULT_CLIENT_ID: &str = "mcp-cli";
/// Refresh this long before expiry.
const REFRESH_MARGIN_SECS: i64 = 30;

/// The caller's profile (`get_user_profile`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Profile {
    pub subject: String,
    pub username: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub client_id: String,
    pub token_expires_at: i64,
}

/// A created API key: the credentials are shown once (the secret redacts itself in `Debug`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct ApiKey {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub name: String,
    pub scope: String,
    pub expires_at: Option<i64>,
}

/// Filters for `list_audit_events`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<i64>,
}

type Session = RunningService<RoleClient, ()>;

/// An MCP client that knows how to get and keep a token.
pub struct AuthenticatedMcpClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    client_id: String,
    tokens: Mutex<Option<Tokens>>,
    remember: Option<PathBuf>,
    session: Mutex<Option<(AccessToken, Session)>>,
    /// `--dpop`: the session's proof key (RFC 9449); tokens are bound to it.
    dpop: Option<std::sync::Arc<dpop::DpopKey>>,
}

impl std::fmt::Debug for AuthenticatedMcpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatedMcpClient")
            .field("mcp_url", &self.endpoints.mcp_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AuthenticatedMcpClient {
    /// Discover everything from the MCP server's URL.
    pub async fn connect(mcp_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let endpoints = discovery::discover(&http, mcp_url).await?;
        let dpop = if dpop::by_default() {
            Some(dpop::generate()?)
        } else {
            None
        };
        Ok(Self {
            http,
            endpoints,
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            tokens: Mutex::new(None),
            remember: None,
            session: Mutex::new(None),
            dpop,
        })
    }

    /// Use DPoP (RFC 9449): a new ES256 key for this session; token requests carry proofs
    /// (so tokens are bound to the key) and so does every MCP request. Remembered tokens
    /// keep their key.
    pub fn with_dpop(mut self) -> Result<Self> {
        self.dpop = Some(dpop::generate()?);
        Ok(self)
    }

    /// The session's DPoP key, when DPoP is on.
    pub fn dpop_key(&self) -> Option<&dpop::DpopKey> {
        self.dpop.as_deref()
    }

    /// Use another public client id for password and browser sign-in.
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Keep tokens in `path` (mode 0600) and start from what is there.
    pub async fn remember_in(mut self, path: PathBuf) -> Self {
        if let Some(t) = tokens::load(&path) {
            // Remembered DPoP-bound tokens come with their key.
            if let Some(key) = t.dpop_key.as_ref().and_then(dpop::import) {
                self.dpop = Some(key);
            }
            *self.tokens.lock().await = Some(t);
        }
        self.remember = Some(path);
        self
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The current token set (for display; Debug redacts it).
    pub async fn tokens(&self) -> Option<Tokens> {
        self.tokens.lock().await.clone()
    }

    async fn set_tokens(&self, mut t: Option<Tokens>) -> Result<()> {
        if let (Some(t), Some(key)) = (t.as_mut(), &self.dpop) {
            t.dpop_key = dpop::export(key);
        }
        if let Some(path) = &self.remember {
            match &t {
                Some(t) => tokens::save(path, t)?,
                None => tokens::forget(path),
            }
        }
        *self.tokens.lock().await = t;
        *self.session.lock().await = None;
        Ok(())
    }

    /// An explicit scope gets `offline_access` added so the session can be refreshed; an
    /// empty one stays empty (the server grants what the user's roles allow, and first-party
    /// clients such as `mcp-cli` always get a refresh token).
    fn scope_with_refresh(scope: &str) -> String {
        let scope = scope.trim();
        if scope.is_empty() || scope.split(' ').any(|s| s == "offline_access") {
            scope.to_owned()
        } else {
            format!("{scope} offline_access")
        }
    }

    /// Password grant (first-party clients only). `scope` empty: everything the user's roles
    /// allow.
    pub async fn login_with_password(
        &self,
        username: &str,
        password: &str,
        scope: &str,
    ) -> Result<()> {
        let scope = Self::scope_with_refresh(scope);
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", self.client_id.as_str()),
            ("username", username),
            ("password", password),
            ("resource", self.endpoints.resource.as_str()),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        let t = token_request_with(
            &self.http,
            &self.endpoints,
            &form,
            None,
            &self.client_id,
            SignInMethod::Password,
            self.dpop.as_deref(),
        )
        .await?;
        self.set_tokens(Some(t)).await
    }

    /// Start a browser sign-in; show `signin.url` to the user (or open it), then call
    /// [`AuthenticatedMcpClient::finish_browser_login`].
    pub async fn start_browser_login(&self, scope: &str) -> Result<BrowserSignIn> {
        let scope = Self::scope_with_refresh(scope);
        BrowserSignIn::start(
            &self.endpoints,
            &self.client_id,
            &scope,
            self.dpop.as_deref(),
        )
        .await
    }

    pub async fn finish_browser_login(
        &self,
        signin: BrowserSignIn,
        timeout: std::time::Duration,
    ) -> Result<()> {
        let t = signin
            .finish(
                &self.http,
                &self.endpoints,
                &self.client_id,
                timeout,
                self.dpop.as_deref(),
            )
            .await?;
        self.set_tokens(Some(t)).await
    }

    /// Authorization code + PKCE through the browser: `open` receives the URL (open it, or
    /// print it); waits up to five minutes for the loopback redirect.
    pub async fn login_with_browser(&self, scope: &str, open: impl FnOnce(&str)) -> Result<()> {
        let signin = self.start_browser_login(scope).await?;
        open(&signin.url);
        self.finish_browser_login(signin, std::time::Duration::from_secs(300))
            .await
    }

    /// The device authorization grant (RFC 8628), for machines without a browser: `show`
    /// receives what to tell the user (the address and the code); then polls until the user
    /// approves or denies on another device, or the code expires.
    pub async fn login_with_device(
        &self,
        scope: &str,
        show: impl FnOnce(&DeviceSignIn),
    ) -> Result<()> {
        let scope = Self::scope_with_refresh(scope);
        let signin =
            DeviceSignIn::start(&self.http, &self.endpoints, &self.client_id, &scope).await?;
        show(&signin);
        let t = signin
            .finish(
                &self.http,
                &self.endpoints,
                &self.client_id,
                self.dpop.as_deref(),
            )
            .await?;
        self.set_tokens(Some(t)).await
    }

    /// An API key (client_credentials with the key as client): acts as the key's owner.
    pub async fn login_with_api_key(
        &self,
        key_id: &str,
        key_secret: &ClientSecret,
        scope: &str,
    ) -> Result<()> {
        let t = self.api_key_tokens(key_id, key_secret, scope).await?;
        self.set_tokens(Some(t)).await
    }

    async fn api_key_tokens(
        &self,
        key_id: &str,
        key_secret: &ClientSecret,
        scope: &str,
    ) -> Result<Tokens> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("resource", self.endpoints.resource.as_str()),
        ];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let method = SignInMethod::ApiKey {
            key_id: key_id.to_owned(),
            key_secret: key_secret.clone(),
        };
        token_request_with(
            &self.http,
            &self.endpoints,
            &form,
            Some((key_id, key_secret.expose())),
            key_id,
            method,
            self.dpop.as_deref(),
        )
        .await
    }

    /// A fresh access token: refreshed (rotation) or re-obtained (API key) near expiry.
    async fn access_token(&self) -> Result<AccessToken> {
        let current = self.tokens.lock().await.clone();
        let Some(t) = current else {
            return Err(ClientError::AuthRequired("not signed in".into()));
        };
        if t.expires_at - now() > REFRESH_MARGIN_SECS {
            return Ok(t.access_token);
        }
        let fresh = match (&t.method, &t.refresh_token) {
            (SignInMethod::ApiKey { key_id, key_secret }, _) => {
                self.api_key_tokens(key_id, key_secret, &t.scope).await?
            }
            (method, Some(rt)) => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", t.client_id.as_str()),
                    ("refresh_token", rt.expose()),
                ];
                token_request_with(
                    &self.http,
                    &self.endpoints,
                    &form,
                    None,
                    &t.client_id,
                    method.clone(),
                    self.dpop.as_deref(),
                )
                .await
                .map_err(|e| {
                    ClientError::AuthRequired(format!(
                        "the session could not be refreshed ({e}); sign in again"
                    ))
                })?
            }
            _ => {
                return Err(ClientError::AuthRequired(
                    "the token expired; sign in again".into(),
                ));
            }
        };
        let token = fresh.access_token.clone();
        self.set_tokens(Some(fresh)).await?;
        Ok(token)
    }

    async fn session_for(&self, token: &AccessToken) -> Result<()> {
        let bound = self
            .tokens
            .lock()
            .await
            .as_ref()
            .is_some_and(|t| t.dpop_bound);
        let mut guard = self.session.lock().await;
        if guard.as_ref().is_some_and(|(t, _)| t == token) {
            return Ok(());
        }
        let uri = self.endpoints.mcp_url.clone();
        let served = match (&self.dpop, bound) {
            // RFC 9449 §7: a bound token goes with a proof on every request.
            (Some(key), true) => {
                let client = dpop::DpopHttp::new(
                    reqwest::Client::default(),
                    key.clone(),
                    token.expose().into(),
                );
                let cfg = StreamableHttpClientTransportConfig::with_uri(uri);
                ().serve(StreamableHttpClientTransport::with_client(client, cfg))
                    .await
            }
            _ => {
                let cfg = StreamableHttpClientTransportConfig::with_uri(uri)
                    .auth_header(token.expose().to_owned());
                ().serve(StreamableHttpClientTransport::from_config(cfg))
                    .await
            }
        };
        let session = served.map_err(|e| match e.auth_challenge().map(challenge_params) {
            Some(p) if p.get("error").map(String::as_str) == Some("invalid_token") => {
                ClientError::AuthRequired(p.get("error_description").cloned().unwrap_or_default())
            }
            Some(_) => ClientError::AuthRequired("the server wants a token".into()),
            None => ClientError::transport(e),
        })?;
        *guard = Some((token.clone(), session));
        Ok(())
    }

    /// The scopes the current tokens hold (empty when signed out).
    async fn held_scope(&self) -> String {
        let tokens = self.tokens.lock().await;
        tokens.as_ref().map(|t| t.scope.clone()).unwrap_or_default()
    }

    /// The MCP session for a fresh access token, locked for one request.
    async fn connected(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<(AccessToken, Session)>>> {
        let token = self.access_token().await?;
        self.session_for(&token).await?;
        Ok(self.session.lock().await)
    }

    async fn call_once(&self, tool: &str, args: &Value) -> Result<CallToolResult> {
        let guard = self.connected().await?;
        let session = live(&guard)?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(map) = args {
            params = params.with_arguments(map.clone());
        }
        let held = self.held_scope().await;
        session.call_tool(params).await.map_err(|e| {
            match e.auth_challenge().map(challenge_params) {
                Some(p) if p.get("error").map(String::as_str) == Some("insufficient_scope") => {
                    // The challenge lists everything to ask for (held + missing): report
                    // what is missing.
                    let wanted = p.get("scope").cloned().unwrap_or_default();
                    let missing: Vec<&str> = wanted
                        .split(' ')
                        .filter(|s| !s.is_empty() && !held.split(' ').any(|h| h == *s))
                        .collect();
                    ClientError::Forbidden {
                        scope: if missing.is_empty() {
                            wanted.clone()
                        } else {
                            missing.join(" ")
                        },
                        message: p.get("error_description").cloned().unwrap_or_default(),
                    }
                }
                Some(p) => ClientError::AuthRequired(
                    p.get("error_description").cloned().unwrap_or_default(),
                ),
                None => ClientError::transport(e),
            }
        })
    }

    /// Call a tool; its JSON result. On `insufficient_scope` an API key steps up once (asks
    /// for the scopes the server named); other sign-ins report `Forbidden`.
    pub async fn call(&self, tool: &str, args: Value) -> Result<Value> {
        let result = match self.call_once(tool, &args).await {
            Err(ClientError::Forbidden { scope, message }) => {
                let current = self.tokens.lock().await.clone();
                match current.map(|t| t.method) {
                    Some(SignInMethod::ApiKey { key_id, key_secret }) => {
                        let held = self.held_scope().await;
                        let wanted = format!("{held} {scope}");
                        let t = self
                            .api_key_tokens(&key_id, &key_secret, wanted.trim())
                            .await
                            .map_err(|_| ClientError::Forbidden {
                                scope: scope.clone(),
                                message: message.clone(),
                            })?;
                        self.set_tokens(Some(t)).await?;
                        self.call_once(tool, &args).await?
                    }
                    _ => return Err(ClientError::Forbidden { scope, message }),
                }
            }
            other => other?,
        };
        let text: String = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        if result.is_error == Some(true) {
            return Err(ClientError::Tool(text));
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Protocol(format!("{tool}: {e}")))
    }

    /// The tools this token may call.
    pub async fn list_tools(&self) -> Result<Vec<String>> {
        let guard = self.connected().await?;
        let session = live(&guard)?;
        let tools = session
            .list_all_tools()
            .await
            .map_err(ClientError::transport)?;
        Ok(tools.into_iter().map(|t| t.name.to_string()).collect())
    }

    pub async fn get_user_profile(&self) -> Result<Profile> {
        let v = self.call("get_user_profile", json!({})).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub async fn create_secure_note(&self, title: &str, content: &str) -> Result<Value> {
        self.call(
            "create_secure_note",
            json!({ "title": title, "content": content }),
        )
        .await
    }

    pub async fn list_secure_notes(&self) -> Result<Vec<Value>> {
        let v = self.call("list_secure_notes", json!({})).await?;
        Ok(v["notes"].as_array().cloned().unwrap_or_default())
    }

    pub async fn get_secure_note(&self, id: &str) -> Result<Value> {
        self.call("get_secure_note", json!({ "id": id })).await
    }

    pub async fn create_api_key(
        &self,
        name: &str,
        scope: &str,
        expires_in_days: Option<i64>,
    ) -> Result<ApiKey> {
        let v = self
            .call(
                "create_api_key",
                json!({ "name": name, "scope": scope, "expires_in_days": expires_in_days }),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub async fn list_api_keys(&self) -> Result<Vec<Value>> {
        let v = self.call("list_api_keys", json!({})).await?;
        Ok(v["keys"].as_array().cloned().unwrap_or_default())
    }

    pub async fn revoke_api_key(&self, key_id: &str) -> Result<Value> {
        self.call("revoke_api_key", json!({ "key_id": key_id }))
            .await
    }

    pub async fn list_audit_events(&self, filter: &AuditFilter) -> Result<Value> {
        let args =
            serde_json::to_value(filter).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call("list_audit_events", args).await
    }

    pub async fn get_security_summary(&self, window_secs: Option<i64>) -> Result<Value> {
        self.call(
            "get_security_summary",
            json!({ "window_secs": window_secs }),
        )
        .await
    }

    /// Sign out: the server-side grant ends (MCP `logout` tool), the refresh token is revoked
    /// (RFC 7009), and local tokens are forgotten.
    pub async fn logout(&self) -> Result<()> {
        let current = self.tokens.lock().await.clone();
        let Some(t) = current else {
            return Ok(());
        };
        let tool = self.call("logout", json!({})).await;
        if let Some(rt) = &t.refresh_token {
            signin::revoke(
                &self.http,
                &self.endpoints,
                rt.expose(),
                "refresh_token",
                &t.client_id,
            )
            .await?;
        }
        self.set_tokens(None).await?;
        match tool {
            Ok(_) | Err(ClientError::Tool(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The session in a locked slot that `connected` has just filled.
fn live(slot: &Option<(AccessToken, Session)>) -> Result<&Session> {
    slot.as_ref()
        .map(|(_, s)| s)
        .ok_or_else(|| ClientError::Transport {
            message: "no MCP session".into(),
            source: None,
        })
}
