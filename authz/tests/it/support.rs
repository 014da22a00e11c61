//! `TestApp`: starts the real server on 127.0.0.1:0 with a manual clock, small argon2
//! parameters (config, not a code path) and a fresh database: a SQLite file in a temp dir, or a
//! fresh PostgreSQL schema dropped afterwards.

use std::pin::Pin;
use std::sync::Arc;

use authz::clock::{Clock, ManualClock, SystemClock};
use authz::config::Config;
use authz::identity::admin::{self, Policy};
use authz::state::AppState;
use authz::store::ClientSettings;
use authz::store::{AuthMethod, GrantType};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;
use shared::AccessTokenClaims;
use shared::secret::Password;
use testkit::agent::{FormAgent, Page, hidden_inputs};

pub const MCP: &str = "http://127.0.0.1:8081/mcp";
pub const OTHER_API: &str = "https://api.example.com/";

pub use testkit::Backend;

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    _db: testkit::TestDb,
    server: tokio::task::JoinHandle<()>,
}

/// The test's reqwest client as the openidconnect crate's HTTP client (the crate's own reqwest
/// support is on reqwest 0.12, which the workspace does not use): the request goes out as given,
/// and the response comes back whole, redirects not followed.
#[derive(Debug, Clone, Copy)]
pub struct OidcHttp<'a>(&'a reqwest::Client);

type OidcResult = Result<openidconnect::HttpResponse, reqwest::Error>;

