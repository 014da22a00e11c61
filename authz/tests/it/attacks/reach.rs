//! How far revocation, logout and consent reach (issue 11, items 8 and 9): one client's
//! revocation must not end other clients' grants or the browser session; an `id_token_hint`
//! must not sign out a session the browser does not hold; refresh tokens and remembered
//! consent are bound to the resource they were granted for.

use serde_json::Value;
use testkit::agent::FormAgent;
use testkit::both_backends;

use super::grants::{PW, s};
use crate::support::{
    Backend, CB, MCP, OTHER_API, TestApp, expect_error, expect_token, pkce, query,
};
use authz::store::ClientSettings;
use authz::store::{AuthMethod, GrantType};

both_backends!(
    revoking_one_clients_token_leaves_the_session_and_other_grants,
    an_id_token_hint_signs_out_only_the_browsers_own_session,
    refresh_and_consent_are_bound_to_the_consented_resource,
);

const SCOPE: &str = "openid notes:read offline_access";

/// alice; public "rp" and confidential "conf" browser clients (redirect `CB`); conf's secret.
async fn app(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.user("bob", PW, "user").await;
    app.code_client("rp", AuthMethod::None, SCOPE).await;
    let secret = app
        .code_client("conf", AuthMethod::ClientSecretBasic, SCOPE)
        .await
        .unwrap();
    (app, secret)
}

/// Sign in (or reuse the agent's session) for `client`, approve, redeem: the token response.
async fn tokens_for(
    app: &TestApp,
    agent: &FormAgent,
    client: &str,
    secret: Option<&str>,
    user: &str,
    extra: &[(&str, &str)],
) -> Value {
    let (verifier, challenge) = pkce();
    let mut params = vec![("scope", SCOPE)];
    params.extend_from_slice(extra);
    let url = app.authorize_url(client, &challenge, &params);
    let loc = agent
        .sign_in(&app.base, &url, user, PW, "approve")
        .await
        .unwrap_or_else(|p| panic!("{} {}", p.status, p.body));
    let code = query(&loc)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client),
        ("code", code.as_str()),
        ("redirect_uri", CB),
        ("code_verifier", verifier.as_str()),
    ];
    expect_token(app.token(&form, secret.map(|s| (client, s))).await).await
}

/// `prompt=none` for the confidential client: does this browser still hold a live session?
async fn still_signed_in(app: &TestApp, agent: &FormAgent) -> bool {
    let (_, challenge) = pkce();
    let url = app.authorize_url("conf", &challenge, &[("scope", SCOPE), ("prompt", "none")]);
    let loc = agent.get(&url).await.location.unwrap_or_default();
    query(&loc).contains_key("code")
}

