//! Federation (issue 26): signing in here through an upstream identity provider.
//!
//! - `flow`: the upstream is a second `authz` (a full OpenID provider) served over https by
//!   the test, its certificate trusted through `cimd.extra_roots` and its loopback address
//!   allow-listed past the SSRF guard; the browser is a `FormAgent` that signs in at both.
//! - `console`: linking and unlinking from the account page and the admin console.
//! - `vault`: the provider's tokens kept for resource servers, released by token exchange.
//! - `ldap`: an LDAP directory (a real `slapd` per test) behind the password check.
//! - `scripted`: a provider whose answers the test writes (`testkit::https::HttpsHost`, an
//!   ES256 key of the test): how tampered, mis-issued and replayed answers are refused, email
//!   linking, groups → roles, and a plain OAuth 2.0 (GitHub-style) provider.

mod console;
mod flow;
mod ldap;
mod ldap_review;
mod ldap_review2;
mod ldap_review3;
mod review;
mod scripted;
mod vault;

use authz::config::Config;
use authz::config::upstream::Upstream;
use authz::store::{AuthMethod, ClientSettings, GrantType};
use shared::secret::ClientSecret;
use testkit::agent::{FormAgent, Page, hidden_inputs, unescape};

use crate::support::{Backend, MCP, TestApp};

/// The provider id the tests configure.
pub const CORP: &str = "corp";
/// The client the downstream server is at the upstream.
const DOWNSTREAM: &str = "downstream";
pub const UP_PASSWORD: &str = "upstream pass phrase 1";

/// A downstream server federating to an upstream `authz`, and a browser for both.
pub struct Federated {
    pub up: TestApp,
    pub app: TestApp,
    pub agent: FormAgent,
}

/// The provider entry for an upstream at `issuer` with `secret`.
pub fn provider(issuer: &str, secret: &str) -> Upstream {
    Upstream {
        id: CORP.into(),
        name: "Corp SSO".into(),
        issuer: Some(issuer.to_owned()),
        client_id: DOWNSTREAM.into(),
        client_secret: Some(ClientSecret::new(secret)),
        jit: true,
        roles: vec!["user".into()],
        ..Upstream::default()
    }
}

/// Trust the https test host at `host_port` whose certificate is the PEM file `ca`.
pub fn trust(c: &mut Config, ca: std::path::PathBuf, host_port: String) {
    c.cimd.extra_roots = Some(ca);
    c.cimd.allowed_private_hosts = vec![host_port];
    c.cimd.timeout_secs = 2;
}

impl Federated {
    /// An upstream `authz` over https with the downstream registered as a confidential client,
    /// and the downstream configured with it as provider `corp` (`edit` may change the entry
    /// and the rest of the downstream's configuration).
    pub async fn start(backend: Backend, edit: impl FnOnce(&mut Config)) -> Self {
        Self::start_as(backend, false, edit).await
    }