impl<'c> openidconnect::AsyncHttpClient<'c> for OidcHttp<'_> {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = OidcResult> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let resp = self.0.execute(request.try_into()?).await?;
            let mut out = openidconnect::http::Response::new(Vec::new());
            *out.status_mut() = resp.status();
            *out.version_mut() = resp.version();
            *out.headers_mut() = resp.headers().clone();
            *out.body_mut() = resp.bytes().await?.to_vec();
            Ok(out)
        })
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::spawn_on(backend, listener, false, tweak).await
    }

    /// The server on `listener` (bound by the caller, who may need its address first),
    /// over https (`tls`: a self-signed certificate for 127.0.0.1, `<dir>/tls.pem`, which
    /// [`Self::http`] trusts) or http.
    pub async fn spawn_on(
        backend: Backend,
        listener: tokio::net::TcpListener,
        tls: bool,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let base = format!("{}://{addr}", if tls { "https" } else { "http" });
        let dir = tempfile::tempdir().unwrap();
        let db = testkit::TestDb::new(backend, dir.path(), "authz").await;
        let database_url = db.url.clone();
        let mut config = Config {
            issuer: base.clone(),
            database_url: Some(shared::secret::DatabaseUrl::new(database_url.clone())),
            key_reload_secs: 3600,
            default_resource: MCP.to_owned(),
            ..Config::for_tests(dir.path())
        };
        tweak(&mut config);
        config.validate().unwrap();
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let state = authz::build_state(config, clock.clone()).await.unwrap();
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let served = if tls {
            let (cert, key) = testkit::https::self_signed_files(dir.path(), "tls");
            let pem = std::fs::read(&cert).unwrap();
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
            let files = shared::tls::TlsFiles::load(&cert, &key).unwrap();
            let listener = shared::tls::TlsListener::new(listener, files).unwrap();
            let state = state.clone();
            tokio::spawn(async move {
                authz::serve_on(state, listener, std::future::pending())
                    .await
                    .unwrap();
            })
        } else {
            let state = state.clone();
            tokio::spawn(async move {
                authz::serve(state, listener, std::future::pending())
                    .await
                    .unwrap();
            })
        };
        Self {
            base,
            state,
            clock,
            http: http.build().unwrap(),
            dir,
            database_url,
            _db: db,
            server: served,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// [`Self::http`] as the openidconnect crate's HTTP client.
    pub fn oidc(&self) -> OidcHttp<'_> {
        OidcHttp(&self.http)
    }

    /// Register a client through the real admin path; returns its secret (if confidential).
    pub async fn client(
        &self,
        id: &str,
        method: AuthMethod,
        grants: &[GrantType],
        scope: &str,
        resources: &[&str],
    ) -> Option<String> {
        let (_, secret) = admin::add_client(
            self.state.client_services(),
            "test",
            Some(id.to_owned()),
            ClientSettings {
                name: format!("{id} (test)"),
                auth_method: method,
                grant_types: grants.to_vec(),
                redirect_uris: vec![],
                scopes: shared::ScopeSet::parse(scope).unwrap(),
                resources: resources.iter().map(|s| s.to_string()).collect(),
                always_issue_refresh: false,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        secret.map(|s| s.expose().to_owned())
    }

    /// A confidential `client_credentials` client "bot" (Basic auth, audience MCP); its secret.
    pub async fn bot(&self, scope: &str) -> String {
        self.service_client("bot", scope).await
    }

    /// A confidential `client_credentials` client `id` (Basic auth, audience MCP); its secret.
    pub async fn service_client(&self, id: &str, scope: &str) -> String {
        let grants = [GrantType::ClientCredentials];
        let secret = self
            .client(id, AuthMethod::ClientSecretBasic, &grants, scope, &[MCP])
            .await;
        secret.expect("confidential client has a secret")
    }

    pub async fn user(&self, username: &str, password: &str, role: &str) -> String {
        admin::add_user(
            self.state.identity(),
            "test",
            username,
            &Password::new(password),
            vec![role.into()],
            Policy::Enforce,
        )
        .await
        .unwrap()
        .id
    }

    /// POST /token with a form and optional Basic credentials.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url("/token")).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    pub async fn jwks(&self) -> JwkSet {
        self.get_json("/.well-known/jwks.json").await
    }

    /// Verify an access token the way a resource server would: against the served JWKS,
    /// with iss, aud, exp and `typ: at+jwt` checked.
    pub async fn verify(&self, token: &str, aud: &str) -> AccessTokenClaims {
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
        let jwks = self.jwks().await;
        let kid = header.kid.as_deref().expect("kid");
        let jwk = jwks
            .find(kid)
            .unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.base]);
        v.set_audience(&[aud]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
        jsonwebtoken::decode::<AccessTokenClaims>(token, &key, &v)
            .unwrap()
            .claims
    }

    /// The audit events of `kind` so far.
    pub async fn audit_of(&self, kind: &str) -> Vec<authz::store::AuditEvent> {
        let mut events = self.audit_events().await;
        events.retain(|e| e.kind == kind);
        events
    }

    /// Every audit event so far (after flushing the writer's queue).
    pub async fn audit_events(&self) -> Vec<authz::store::AuditEvent> {
        self.state.audit_log.flush().await;
        self.state.store.recent(10_000).await.unwrap()
    }

    /// Why the last client authentication failed, as the audit log has it (`client.auth_failed`'s
    /// `reason`: a client assertion's refusal is told to the operator, never to the client).
    pub async fn last_client_auth_failure(&self) -> String {
        let events = self.audit_events().await;
        let last = events
            .iter()
            .filter(|e| e.kind == "client.auth_failed")
            .max_by_key(|e| e.id)
            .expect("a client.auth_failed event");
        last.details["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn audit_kinds(&self) -> Vec<String> {
        self.state.audit_log.flush().await;
        self.state
            .store
            .recent(1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Assert an RFC 6749 §5.2 error: status, code, JSON body, no-store. Returns the description.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status().as_u16(), status, "status for {code}");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let www = resp.headers().get("www-authenticate").cloned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], code, "body: {body}");
    if status == 401 {
        assert!(www.is_some(), "401 must carry WWW-Authenticate");
    }
    body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The JSON body of a successful token response.
pub async fn expect_token(resp: reqwest::Response) -> Value {
    let status = resp.status();
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body["token_type"], "Bearer");
    body
}

