//! Refresh rotation, reuse detection (family revocation), lifetimes, scope and resource rules.

use authz::store::{AuthMethod, GrantType};
use openidconnect::{
    OAuth2TokenResponse, RefreshToken, ResourceOwnerPassword, ResourceOwnerUsername, Scope,
};

use crate::client_credentials::oidc_client;
use crate::password::ALICE_PW;
use crate::support::{Backend, MCP, OTHER_API, TestApp, expect_error, expect_token};
use testkit::both_backends;

both_backends!(
    rotation_and_reuse_revokes_family,
    lifetimes_scope_resource_and_client_binding,
    concurrent_use_lets_exactly_one_win,
    account_changes_reach_refresh
);

/// Role changes narrow the next refresh; a password change or disabling ends every grant.
async fn account_changes_reach_refresh(backend: Backend) {
    let app = setup(backend).await;
    let t = login(&app, "notes:read notes:write offline_access").await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    authz::admin::set_roles(&app.state, "test", "alice", vec!["readonly".into()])
        .await
        .unwrap();
    let t = expect_token(refresh(&app, &rt, &[]).await).await;
    assert_eq!(
        t["scope"], "notes:read offline_access",
        "notes:write left with the role"
    );
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    expect_error(
        refresh(&app, &rt, &[("scope", "notes:write")]).await,
        400,
        "invalid_scope",
    )
    .await;

    let pw = shared::secret::Password::new("a brand new passphrase");
    authz::admin::set_password(&app.state, "test", "alice", &pw)
        .await
        .unwrap();
    expect_error(refresh(&app, &rt, &[]).await, 400, "invalid_grant").await;

    let app = setup(backend).await;
    let rt = login(&app, "notes:read offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    authz::admin::set_disabled(&app.state, "test", "alice", true)
        .await
        .unwrap();
    expect_error(refresh(&app, &rt, &[]).await, 400, "invalid_grant").await;
    authz::admin::set_disabled(&app.state, "test", "alice", false)
        .await
        .unwrap();
    expect_error(refresh(&app, &rt, &[]).await, 400, "invalid_grant").await;
}

async fn setup(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.client(
        "cli",
        AuthMethod::None,
        &[GrantType::Password, GrantType::RefreshToken],
        "profile:read notes:read notes:write offline_access",
        &[MCP, OTHER_API],
    )
    .await;
    app.user("alice", ALICE_PW, "user").await;
    app
}

async fn login(app: &TestApp, scope: &str) -> serde_json::Value {
    expect_token(
        app.token(
            &[
                ("grant_type", "password"),
                ("client_id", "cli"),
                ("username", "alice"),
                ("password", ALICE_PW),
                ("scope", scope),
            ],
            None,
        )
        .await,
    )
    .await
}

async fn refresh(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", "cli"),
        ("refresh_token", token),
    ];
    form.extend_from_slice(extra);
    app.token(&form, None).await
}