/// Regression (issue 11, item 8): RFC 7009 revocation of one client's token ended the whole
/// browser session, killing other clients' grants (fails on the code before the fix: conf's
/// refresh and the session were gone). RFC 7009 §2.1 scopes it to the client's own grant.
async fn revoking_one_clients_token_leaves_the_session_and_other_grants(backend: Backend) {
    let (app, secret) = app(backend).await;
    let agent = FormAgent::new();
    let a = tokens_for(&app, &agent, "rp", None, "alice", &[]).await;
    let b = tokens_for(&app, &agent, "conf", Some(&secret), "alice", &[]).await;
    assert!(still_signed_in(&app, &agent).await, "positive control");
    // Revocation refuses tokens issued before its second (times are whole seconds).
    app.clock.advance(1);
    let r = app
        .http
        .post(app.url("/revoke"))
        .form(&[("client_id", "rp"), ("token", &s(&a, "refresh_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // rp's grant is over: its refresh token, and its access token at this server.
    expect_error(
        app.refresh("rp", &s(&a, "refresh_token"), &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.userinfo_status(&s(&a, "access_token")).await, 401);
    // conf's grant and the browser session are untouched.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", b["refresh_token"].as_str().unwrap()),
    ];
    expect_token(app.token(&form, Some(("conf", &secret))).await).await;
    assert_eq!(app.userinfo_status(&s(&b, "access_token")).await, 200);
    assert!(still_signed_in(&app, &agent).await, "the session survives");
    // rp may start a new grant in the same session.
    let a2 = tokens_for(&app, &agent, "rp", None, "alice", &[]).await;
    expect_token(app.refresh("rp", &s(&a2, "refresh_token"), &[]).await).await;
    assert_eq!(app.userinfo_status(&s(&a2, "access_token")).await, 200);
    app.clock.advance(1);
    // Revoking an access token reaches its own grant the same way.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("conf", Some(&secret))
        .form(&[("token", b["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.userinfo_status(&s(&b, "access_token")).await, 401);
    expect_token(app.refresh("rp", &s(&a2, "refresh_token"), &[]).await).await;
    assert!(still_signed_in(&app, &agent).await);
}

/// Regression (issue 11, item 8): a valid `id_token_hint` ended the session it named even when
/// the browser held no cookie for it, so anyone with someone's ID token could sign them out with
/// a link (fails on the code before the fix: alice was signed out). OIDC RP-Initiated Logout
/// §2: ask unless the hint names the browser's own session.
async fn an_id_token_hint_signs_out_only_the_browsers_own_session(backend: Backend) {
    let (app, secret) = app(backend).await;
    let alice = FormAgent::new();
    let t = tokens_for(&app, &alice, "conf", Some(&secret), "alice", &[]).await;
    let hint = s(&t, "id_token");
    let logout = app.url(&format!("/logout?id_token_hint={hint}"));
    // Bob's browser follows a link with alice's ID token: a confirmation, nothing ended.
    let bob = FormAgent::new();
    tokens_for(&app, &bob, "conf", Some(&secret), "bob", &[]).await;
    let page = bob.get(&logout).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("action=\"/logout\""), "asks first");
    // A browser with no session at all: nothing to end here either.
    let stranger = FormAgent::new();
    assert_eq!(stranger.get(&logout).await.status, 200);
    assert!(
        still_signed_in(&app, &alice).await,
        "alice is still signed in"
    );
    assert!(still_signed_in(&app, &bob).await, "bob is still signed in");
    // Positive control: alice's own browser with her hint signs out at once.
    let page = alice.get(&logout).await;
    assert!(!page.body.contains("action=\"/logout\""), "no confirmation");
    assert!(!still_signed_in(&app, &alice).await, "alice signed out");
    assert!(still_signed_in(&app, &bob).await);
}

/// Regression (issue 11, item 9): the refresh grant covered all of the client's resources and
/// remembered consent had no resource (fails on the code before the fix: a token for
/// OTHER_API by refresh, and a silent code for OTHER_API). RFC 8707 §2.2.
async fn refresh_and_consent_are_bound_to_the_consented_resource(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    let (_, secret) = authz::identity::admin::add_client(
        app.state.client_services(),
        "test",
        Some("conf".into()),
        ClientSettings {
            name: "two-resource app".into(),
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec![CB.into()],
            scopes: shared::ScopeSet::parse(SCOPE).unwrap(),
            resources: vec![MCP.into(), OTHER_API.into()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let secret = secret.unwrap().expose().to_owned();
    let agent = FormAgent::new();
    let t = tokens_for(
        &app,
        &agent,
        "conf",
        Some(&secret),
        "alice",
        &[("resource", MCP)],
    )
    .await;
    let refresh = |rt: String, resource: &'static str| {
        let (app, secret) = (&app, secret.clone());
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("resource", resource),
            ];
            app.token(&form, Some(("conf", &secret))).await
        }
    };
    expect_error(
        refresh(s(&t, "refresh_token"), OTHER_API).await,
        400,
        "invalid_target",
    )
    .await;
    let next = expect_token(refresh(s(&t, "refresh_token"), MCP).await).await;
    assert_eq!(app.verify(&s(&next, "access_token"), MCP).await.aud, MCP);
    // Consent for MCP is remembered (a silent code), but not for the other resource.
    let (_, challenge) = pkce();
    let silent = |resource: &'static str| {
        let (app, agent, challenge) = (&app, &agent, challenge.clone());
        async move {
            let url = app.authorize_url(
                "conf",
                &challenge,
                &[("scope", SCOPE), ("prompt", "none"), ("resource", resource)],
            );
            query(&agent.get(&url).await.location.unwrap())
        }
    };
    assert!(silent(MCP).await.contains_key("code"));
    assert_eq!(silent(OTHER_API).await["error"], "consent_required");
    // Approving it for OTHER_API gives a grant for OTHER_API only.
    let o = tokens_for(
        &app,
        &agent,
        "conf",
        Some(&secret),
        "alice",
        &[("resource", OTHER_API)],
    )
    .await;
    assert_eq!(
        app.verify(&s(&o, "access_token"), OTHER_API).await.aud,
        OTHER_API
    );
    expect_error(
        refresh(s(&o, "refresh_token"), MCP).await,
        400,
        "invalid_target",
    )
    .await;
    assert!(silent(OTHER_API).await.contains_key("code"));
}
