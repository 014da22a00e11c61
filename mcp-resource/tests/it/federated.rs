//! Federation end to end (issue 26): an unmodified MCP client (rmcp's own OAuth: discovery,
//! dynamic registration, PKCE, `resource`) signs in at `authz`, whose user chooses "Continue
//! with Corp SSO" — a second `authz`, over https, as the upstream OpenID provider — signs in
//! and consents there, consents here, and calls a tool as the provisioned user. Then the
//! provider's back-channel logout ends the session, and the MCP server, told by Shared
//! Signals, refuses the token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authz::config::upstream::Upstream;
use authz::store::{AuthMethod, ClientSettings, GrantType};
use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use shared::secret::ClientSecret;
use testkit::agent::{FormAgent, Page, hidden_inputs, unescape};
use testkit::{TestDb, both_backends};

use crate::support::{Backend, System, call_tool, initialize, text};

both_backends!(an_mcp_client_signs_in_through_an_upstream_provider_and_logout_reaches_the_tools);

const CALLBACK: &str = "http://127.0.0.1:7777/callback";
const PASSWORD: &str = "upstream pass phrase 1";
const SECRET: &str = "downstream-secret-at-the-upstream-0123456789";
const POLL: Duration = Duration::from_secs(1);

/// A second `authz` over https (a full OpenID provider): its state, base URL and the PEM of
/// its certificate.
struct UpstreamOp {
    state: authz::state::AppState,
    base: String,
    ca: std::path::PathBuf,
    _db: TestDb,
    _task: tokio::task::JoinHandle<()>,
}

async fn upstream_op(
    backend: Backend,
    dir: &std::path::Path,
    clock: Arc<authz::clock::ManualClock>,
) -> UpstreamOp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let db = TestDb::new(backend, dir, "upstream").await;
    let config = authz::config::Config {
        issuer: base.clone(),
        database_url: Some(shared::secret::DatabaseUrl::new(db.url.clone())),
        default_resource: "https://upstream.example/api".into(),
        data_dir: dir.join("upstream"),
        ..authz::config::Config::for_tests(dir.join("upstream"))
    };
    std::fs::create_dir_all(dir.join("upstream")).unwrap();
    let state = authz::build_state(config, clock).await.unwrap();
    let (cert, key) = testkit::https::self_signed_files(dir, "upstream");
    let files = shared::tls::TlsFiles::load(&cert, &key).unwrap();
    let tls = shared::tls::TlsListener::new(listener, files).unwrap();
    let serving = state.clone();
    let task = tokio::spawn(async move {
        authz::serve_on(serving, tls, std::future::pending())
            .await
            .unwrap();
    });
    UpstreamOp {
        state,
        base,
        ca: cert,
        _db: db,
        _task: task,
    }
}

/// Follow the downstream sign-in page through the upstream and back, then the downstream's
/// consent: the redirect to the MCP client.
async fn through_the_provider(
    sys: &System,
    up: &UpstreamOp,
    agent: &FormAgent,
    url: &str,
) -> String {
    let login = agent.get(url).await;
    assert!(
        login.body.contains("Continue with Corp SSO"),
        "{}",
        login.body
    );
    let start = login.body.find("href=\"/login/upstream/").unwrap() + 6;
    let end = login.body[start..].find('"').unwrap() + start;
    let href = unescape(&login.body[start..end]);
    let go = agent.get(&format!("{}{href}", sys.authz_url)).await;
    let at_upstream = go.location.unwrap();
    let callback = agent
        .sign_in(&up.base, &at_upstream, "alice", PASSWORD, "approve")
        .await
        .unwrap_or_else(|p| panic!("upstream stopped at {} {}", p.status, p.body));
    let mut page: Page = agent.get(&callback).await;
    for _ in 0..5 {
        match page.status {
            303 => {
                let loc = page.location.clone().unwrap();
                if !loc.starts_with('/') {
                    return loc;
                }
                page = agent.get(&format!("{}{loc}", sys.authz_url)).await;
            }
            200 if page.body.contains("action=\"/consent\"") => {
                let mut fields = hidden_inputs(&page.body);
                fields.push(("decision".into(), "approve".into()));
                page = agent
                    .post_form(&format!("{}/consent", sys.authz_url), &fields)
                    .await;
            }
            _ => panic!("stopped at {} {}", page.status, page.body),
        }
    }
    panic!("too many steps")
}