pub use testkit::pkce;

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub const CB: &str = "http://127.0.0.1:7777/cb";
pub const AFTER_LOGOUT: &str = "https://app.example.com/signed-out";

impl TestApp {
    /// A browser-flow client (authorization_code + refresh_token) redirecting to `CB`.
    pub async fn code_client(&self, id: &str, method: AuthMethod, scope: &str) -> Option<String> {
        let (_, secret) = admin::add_client(
            self.state.client_services(),
            "test",
            Some(id.to_owned()),
            ClientSettings {
                name: format!("{id} app"),
                auth_method: method,
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                redirect_uris: vec![CB.to_owned()],
                post_logout_redirect_uris: vec![AFTER_LOGOUT.to_owned()],
                scopes: shared::ScopeSet::parse(scope).unwrap(),
                resources: vec![MCP.to_owned()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        secret.map(|s| s.expose().to_owned())
    }

    /// `/authorize?…` for `client_id` with PKCE challenge and `extra` parameters.
    pub fn authorize_url(
        &self,
        client_id: &str,
        challenge: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", CB)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "st-123");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        self.url(&format!("/authorize?{}", q.finish()))
    }

    /// Sign in through the real pages and return the client's redirect.
    pub async fn browser_sign_in(
        &self,
        agent: &FormAgent,
        url: &str,
        user: &str,
        password: &str,
    ) -> std::collections::HashMap<String, String> {
        let loc = agent
            .sign_in(&self.base, url, user, password, "approve")
            .await
            .unwrap_or_else(|p| panic!("sign-in stopped at {} {}", p.status, p.body));
        assert!(loc.starts_with(CB), "redirected to {loc}");
        query(&loc)
    }

    /// Redeem a code at the token endpoint (public client).
    pub async fn redeem(&self, client_id: &str, code: &str, verifier: &str) -> reqwest::Response {
        self.token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", CB),
                ("code_verifier", verifier),
            ],
            None,
        )
        .await
    }
}

impl TestApp {
    /// Run SQL straight against this app's database (to stage states the API cannot reach, such
    /// as a successor that escaped a revocation, or to read raw columns): the rows it returns.
    pub async fn sql_rows(&self, sql: &str) -> Vec<sqlx::any::AnyRow> {
        let (pool, _) = shared::db::connect(&self.database_url, 1).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
        rows
    }

    /// Run a statement (see `sql_rows`).
    pub async fn sql(&self, sql: &str) {
        self.sql_rows(sql).await;
    }

    /// The first column of the first row of `sql`, as text (NULL → None).
    pub async fn sql_text(&self, sql: &str) -> Option<String> {
        use sqlx::Row;
        let rows = self.sql_rows(sql).await;
        rows.first()
            .and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten())
    }

