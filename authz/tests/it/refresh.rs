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
    concurrent_refreshes_with_one_token_get_the_same_successor,
    the_retry_window_ends_and_belongs_to_one_client,
    the_kept_successor_is_sealed_and_erased_after_the_window,
    a_lost_answer_is_recovered_with_the_committed_successor,
    account_changes_reach_refresh
);

/// Role changes narrow the next refresh; a password change or disabling ends every grant.
async fn account_changes_reach_refresh(backend: Backend) {
    let app = setup(backend).await;
    let t = login(&app, "notes:read notes:write offline_access").await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    authz::identity::admin::set_roles(
        &*app.state.store,
        &app.state.config,
        &app.state.events,
        "test",
        "alice",
        vec!["readonly".into()],
    )
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
    authz::identity::admin::set_password(app.state.identity(), "test", "alice", &pw)
        .await
        .unwrap();
    expect_error(refresh(&app, &rt, &[]).await, 400, "invalid_grant").await;

    let app = setup(backend).await;
    let rt = login(&app, "notes:read offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.set_disabled("test", "alice", true).await;
    expect_error(refresh(&app, &rt, &[]).await, 400, "invalid_grant").await;
    app.set_disabled("test", "alice", false).await;
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
        .request_async(&app.oidc())
        .await
        .unwrap();
    let rt1 = first
        .refresh_token()
        .expect("offline_access yields a refresh token")
        .clone();
    let second = client
        .exchange_refresh_token(&rt1)
        .request_async(&app.oidc())
        .await
        .unwrap();
    let rt2 = second
        .refresh_token()
        .expect("rotation returns a new refresh token")
        .clone();
    assert_ne!(rt1.secret(), rt2.secret());
    let claims = app.verify(second.access_token().secret(), MCP).await;
    assert_eq!(claims.scope, "notes:read offline_access");

    // The rotated token again, after the retry window: reuse → invalid_grant, and the whole
    // family is revoked.
    app.clock.advance(11);
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
            .request_async(&app.oidc())
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

    // The grant is bound to the resource it was made for (RFC 8707 §2.2; issue 11, item 9):
    // neither an unknown resource nor another of the client's resources.
    expect_error(
        refresh(&app, &rt, &[("resource", "https://evil.example/")]).await,
        400,
        "invalid_target",
    )
    .await;
    let e = expect_error(
        refresh(&app, &rt, &[("resource", OTHER_API)]).await,
        400,
        "invalid_target",
    )
    .await;
    assert!(e.contains("does not cover"), "{e}");
    let same = expect_token(refresh(&app, &rt, &[("resource", MCP)]).await).await;
    assert_eq!(
        app.verify(same["access_token"].as_str().unwrap(), MCP)
            .await
            .aud,
        MCP
    );
    let rt = same["refresh_token"].as_str().unwrap().to_owned();

    // Another client cannot use it.
    second_client(&app).await;
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
    // Every event of before is gone. (A key reload may run meanwhile — another test's key
    // change on the same PostgreSQL database notifies every listener — and, 91 days on, audit
    // the scheduled rotation it is due for: a new event, which retention rightly keeps.)
    let retention_start = authz::clock::Clock::now(&*app2.clock) - 90 * 24 * 3600;
    let left = app2.state.store.recent(10).await.unwrap();
    assert!(
        left.iter()
            .all(|e| e.ts >= retention_start && e.kind == "key.rotated"),
        "{left:?}"
    );
}

/// Issue 11 (concurrent refresh): two processes sharing one refresh token (an editor and its
/// agent) refresh at once: both get 200 and the same successor, and the family stays alive
/// (fails on the code before the fix: one 400, family revoked).
async fn concurrent_refreshes_with_one_token_get_the_same_successor(backend: Backend) {
    let app = setup(backend).await;
    let rt = login(&app, "notes:read offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (a, b) = tokio::join!(refresh(&app, &rt, &[]), refresh(&app, &rt, &[]));
    let (a, b) = (expect_token(a).await, expect_token(b).await);
    assert_eq!(a["refresh_token"], b["refresh_token"], "one successor");
    assert_ne!(a["access_token"], b["access_token"], "fresh access tokens");
    let next = a["refresh_token"].as_str().unwrap().to_owned();
    // The family is linear and alive: the successor works, and only once past the window.
    let after = expect_token(refresh(&app, &next, &[]).await).await;
    let hash = authz::crypto::sha256_hex(&next);
    let family = app
        .state
        .store
        .get_refresh_token(&hash)
        .await
        .unwrap()
        .unwrap()
        .family_id;
    let live = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = '{family}' \
             AND used_at IS NULL AND revoked_at IS NULL"
        ))
        .await;
    assert_eq!(live, 1, "exactly one live token in the family");
    assert!(
        app.audit_kinds()
            .await
            .contains(&"refresh.retried".to_owned())
    );
    expect_token(refresh(&app, after["refresh_token"].as_str().unwrap(), &[]).await).await;
}