async fn an_mcp_client_signs_in_through_an_upstream_provider_and_logout_reaches_the_tools(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    // The downstream's provider entry needs the upstream's address, and the upstream's client
    // registration the downstream's: the upstream comes first, and the secret the downstream
    // is configured with is set on its registration afterwards.
    let clock =
        authz::clock::ManualClock::new(authz::clock::Clock::now(&authz::clock::SystemClock));
    let up = upstream_op(backend, dir.path(), Arc::new(clock)).await;
    let (issuer, ca) = (up.base.clone(), up.ca.clone());
    let (userinfo_base, ca_for_mcp) = (up.base.clone(), up.ca.clone());
    let host_port = issuer.trim_start_matches("https://").to_owned();
    let sys = System::start_tweaked(
        backend,
        |c| {
            c.cimd.extra_roots = Some(ca.clone());
            c.cimd.allowed_private_hosts = vec![host_port];
            // The token vault for this MCP server (its client `mcp-resource`), and users may
            // allow it (the scope `upstream:corp`).
            c.roles
                .get_mut("user")
                .unwrap()
                .push("upstream:corp".into());
            c.upstream = vec![Upstream {
                id: "corp".into(),
                name: "Corp SSO".into(),
                issuer: Some(issuer),
                client_id: "downstream".into(),
                client_secret: Some(ClientSecret::new(SECRET)),
                jit: true,
                roles: vec!["user".into()],
                vault: true,
                vault_clients: vec![authz::seed::DEMO_MCP_CLIENT.into()],
                ..Upstream::default()
            }];
        },
        |m| {
            m.ssf_poll_secs = POLL.as_secs();
            m.upstream_provider = Some("corp".into());
            m.upstream_userinfo_url = Some(format!("{userinfo_base}/userinfo"));
            m.extra_roots = Some(ca_for_mcp);
            m.challenge_scope = "profile:read notes:read upstream:corp".into();
        },
    )
    .await;
    authz::clients::admin::add_client(
        up.state.client_services(),
        "test",
        Some("downstream".into()),
        ClientSettings {
            name: "Downstream".into(),
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::AuthorizationCode],
            redirect_uris: vec![format!("{}/login/upstream/corp/callback", sys.authz_url)],
            scopes: shared::ScopeSet::parse("openid profile email").unwrap(),
            resources: vec!["https://upstream.example/api".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let now = authz::clock::Clock::now(&*up.state.clock);
    up.state
        .store
        .set_client_secret("downstream", &shared::crypto::sha256_hex(SECRET), now)
        .await
        .unwrap();
    authz::identity::admin::add_user(
        up.state.identity(),
        "test",
        "alice",
        &shared::secret::Password::new(PASSWORD),
        vec!["user".into()],
        authz::identity::admin::Policy::Enforce,
    )
    .await
    .unwrap();

    // The unmodified MCP client: discovery, registration, the authorization URL.
    let challenge = sys.post(None, &initialize()).await.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut oauth = OAuthState::new(sys.mcp_url.as_str(), None).await.unwrap();
    oauth
        .start_authorization(
            AuthorizationRequest::new(CALLBACK)
                .with_client_name("rmcp federated test")
                .with_challenge(challenge),
        )
        .await
        .unwrap();
    let url = oauth.get_authorization_url().await.unwrap();
    let agent = FormAgent::trusting(&up.ca);
    let redirect = through_the_provider(&sys, &up, &agent, &url).await;
    assert!(redirect.starts_with(CALLBACK), "{redirect}");
    oauth.handle_callback_url(&redirect).await.unwrap();
    let manager = oauth.into_authorization_manager().unwrap();
    let token = manager.get_access_token().await.unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::default(), manager),
        StreamableHttpClientTransportConfig::with_uri(sys.mcp_url.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    let profile = call_tool(&client, "get_user_profile", json!({})).await;
    assert!(text(&profile).contains("alice"), "{}", text(&profile));
    // The vault: the tool reads alice's profile at the provider with the provider's token,
    // which this server obtained by token exchange (the consent page asked for it).
    let upstream_alice = up
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    let upstream = call_tool(&client, "get_upstream_profile", json!({})).await;
    let shown = text(&upstream);
    assert!(shown.contains(&upstream_alice), "{shown}");
    assert!(shown.contains("\"provider\":\"corp\""), "{shown}");
    assert!(!shown.contains(&token), "our token never comes back");
    client.cancel().await.unwrap();
    let alice = sys
        .authz
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sys.authz
            .store
            .federated_identities_of(&alice.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // The provider's back-channel logout (a logout token signed with its own key): the session
    // ends here, and the MCP server refuses the token within two polls.
    assert_eq!(
        sys.post(Some(&token), &initialize()).await.status(),
        StatusCode::OK
    );
    let subject = upstream_alice;
    let now = authz::clock::Clock::now(&*sys.clock);
    let claims = json!({
        "iss": up.base, "aud": "downstream", "iat": now, "jti": "bcl-1", "sub": subject,
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let keys = up.state.keys.current();
    let logout_token = keys.signers(now).0.sign_jwt("logout+jwt", &claims).unwrap();
    let r = sys
        .http
        .post(format!(
            "{}/login/upstream/corp/backchannel-logout",
            sys.authz_url
        ))
        .form(&[("logout_token", logout_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let start = Instant::now();
    loop {
        let status = sys.post(Some(&token), &initialize()).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            start.elapsed() < 2 * POLL + Duration::from_millis(500),
            "still accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