async fn rotation_and_reuse_revokes_family(backend: Backend) {
    let app = setup(backend).await;
    let client = oidc_client(&app, "cli", None);
    let first = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(ALICE_PW.into()),
        )
        .add_scope(Scope::new("notes:read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&app.http)
        .await
        .unwrap();
    let rt1 = first
        .refresh_token()
        .expect("offline_access yields a refresh token")
        .clone();
    let second = client
        .exchange_refresh_token(&rt1)
        .request_async(&app.http)
        .await
        .unwrap();
    let rt2 = second
        .refresh_token()
        .expect("rotation returns a new refresh token")
        .clone();
    assert_ne!(rt1.secret(), rt2.secret());
    let claims = app.verify(second.access_token().secret(), MCP).await;
    assert_eq!(claims.scope, "notes:read offline_access");

    // The rotated token again: reuse → invalid_grant, and the whole family is revoked.
    let e = expect_error(refresh(&app, rt1.secret(), &[]).await, 400, "invalid_grant").await;
    assert!(!e.contains(rt1.secret()));
    expect_error(refresh(&app, rt2.secret(), &[]).await, 400, "invalid_grant").await;
    assert!(
        app.audit_kinds()
            .await
            .contains(&"refresh.reuse_detected".to_owned())
    );

    // Stored by hash only.
    let hash = authz::crypto::sha256_hex(rt2.secret());
    let rec = app
        .state
        .store
        .get_refresh_token(&hash)
        .await
        .unwrap()
        .unwrap();
    assert!(rec.revoked_at.is_some());
    assert_ne!(rec.token_hash, rt2.secret().as_str());

    // A token that was never issued.
    let bogus = RefreshToken::new("rt_bogus".into());
    assert!(
        client
            .exchange_refresh_token(&bogus)
            .request_async(&app.http)
            .await
            .is_err()
    );
}

async fn lifetimes_scope_resource_and_client_binding(backend: Backend) {
    let app = setup(backend).await;
    let t = login(&app, "notes:read profile:read offline_access").await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();

    // Narrowing is fine (RFC 6749 §6), widening is not.
    let e = expect_error(
        refresh(&app, &rt, &[("scope", "notes:write")]).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(e.contains("notes:write"));
    let narrowed = expect_token(refresh(&app, &rt, &[("scope", "notes:read")]).await).await;
    assert_eq!(narrowed["scope"], "notes:read");
    let rt = narrowed["refresh_token"].as_str().unwrap().to_owned();
    // The grant keeps its full scope: a later refresh may ask for profile:read again.
    let again = expect_token(refresh(&app, &rt, &[("scope", "profile:read")]).await).await;
    let rt = again["refresh_token"].as_str().unwrap().to_owned();

    // Another audience of the grant (RFC 8707 §2.2), and one outside it.
    expect_error(
        refresh(&app, &rt, &[("resource", "https://evil.example/")]).await,
        400,
        "invalid_target",
    )
    .await;
    let other = expect_token(refresh(&app, &rt, &[("resource", OTHER_API)]).await).await;
    assert_eq!(
        app.verify(other["access_token"].as_str().unwrap(), OTHER_API)
            .await
            .aud,
        OTHER_API
    );
    let rt = other["refresh_token"].as_str().unwrap().to_owned();

    // Another client cannot use it.
    app.client(
        "cli2",
        AuthMethod::None,
        &[GrantType::RefreshToken, GrantType::Password],
        "notes:read offline_access",
        &[MCP],
    )
    .await;
    let e = expect_error(
        app.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "cli2"),
                ("refresh_token", &rt),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(e.contains("another client"));

    // Idle expiry (14 days by default), via the injected clock.
    app.clock.advance(14 * 24 * 3600 + 1);
    expect_error(refresh(&app, &rt, &[]).await, 400, "invalid_grant").await;

    // Absolute lifetime: keep refreshing within the idle window until the family's end.
    let app2 = setup(backend).await;
    let mut rt = login(&app2, "notes:read offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        app2.clock.advance(13 * 24 * 3600);
        rt = expect_token(refresh(&app2, &rt, &[]).await).await["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    app2.clock.advance(5 * 24 * 3600); // 31 days after login
    expect_error(refresh(&app2, &rt, &[]).await, 400, "invalid_grant").await;

    // Housekeeping removes ended families and audit events past retention (90 days).
    let hash = authz::crypto::sha256_hex(&rt);
    assert!(
        app2.state
            .store
            .get_refresh_token(&hash)
            .await
            .unwrap()
            .is_some()
    );
    authz::housekeeping(&app2.state).await.unwrap();
    assert!(
        app2.state
            .store
            .get_refresh_token(&hash)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!app2.state.store.recent(10).await.unwrap().is_empty());
    app2.clock.advance(91 * 24 * 3600);
    authz::housekeeping(&app2.state).await.unwrap();
    assert!(app2.state.store.recent(10).await.unwrap().is_empty());
}

async fn concurrent_use_lets_exactly_one_win(backend: Backend) {
    let app = setup(backend).await;
    let rt = login(&app, "notes:read offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (a, b) = tokio::join!(refresh(&app, &rt, &[]), refresh(&app, &rt, &[]));
    let statuses = [a.status().as_u16(), b.status().as_u16()];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "statuses {statuses:?}"
    );
    let winner = if a.status() == 200 { a } else { b };
    let next = winner.json::<serde_json::Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The loser's attempt was a reuse: the family, including the winner's new token, is revoked.
    expect_error(refresh(&app, &next, &[]).await, 400, "invalid_grant").await;
}
