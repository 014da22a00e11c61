//! OpenID Connect RP-Initiated Logout: the session ends, its refresh tokens are revoked, and
//! the browser returns only to a registered address.

use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use crate::support::{AFTER_LOGOUT, Backend, TestApp, expect_error, expect_token, pkce, query};
use authz::store::AuthMethod;

both_backends!(
    logout_with_id_token_hint_ends_session_and_revokes,
    logout_without_hint_asks_and_checks_redirects,
);

async fn signed_in(app: &TestApp, agent: &FormAgent) -> serde_json::Value {
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client(
        "rp",
        AuthMethod::None,
        "openid profile notes:read offline_access",
    )
    .await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[
            ("scope", "openid notes:read offline_access"),
            ("nonce", "n1"),
        ],
    );
    let back = app
        .browser_sign_in(agent, &url, "alice", "correct horse battery staple")
        .await;
    expect_token(app.redeem("rp", &back["code"], &verifier).await).await
}

async fn logout_with_id_token_hint_ends_session_and_revokes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let agent = FormAgent::new();
    let tokens = signed_in(&app, &agent).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = |t: String| {
        let app = &app;
        async move { app.userinfo_status(&t).await }
    };
    assert_eq!(userinfo(access.to_owned()).await, 200);
    let url = app.url(&format!(
        "/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
        form_urlencoded::byte_serialize(AFTER_LOGOUT.as_bytes()).collect::<String>()
    ));
    let page = agent.get(&url).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some(&*format!("{AFTER_LOGOUT}?state=bye"))
    );
    assert!(
        page.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // Refresh tokens of the session are revoked; its access tokens no longer get UserInfo.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    expect_error(
        app.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "rp"),
                ("refresh_token", refresh),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(userinfo(access.to_owned()).await, 401);
    // The browser must sign in again.
    let (_, challenge) = pkce();
    assert!(
        agent
            .get(&app.authorize_url("rp", &challenge, &[]))
            .await
            .body
            .contains("action=\"/login\"")
    );
    assert!(app.audit_kinds().await.iter().any(|k| k == "session.ended"));
}

async fn logout_without_hint_asks_and_checks_redirects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let agent = FormAgent::new();
    let tokens = signed_in(&app, &agent).await;
    // Unregistered return address: a page, no redirect.
    let evil =
        app.url("/logout?client_id=rp&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F");
    let page = agent.get(&evil).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    // A forged hint is refused.
    assert_eq!(
        agent
            .get(&app.url("/logout?id_token_hint=eyJhbGciOiJub25lIn0.e30."))
            .await
            .status,
        400
    );
    // No hint: a confirmation page; a cross-site POST without the CSRF token does nothing.
    let confirm = agent.get(&app.url("/logout?client_id=rp")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("action=\"/logout\""));
    let mut forged: Vec<(String, String)> = vec![("decision".into(), "logout".into())];
    assert_eq!(
        agent.post_form(&app.url("/logout"), &forged).await.status,
        403
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let still = app
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "rp"),
                ("refresh_token", refresh),
            ],
            None,
        )
        .await;
    let rotated = expect_token(still).await;
    forged = hidden_inputs(&confirm.body);
    forged.push(("decision".into(), "logout".into()));
    let done = agent.post_form(&app.url("/logout"), &forged).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("signed out"));
    let next = rotated["refresh_token"].as_str().unwrap();
    expect_error(
        app.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "rp"),
                ("refresh_token", next),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    let _ = query;
}