    /// The count in the first column of `sql`.
    pub async fn sql_count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        self.sql_rows(sql).await[0].try_get::<i64, _>(0).unwrap()
    }

    /// Disable (or enable) `username` as `actor` through the real admin path (every remedy that
    /// goes with it); the user as it is now.
    pub async fn set_disabled(
        &self,
        actor: &str,
        username: &str,
        disabled: bool,
    ) -> authz::store::User {
        let store = &*self.state.store;
        admin::set_disabled(store, &self.state.events, actor, username, disabled)
            .await
            .unwrap()
    }

    /// An administrator's `private_key_jwt` client `id` whose public keys are `jwks` (inline),
    /// for `notes:read` at `MCP` with `grants` (redirecting to `CB`).
    pub async fn private_key_jwt_client(&self, id: &str, jwks: &Value, grants: &[GrantType]) {
        admin::add_client(
            self.state.client_services(),
            "test",
            Some(id.into()),
            ClientSettings {
                name: format!("{id} (signed)"),
                auth_method: AuthMethod::PrivateKeyJwt,
                jwks: Some(jwks.to_string()),
                grant_types: grants.to_vec(),
                redirect_uris: vec![CB.into()],
                scopes: shared::ScopeSet::parse("notes:read").unwrap(),
                resources: vec![MCP.into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }

    /// `POST /token` with `form` and the client assertion `assertion` (RFC 7523 §2.2).
    pub async fn token_with_assertion(
        &self,
        form: &[(&str, &str)],
        assertion: &str,
    ) -> reqwest::Response {
        let mut form = form.to_vec();
        form.push((
            "client_assertion_type",
            authz::clients::assertion::ASSERTION_TYPE,
        ));
        form.push(("client_assertion", assertion));
        self.token(&form, None).await
    }

    /// The resource server "rs": confidential, token exchange for `MCP` tokens into
    /// management-API tokens carrying at most `scopes`, and introspection. Its secret.
    pub async fn exchange_client(&self, scopes: &str) -> String {
        let (_, secret) = admin::add_client(
            self.state.client_services(),
            "test",
            Some("rs".into()),
            ClientSettings {
                name: "resource server".into(),
                auth_method: AuthMethod::ClientSecretBasic,
                grant_types: vec![GrantType::TokenExchange],
                scopes: shared::ScopeSet::parse(scopes).unwrap(),
                resources: vec![self.state.config.management_audience()],
                serves_resource: Some(MCP.into()),
                may_introspect: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        secret.unwrap().expose().to_owned()
    }

    /// `POST /introspect` as "rs" (`exchange_client`): the RFC 7662 answer.
    pub async fn introspect(&self, rs_secret: &str, token: &str) -> Value {
        self.http
            .post(self.url("/introspect"))
            .basic_auth("rs", Some(rs_secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /token` with `grant_type=refresh_token` for a public client.
    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ];
        form.extend_from_slice(extra);
        self.token(&form, None).await
    }

    /// `GET path` with a bearer token: the status.
    pub async fn bearer_status(&self, path: &str, token: &str) -> u16 {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `GET path` as JSON (metadata documents, JWKS).
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /userinfo` with a bearer token: the status.
    pub async fn userinfo_status(&self, access_token: &str) -> u16 {
        self.bearer_status("/userinfo", access_token).await
    }
}

/// The public test client "cli" signs `username` in with the password grant (scope
/// `notes:read offline_access`) at `base`: the token response. For tests that drive a server
/// process (no `TestApp`).
pub async fn password_tokens(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> Value {
    http.post(format!("{base}/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", username),
            ("password", password),
            ("scope", "notes:read offline_access"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The claims of a JWT (its payload, unverified: what the test reads off a token it was given).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Sign in on `login` (a page with the password form): its hidden fields with `user` and `pw`,
/// POSTed to `/login`. The answer.
pub async fn password_sign_in(
    app: &TestApp,
    agent: &FormAgent,
    login: &Page,
    user: &str,
    pw: &str,
) -> Page {
    let mut fields = hidden_inputs(&login.body);
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), pw.into()));
    agent.post_form(&app.url("/login"), &fields).await
}

/// Sign `agent` in to the console (`/account/login`) as `user` with the password `pw` alone.
pub async fn console_sign_in(app: &TestApp, agent: &FormAgent, user: &str, pw: &str) {
    let login = agent.get(&app.url("/account/login")).await;
    let page = password_sign_in(app, agent, &login, user, pw).await;
    assert_eq!(page.status, 303, "{}", page.body);
}

/// A browser signed in to the console as `user` with the password `pw` alone.
pub async fn console_agent(app: &TestApp, user: &str, pw: &str) -> FormAgent {
    let agent = FormAgent::new();
    console_sign_in(app, &agent, user, pw).await;
    agent
}

/// Submit the form whose action is `action` on the page at `path`, with `extra` fields.
pub async fn submit_form(
    app: &TestApp,
    agent: &FormAgent,
    path: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> Page {
    let page = agent.get(&app.url(path)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = page
        .body
        .split("<form")
        .find(|f| f.contains(&format!("action=\"{action}\"")))
        .unwrap_or_else(|| panic!("no form for {action} on {path}"));
    let mut fields = hidden_inputs(form);
    for (k, v) in extra {
        fields.push(((*k).into(), (*v).into()));
    }
    agent.post_form(&app.url(action), &fields).await
}

/// `page` holds the form whose action is `action` (the step a sign-in waits at).
pub fn assert_form(page: &Page, action: &str) {
    assert!(
        page.body.contains(&format!("action=\"{action}\"")),
        "{}",
        page.body
    );
}

/// Turn two-factor on for `user`: the secret (the confirming code's step is spent).
pub async fn turn_on_totp(app: &TestApp, user: &authz::store::User) -> Vec<u8> {
    use authz::identity::{totp, two_factor};
    let e = two_factor::begin(
        &*app.state.store,
        &app.state.master,
        &app.state.events,
        &app.state.config.issuer,
        user,
    )
    .await
    .unwrap();
    let secret = crate::two_factor::unbase32(&e.secret_base32);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    two_factor::confirm(
        &*app.state.store,
        &app.state.master,
        &app.state.events,
        user,
        &code,
    )
    .await
    .unwrap();
    app.clock.advance(totp::STEP_SECS);
    secret
}

impl TestApp {
    /// A fresh password sign-in of `user` (a browser session started now) and the proof the
    /// one re-authentication rule gives for it: what creating an API key needs.
    pub async fn recent_sign_in(
        &self,
        user: &authz::store::User,
    ) -> (String, authz::clients::api_keys::RecentSignIn) {
        use authz::identity::session;
        let ctx = authz::events::audit::RequestContext {
            ip: None,
            now: self.clock.now(),
            dpop_jkt: None,
        };
        let how = session::SignedIn {
            amr: &["pwd"],
            user_agent: None,
        };
        let (s, _) = self
            .start_session(user, how, &ctx)
            .await
            .unwrap()
            .expect("a session");
        let proof = self.proof_of_sign_in(&s.sid, user).await;
        (s.sid, proof)
    }

    /// The proof the one re-authentication rule gives for the session `sid` of `user` now.
    pub async fn proof_of_sign_in(
        &self,
        sid: &str,
        user: &authz::store::User,
    ) -> authz::clients::api_keys::RecentSignIn {
        authz::identity::session::recent_sign_in(
            &*self.state.store,
            &self.state.config,
            self.clock.now(),
            Some(sid),
            user,
        )
        .await
        .unwrap()
    }
}

/// The identity functions the tests call most, with this server's services filled in.
impl TestApp {
    /// `identity::two_factor::begin` for `user`.
    pub async fn two_factor_begin(
        &self,
        user: &authz::store::User,
    ) -> authz::error::Result<authz::identity::two_factor::Enrolment> {
        let s = &self.state;
        authz::identity::two_factor::begin(&*s.store, &s.master, &s.events, &s.config.issuer, user)
            .await
    }

    /// `identity::two_factor::confirm` of `user`'s enrolment with `code`.
    pub async fn two_factor_confirm(
        &self,
        user: &authz::store::User,
        code: &str,
    ) -> authz::error::Result<Vec<String>> {
        let s = &self.state;
        authz::identity::two_factor::confirm(&*s.store, &s.master, &s.events, user, code).await
    }

    /// `identity::two_factor::check` of `code` (a TOTP or recovery code) for `user`.
    pub async fn two_factor_check(
        &self,
        user: &authz::store::User,
        code: &str,
    ) -> authz::error::Result<bool> {
        let s = &self.state;
        authz::identity::two_factor::check(&*s.store, &s.master, &s.events, user, code).await
    }

    /// `identity::session::start`: a browser session of `user` signed in `how`.
    pub async fn start_session(
        &self,
        user: &authz::store::User,
        how: authz::identity::session::SignedIn<'_>,
        ctx: &authz::events::audit::RequestContext,
    ) -> authz::error::Result<Option<(authz::store::Session, String)>> {
        let s = &self.state;
        authz::identity::session::start(&*s.store, &s.config, &s.events, user, how, ctx).await
    }
}