/// Another public client, "cli2".
async fn second_client(app: &TestApp) {
    app.client(
        "cli2",
        AuthMethod::None,
        &[GrantType::RefreshToken, GrantType::Password],
        "notes:read offline_access",
        &[MCP],
    )
    .await;
}

/// `token` is refused (`invalid_grant`).
async fn refused(app: &TestApp, token: &serde_json::Value) {
    let t = token.as_str().unwrap();
    expect_error(refresh(app, t, &[]).await, 400, "invalid_grant").await;
}

/// A fresh grant's refresh token `a`, rotated once: (`a`, its successor).
async fn rotated_once(app: &TestApp) -> (String, serde_json::Value) {
    let a = login(app, "notes:read offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = expect_token(refresh(app, &a, &[]).await).await["refresh_token"].clone();
    (a, b)
}

/// The retry window has edges: after it, or from another client, a spent token is reuse and
/// the family is revoked; a spent token whose successor was itself used is reuse at once.
async fn the_retry_window_ends_and_belongs_to_one_client(backend: Backend) {
    // Within the window (positive control): the same successor.
    let app = setup(backend).await;
    let (a, b) = rotated_once(&app).await;
    app.clock.advance(9);
    let retried = expect_token(refresh(&app, &a, &[]).await).await;
    assert_eq!(retried["refresh_token"], b);
    // After the window: reuse, the family is gone.
    app.clock.advance(2);
    expect_error(refresh(&app, &a, &[]).await, 400, "invalid_grant").await;
    refused(&app, &b).await;

    // Another client presenting the spent token within the window: reuse.
    let app = setup(backend).await;
    second_client(&app).await;
    let (a, b) = rotated_once(&app).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "cli2"),
        ("refresh_token", a.as_str()),
    ];
    expect_error(app.token(&form, None).await, 400, "invalid_grant").await;
    refused(&app, &b).await;

    // A → B → C, then A: B is spent, so A is reuse even inside the window.
    let app = setup(backend).await;
    let (a, b) = rotated_once(&app).await;
    let c =
        expect_token(refresh(&app, b.as_str().unwrap(), &[]).await).await["refresh_token"].clone();
    expect_error(refresh(&app, &a, &[]).await, 400, "invalid_grant").await;
    refused(&app, &c).await;
}

/// The successor kept for the window is sealed under the master key (never the token in the
/// clear) and erased once the window has passed.
async fn the_kept_successor_is_sealed_and_erased_after_the_window(backend: Backend) {
    let app = setup(backend).await;
    let (a, b) = rotated_once(&app).await;
    let b = b.as_str().unwrap().to_owned();
    let hash = authz::crypto::sha256_hex(&a);
    let kept = format!(
        "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{hash}' \
         AND successor_enc IS NOT NULL"
    );
    assert_eq!(app.sql_count(&kept).await, 1, "kept for the window");
    let named = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = '{hash}' \
             AND successor_hash = '{}'",
            authz::crypto::sha256_hex(&b)
        ))
        .await;
    assert_eq!(named, 1, "the successor is named by its hash");
    let sealed = app
        .state
        .store
        .get_refresh_token(&hash)
        .await
        .unwrap()
        .unwrap();
    assert!(sealed.used_at.is_some());
    app.clock.advance(11);
    authz::housekeeping(&app.state).await.unwrap();
    assert_eq!(app.sql_count(&kept).await, 0, "erased after the window");
}

/// Issue 11 (concurrent refresh): a refresh whose answer never reaches the client (it timed
/// out; the rotation had committed) is recovered by presenting the same token again within the
/// window: the committed successor comes back and the family lives on. Before the fix this was
/// reuse — family revoked, user signed out (the crash test's "answer lost at kill -9" case).
async fn a_lost_answer_is_recovered_with_the_committed_successor(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let app = setup(backend).await;
    let a = login(&app, "notes:read offline_access").await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Send the refresh and never read the answer.
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", "cli")
        .append_pair("refresh_token", &a)
        .finish();
    let addr = app.base.strip_prefix("http://").unwrap();
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /token HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(request.as_bytes()).await.unwrap();
    let hash = authz::crypto::sha256_hex(&a);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let old = loop {
        let rec = app
            .state
            .store
            .get_refresh_token(&hash)
            .await
            .unwrap()
            .unwrap();
        if rec.used_at.is_some() {
            break rec;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotation never committed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    drop(sock); // the answer is lost
    // The client retries with what it holds and gets the successor that was committed.
    let t = expect_token(refresh(&app, &a, &[]).await).await;
    let next = t["refresh_token"].as_str().unwrap();
    let live = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = '{}' \
             AND used_at IS NULL AND revoked_at IS NULL AND token_hash = '{}'",
            old.family_id,
            authz::crypto::sha256_hex(next)
        ))
        .await;
    assert_eq!(live, 1, "the committed successor, not a second one");
    expect_token(refresh(&app, next, &[]).await).await;
}