    /// As `start`; with `signed`, the downstream authenticates at the upstream with
    /// `private_key_jwt` (an ES256 key in a PEM file, its public JWK registered there).
    pub async fn start_as(backend: Backend, signed: bool, edit: impl FnOnce(&mut Config)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = TestApp::spawn_on(backend, up_listener, true, |_| {}).await;
        let key = signed.then(|| {
            use base64::Engine;
            let (der, _) = testkit::https::es256_key("unused");
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
            let path = up.dir.path().join("downstream-key.pem");
            std::fs::write(&path, pem).unwrap();
            let alg = authz::config::types::SigningAlg::Es256;
            let signer = authz::keys::SigningKey::from_pkcs8(alg, &der).unwrap();
            let jwks = serde_json::json!({ "keys": [signer.public_jwk()] });
            (path, jwks)
        });
        let (_, secret) = authz::clients::admin::add_client(
            up.state.client_services(),
            "test",
            Some(DOWNSTREAM.to_owned()),
            ClientSettings {
                name: "Downstream".into(),
                auth_method: if signed {
                    AuthMethod::PrivateKeyJwt
                } else {
                    AuthMethod::ClientSecretBasic
                },
                jwks: key.as_ref().map(|(_, jwks)| jwks.to_string()),
                grant_types: vec![GrantType::AuthorizationCode],
                redirect_uris: vec![format!(
                    "http://127.0.0.1:{port}/login/upstream/{CORP}/callback"
                )],
                scopes: shared::ScopeSet::parse("openid profile email").unwrap(),
                resources: vec![MCP.to_owned()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let secret = secret.map(|s| s.expose().to_owned()).unwrap_or_default();
        let ca = up.dir.path().join("tls.pem");
        let host_port = up.base.trim_start_matches("https://").to_owned();
        let issuer = up.base.clone();
        let app = TestApp::spawn_on(backend, listener, false, |c| {
            trust(c, ca.clone(), host_port);
            let mut entry = provider(&issuer, &secret);
            if let Some((path, _)) = &key {
                entry.client_secret = None;
                entry.client_auth = authz::config::upstream::ClientAuth::PrivateKeyJwt;
                entry.private_key_file = Some(path.clone());
            }
            c.upstream = vec![entry];
            edit(c);
        })
        .await;
        let agent = FormAgent::trusting(&ca);
        Self { up, app, agent }
    }

    /// Follow `page` through the upstream: the "Continue with" link on a downstream sign-in
    /// page, the upstream's sign-in (`user`) and consent, back to the downstream's callback;
    /// the downstream's answer to the callback.
    pub async fn continue_with(&self, page: &Page, user: &str) -> Page {
        let callback = self.to_provider_and_back(page, user).await;
        self.agent.get(&callback).await
    }

    /// As `continue_with`, up to the callback URL (not followed).
    pub async fn to_provider_and_back(&self, page: &Page, user: &str) -> String {
        let href = upstream_link(&page.body).expect("a Continue with link");
        let start = self.agent.get(&self.app.url(&href)).await;
        assert_eq!(start.status, 303, "{}", start.body);
        let at_upstream = start.location.unwrap();
        assert!(at_upstream.starts_with(&self.up.base), "{at_upstream}");
        self.agent
            .sign_in(&self.up.base, &at_upstream, user, UP_PASSWORD, "approve")
            .await
            .unwrap_or_else(|p| panic!("upstream sign-in stopped at {} {}", p.status, p.body))
    }

    /// Follow downstream redirects and approve its consent page; the redirect to the client.
    pub async fn finish_downstream(&self, mut page: Page) -> String {
        for _ in 0..6 {
            match page.status {
                303 | 302 => {
                    let loc = page.location.clone().unwrap_or_default();
                    if !loc.starts_with('/') {
                        return loc;
                    }
                    page = self.agent.get(&self.app.url(&loc)).await;
                }
                200 if page.body.contains("action=\"/consent\"") => {
                    let mut fields = hidden_inputs(&page.body);
                    fields.push(("decision".into(), "approve".into()));
                    page = self
                        .agent
                        .post_form(&self.app.url("/consent"), &fields)
                        .await;
                }
                _ => {
                    let refused = self.app.audit_of("upstream.refused").await;
                    let reasons: Vec<_> = refused.iter().map(|e| &e.details["reason"]).collect();
                    panic!(
                        "stopped at {} (refusals {reasons:?}) {}",
                        page.status, page.body
                    )
                }
            }
        }
        panic!("too many steps")
    }

    /// A user at the upstream (with the test password) and an email address there.
    pub async fn upstream_user(&self, name: &str, email: Option<&str>) -> String {
        let id = self.up.user(name, UP_PASSWORD, "user").await;
        if let Some(e) = email {
            self.up
                .state
                .store
                .set_user_email(&id, Some(e), 0)
                .await
                .unwrap();
        }
        id
    }
}

/// The "Continue with" link of a sign-in page, unescaped.
pub fn upstream_link(html: &str) -> Option<String> {
    let start = html.find("href=\"/login/upstream/")? + "href=\"".len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// How many of the user's sessions are live.
pub async fn live_sessions(app: &TestApp, user_id: &str) -> usize {
    let sessions = app.state.store.user_sessions(user_id).await.unwrap();
    sessions.iter().filter(|s| s.is_live()).count()
}
