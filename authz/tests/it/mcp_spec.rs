//! The rest of the MCP authorization spec 2026-07-28 at the authorization server: resource
//! canonicalisation, scope step-up by re-authorization, and `prompt=consent` with
//! `offline_access`.

use testkit::agent::FormAgent;
use testkit::both_backends;

use crate::support::{Backend, MCP, TestApp, expect_error, expect_token, pkce, query};
use authz::store::{AuthMethod, GrantType};

both_backends!(
    resource_uris_are_compared_in_canonical_form,
    step_up_keeps_held_scopes_and_adds_new_ones,
    prompt_consent_with_offline_access_asks_once_then_remembers,
);

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const WEB_CB: &str = "https://web.example/cb";

/// `HTTP://…`, a default port and a trailing slash name the MCP server (`MCP` is
/// `http://127.0.0.1:8081/mcp`); tokens carry the registered spelling; other paths, ports and
/// hosts stay `invalid_target`.
async fn resource_uris_are_compared_in_canonical_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.bot("notes:read").await;
    let ask = |resource: &'static str| {
        let (app, secret) = (&app, secret.clone());
        async move {
            app.token(
                &[("grant_type", "client_credentials"), ("resource", resource)],
                Some(("bot", &secret)),
            )
            .await
        }
    };
    for spelling in [
        "http://127.0.0.1:8081/mcp",
        "http://127.0.0.1:8081/mcp/",
        "HTTP://127.0.0.1:8081/mcp",
    ] {
        let t = expect_token(ask(spelling).await).await;
        let claims = app.verify(t["access_token"].as_str().unwrap(), MCP).await;
        assert_eq!(claims.aud, MCP, "{spelling}");
    }
    for other in [
        "http://127.0.0.1:8082/mcp",
        "http://127.0.0.1:8081/MCP",
        "http://127.0.0.1:8081/mcp2",
        "https://127.0.0.1:8081/mcp",
    ] {
        expect_error(ask(other).await, 400, "invalid_target").await;
    }
    // The same rule at /authorize: the code's (and token's) audience is the registered form.
    app.user(ALICE.0, ALICE.1, "user").await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[
            ("scope", "notes:read"),
            ("resource", "HTTP://127.0.0.1:8081/mcp/"),
        ],
    );
    let back = app
        .browser_sign_in(&FormAgent::new(), &url, ALICE.0, ALICE.1)
        .await;
    let t = expect_token(app.redeem("rp", &back["code"], &verifier).await).await;
    assert_eq!(
        app.verify(t["access_token"].as_str().unwrap(), MCP)
            .await
            .aud,
        MCP
    );
}

/// A client challenged for a new scope re-authorizes with held ∪ new and gets both, within the
/// user's roles; `offline_access` is in the AS's `scopes_supported`.
async fn step_up_keeps_held_scopes_and_adds_new_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user(ALICE.0, ALICE.1, "readonly").await;
    app.code_client(
        "rp",
        AuthMethod::None,
        "profile:read notes:read notes:write offline_access",
    )
    .await;
    let agent = FormAgent::new();
    let get = |scope: &'static str| {
        let (app, agent) = (&app, &agent);
        async move {
            let (verifier, challenge) = pkce();
            let url = app.authorize_url("rp", &challenge, &[("scope", scope)]);
            let back = app.browser_sign_in(agent, &url, ALICE.0, ALICE.1).await;
            expect_token(app.redeem("rp", &back["code"], &verifier).await).await
        }
    };
    let first = get("notes:read").await;
    assert_eq!(first["scope"], "notes:read");
    let stepped = get("notes:read profile:read").await;
    assert_eq!(stepped["scope"], "notes:read profile:read");
    // Beyond the user's roles (readonly has no notes:write): granted what the roles allow.
    let beyond = get("notes:read profile:read notes:write").await;
    assert_eq!(beyond["scope"], "notes:read profile:read");
    let meta: serde_json::Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let scopes: Vec<&str> = meta["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(scopes.contains(&"offline_access"), "{scopes:?}");
}

/// MCP clients send `prompt=consent` with `offline_access`: the consent page is shown, a
/// refresh token issued; for a client whose consent may be remembered, a later request without
/// `prompt=consent` goes through without asking.
async fn prompt_consent_with_offline_access_asks_once_then_remembers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user(ALICE.0, ALICE.1, "user").await;
    // A confidential web client (its identity is assured, so consent can be remembered).
    let (_, secret) = authz::identity::admin::add_client(
        app.state.client_services(),
        "test",
        Some("web".to_owned()),
        authz::store::ClientSettings {
            name: "Web app".into(),
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec![WEB_CB.to_owned()],
            scopes: shared::ScopeSet::parse("notes:read offline_access").unwrap(),
            resources: vec![MCP.to_owned()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secret = secret.unwrap().expose().to_owned();
    let agent = FormAgent::new();
    let authorize = |prompt: Option<&'static str>, challenge: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", "web")
            .append_pair("redirect_uri", WEB_CB)
            .append_pair("scope", "notes:read offline_access")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(p) = prompt {
            q.append_pair("prompt", p);
        }
        app.url(&format!("/authorize?{}", q.finish()))
    };
    let (verifier, challenge) = pkce();
    let loc = agent
        .sign_in(
            &app.base,
            &authorize(Some("consent"), &challenge),
            ALICE.0,
            ALICE.1,
            "approve",
        )
        .await
        .unwrap();
    let code = query(&loc)["code"].clone();
    let tokens = expect_token(
        app.token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", WEB_CB),
                ("code_verifier", &verifier),
            ],
            Some(("web", &secret)),
        )
        .await,
    )
    .await;
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(tokens["scope"], "notes:read offline_access");
    // prompt=consent asks again, every time.
    let page = agent.get(&authorize(Some("consent"), &challenge)).await;
    assert!(page.body.contains("action=\"/consent\""), "{}", page.body);
    // Without it, the remembered consent is used: straight back with a code.
    let page = agent.get(&authorize(None, &challenge)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(query(page.location.as_deref().unwrap()).contains_key("code"));
}
