//! Grants that must end, and authority that must not grow (issue 11): API-key scope escalation,
//! token exchange of tokens that are no longer live, password resets and disabling, rotation
//! racing logout, the one liveness rule at every endpoint. Each test says which defect it pins;
//! each rejection has its positive control in the same test.

use serde_json::{Value, json};
use testkit::both_backends;

use crate::support::{Backend, MCP, OTHER_API, TestApp, expect_error, expect_token};
use authz::store::{AuthMethod, GrantType};

both_backends!(
    api_keys_never_exceed_the_requesting_token_and_never_mint_keys,
    token_exchange_refuses_api_key_tokens_deleted_clients_and_ended_sessions,
    disabling_and_password_resets_end_keys_tokens_and_sessions,
    logout_racing_refresh_loops_leaves_no_live_token,
    refresh_refuses_ended_sessions_and_changed_credentials,
    every_endpoint_applies_the_same_liveness_rule,
);

pub const PW: &str = "correct horse battery staple";
const CLI_SCOPES: &str = "profile:read notes:read notes:write keys:write offline_access";

/// alice (role user), the public password client "cli" and the resource server "rs" (token
/// exchange for MCP tokens, introspection). Returns rs's secret.
pub async fn setup(app: &TestApp) -> String {
    app.user("alice", PW, "user").await;
    app.client(
        "cli",
        AuthMethod::None,
        &[GrantType::Password, GrantType::RefreshToken],
        CLI_SCOPES,
        &[MCP, OTHER_API],
    )
    .await;
    app.exchange_client("profile:read notes:read notes:write keys:write")
        .await
}

pub async fn login_as(app: &TestApp, client: &str, user: &str, pw: &str, scope: &str) -> Value {
    expect_token(
        app.token(
            &[
                ("grant_type", "password"),
                ("client_id", client),
                ("username", user),
                ("password", pw),
                ("scope", scope),
            ],
            None,
        )
        .await,
    )
    .await
}

pub async fn login(app: &TestApp, scope: &str) -> Value {
    login_as(app, "cli", "alice", PW, scope).await
}

pub fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_owned()
}

/// RFC 8693 at `/token` as "rs".
pub async fn exchange(app: &TestApp, rs: &str, subject: &str, scope: &str) -> reqwest::Response {
    let audience = app.state.config.management_audience();
    app.token(
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("resource", audience.as_str()),
            ("scope", scope),
        ],
        Some(("rs", rs)),
    )
    .await
}

async fn management_token(app: &TestApp, rs: &str, subject: &str, scope: &str) -> String {
    s(
        &expect_token(exchange(app, rs, subject, scope).await).await,
        "access_token",
    )
}

async fn create_key(app: &TestApp, token: &str, scope: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": "bot", "scope": scope }))
        .send()
        .await
        .unwrap()
}

/// alice signs in with `keys:write notes:read` (+ `extra`), the grant is exchanged for a
/// management token, and a `notes:read` key is made with it: (sign-in response, management
/// token, key id, key secret).
async fn key_through_the_api(
    app: &TestApp,
    rs: &str,
    extra: &str,
) -> (Value, String, String, String) {
    let scope = format!("keys:write notes:read {extra}");
    let user = login(app, scope.trim_end()).await;
    let mgmt = management_token(app, rs, &s(&user, "access_token"), "keys:write notes:read").await;
    let key: Value = create_key(app, &mgmt, "notes:read")
        .await
        .json()
        .await
        .unwrap();
    let (id, secret) = (s(&key, "client_id"), s(&key, "client_secret"));
    (user, mgmt, id, secret)
}

async fn key_token(
    app: &TestApp,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    app.token(&form, Some((id, secret))).await
}

/// Regression (issue 11, item 1): a token carrying only `keys:write` minted a key with
/// `notes:read notes:write profile:read keys:write` (fails on the code before the fix: 201).
async fn api_keys_never_exceed_the_requesting_token_and_never_mint_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs = setup(&app).await;
    let narrow = login(&app, "keys:write").await;
    let mgmt = management_token(&app, &rs, &s(&narrow, "access_token"), "keys:write").await;
    for scope in [
        "notes:read notes:write profile:read keys:write",
        "notes:read",
    ] {
        let d = expect_error(create_key(&app, &mgmt, scope).await, 400, "invalid_scope").await;
        assert!(
            d.contains("requesting token") || d.contains("keys:write"),
            "{d}"
        );
    }
    // keys:write is never given to a key, even by a token that holds it.
    let wide = login(&app, "keys:write notes:read").await;
    let mgmt = management_token(
        &app,
        &rs,
        &s(&wide, "access_token"),
        "keys:write notes:read",
    )
    .await;
    let d = expect_error(
        create_key(&app, &mgmt, "notes:read keys:write").await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(d.contains("keys:write cannot be given"), "{d}");
    // Positive control: within the token, the key is made and works.
    let r = create_key(&app, &mgmt, "notes:read").await;
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    let (id, secret) = (s(&key, "client_id"), s(&key, "client_secret"));
    let t = expect_token(key_token(&app, &id, &secret, None).await).await;
    assert_eq!(t["scope"], "notes:read");
    // A key stored with keys:write before the rule existed never gets it in a token.
    app.sql(&format!(
        "UPDATE clients SET scopes = 'keys:write notes:read' WHERE id = '{id}'"
    ))
    .await;
    app.state.clients.invalidate(&id);
    expect_error(
        key_token(&app, &id, &secret, Some("keys:write")).await,
        400,
        "invalid_scope",
    )
    .await;
    let t = expect_token(key_token(&app, &id, &secret, None).await).await;
    assert_eq!(t["scope"], "notes:read");
}

/// Regression (issue 11, item 1): token exchange accepted the token of an API key and the token
/// of a deleted client (both fail on the code before the fix: 200).
async fn token_exchange_refuses_api_key_tokens_deleted_clients_and_ended_sessions(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| c.client_cache_secs = 0).await;
    let rs = setup(&app).await;
    // Positive control: a user's token is exchanged (inside the helper).
    let (_, _, id, secret) = key_through_the_api(&app, &rs, "").await;
    // An API key's token (aud = MCP, the owner as sub) is not exchangeable.
    let kt = expect_token(key_token(&app, &id, &secret, None).await).await;
    let d = expect_error(
        exchange(&app, &rs, &s(&kt, "access_token"), "notes:read").await,
        400,
        "invalid_request",
    )
    .await;
    assert!(d.contains("API keys"), "{d}");
    // A deleted client's tokens are dead.
    app.client(
        "cli2",
        AuthMethod::None,
        &[GrantType::Password],
        CLI_SCOPES,
        &[MCP],
    )
    .await;
    let t2 = login_as(&app, "cli2", "alice", PW, "notes:read").await;
    assert_eq!(
        exchange(&app, &rs, &s(&t2, "access_token"), "notes:read")
            .await
            .status(),
        200,
        "positive control before the deletion"
    );
    authz::identity::admin::delete_client(
        &*app.state.store,
        &app.state.clients,
        &app.state.events,
        "test",
        "cli2",
    )
    .await
    .unwrap();
    expect_error(
        exchange(&app, &rs, &s(&t2, "access_token"), "notes:read").await,
        400,
        "invalid_request",
    )
    .await;
    // An ended session's tokens are dead.
    let t3 = login(&app, "notes:read").await;
    let sid = app.verify(&s(&t3, "access_token"), MCP).await.sid.unwrap();
    app.sql(&format!(
        "UPDATE sessions SET ended_at = 1 WHERE sid = '{sid}'"
    ))
    .await;
    expect_error(
        exchange(&app, &rs, &s(&t3, "access_token"), "notes:read").await,
        400,
        "invalid_request",
    )
    .await;
}

/// Regression (issue 11, item 1): an administrator's password reset left the user's API keys
/// working (fails on the code before the fix: the key still got tokens).
async fn disabling_and_password_resets_end_keys_tokens_and_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs = setup(&app).await;
    let (_, mgmt, id, secret) = key_through_the_api(&app, &rs, "offline_access").await;
    expect_token(key_token(&app, &id, &secret, None).await).await;

    // A disabled owner's key stops at once; re-enabled, it works again.
    app.set_disabled("test", "alice", true).await;
    expect_error(
        key_token(&app, &id, &secret, None).await,
        401,
        "invalid_client",
    )
    .await;
    app.set_disabled("test", "alice", false).await;
    expect_token(key_token(&app, &id, &secret, None).await).await;

    // `authz user passwd`: keys revoked, refresh tokens revoked, sessions ended, and tokens
    // granted before refused wherever this server checks them.
    let before = login(&app, "notes:read offline_access").await;
    let new_pw = shared::secret::Password::new("an entirely new passphrase");
    authz::identity::admin::set_password(app.state.identity(), "admin", "alice", &new_pw)
        .await
        .unwrap();
    let d = expect_error(
        key_token(&app, &id, &secret, None).await,
        401,
        "invalid_client",
    )
    .await;
    assert!(d.contains("revoked"), "{d}");
    expect_error(
        app.refresh("cli", &s(&before, "refresh_token"), &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    expect_error(
        exchange(&app, &rs, &s(&before, "access_token"), "notes:read").await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(
        app.bearer_status("/api/v1/api-keys", &mgmt).await,
        401,
        "the exchanged token of the old grant"
    );
    let live_sessions = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM sessions WHERE user_id = '{}' AND ended_at IS NULL",
            app.verify(&s(&before, "access_token"), MCP).await.sub
        ))
        .await;
    assert_eq!(live_sessions, 0);
    // Positive control: the new password works at once.
    let after = login_as(&app, "cli", "alice", new_pw.expose(), "notes:read").await;
    assert_eq!(
        exchange(&app, &rs, &s(&after, "access_token"), "notes:read")
            .await
            .status(),
        200
    );
    let kinds = app.audit_kinds().await;
    assert!(kinds.contains(&"user.password_changed".to_owned()));
}

/// Regression (issue 11, item 6): on PostgreSQL the revocation UPDATE's snapshot could miss a
/// successor inserted by a concurrent rotation, and the refresh grant never checked the session,
/// so a thief refreshing in a loop survived the victim's logout (fails on the code before the
/// fix: a live token remained in some of the 50 rounds).
async fn logout_racing_refresh_loops_leaves_no_live_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.rate_limits.token = 0).await;
    let app = std::sync::Arc::new(app);
    setup(&app).await;
    for round in 0..50u64 {
        let t = login(&app, "notes:read offline_access").await;
        let thief = tokio::spawn({
            let app = app.clone();
            let mut rt = s(&t, "refresh_token");
            async move {
                let mut got = vec![rt.clone()];
                for _ in 0..500 {
                    let r = app.refresh("cli", &rt, &[]).await;
                    if r.status() != 200 {
                        break;
                    }
                    let body: Value = r.json().await.unwrap();
                    rt = s(&body, "refresh_token");
                    got.push(rt.clone());
                }
                got
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(round % 7)).await;
        // The victim signs out (RFC 7009 with the access token: the grant's session ends).
        let r = app
            .http
            .post(app.url("/revoke"))
            .form(&[("client_id", "cli"), ("token", &s(&t, "access_token"))])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let stolen = thief.await.unwrap();
        let last = stolen.last().unwrap();
        assert_ne!(
            app.refresh("cli", last, &[]).await.status(),
            200,
            "round {round}: the thief's latest token still works after logout"
        );
        let sid = app.verify(&s(&t, "access_token"), MCP).await.sid.unwrap();
        let live = app
            .sql_count(&format!(
                "SELECT COUNT(*) FROM refresh_tokens WHERE sid = '{sid}' \
                 AND used_at IS NULL AND revoked_at IS NULL"
            ))
            .await;
        assert_eq!(live, 0, "round {round}: a live refresh token escaped");
    }
}

/// Regression (issue 11, item 6): the refresh grant never re-checked the session or the
/// credentials: with the token itself still live (a successor that escaped revocation, staged
/// here in SQL), it kept working (fails on the code before the fix: 200).
async fn refresh_refuses_ended_sessions_and_changed_credentials(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    // Positive control.
    let t = login(&app, "notes:read offline_access").await;
    let t = expect_token(app.refresh("cli", &s(&t, "refresh_token"), &[]).await).await;
    // The session ended, its token not revoked.
    let sid = app.verify(&s(&t, "access_token"), MCP).await.sid.unwrap();
    app.sql(&format!(
        "UPDATE sessions SET ended_at = 1 WHERE sid = '{sid}'"
    ))
    .await;
    let d = expect_error(
        app.refresh("cli", &s(&t, "refresh_token"), &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(d.contains("session has ended"), "{d}");
    // The password was reset; the token (and its session) staged live again.
    let t = login(&app, "notes:read offline_access").await;
    app.clock.advance(1);
    let pw = shared::secret::Password::new("another new passphrase here");
    authz::identity::admin::set_password(app.state.identity(), "admin", "alice", &pw)
        .await
        .unwrap();
    app.sql("UPDATE refresh_tokens SET revoked_at = NULL").await;
    app.sql("UPDATE sessions SET ended_at = NULL").await;
    let d = expect_error(
        app.refresh("cli", &s(&t, "refresh_token"), &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(d.contains("password changed"), "{d}");
}

/// Issue 11, item 7: UserInfo, the management API, introspection, token exchange and the
/// refresh grant apply one rule (`oauth::live`). Each way a token can die is checked at all
/// five; each case starts with a live token that every endpoint accepts (the positive control).
/// On the code before the fix the refresh grant ignored ended sessions and UserInfo and
/// introspection ignored deleted clients.
async fn every_endpoint_applies_the_same_liveness_rule(backend: Backend) {
    #[derive(Debug, Clone, Copy)]
    enum Death {
        SessionEnded,
        UserDisabled,
        CredentialsChanged,
        ClientDeleted,
    }
    for death in [
        Death::SessionEnded,
        Death::UserDisabled,
        Death::CredentialsChanged,
        Death::ClientDeleted,
    ] {
        let app = TestApp::spawn_with(backend, |c| c.client_cache_secs = 0).await;
        let rs = setup(&app).await;
        app.code_client(
            "rp",
            AuthMethod::None,
            "openid profile notes:read offline_access",
        )
        .await;
        let (code, verifier) = super::code_for(&app, "openid notes:read offline_access").await;
        let t = expect_token(app.redeem("rp", &code, &verifier).await).await;
        let (at, rt) = (s(&t, "access_token"), s(&t, "refresh_token"));
        let introspect = |tok: String| {
            let (app, rs) = (&app, rs.clone());
            async move { app.introspect(&rs, &tok).await["active"].clone() }
        };
        let mgmt_status = |tok: String| {
            let app = &app;
            async move { app.bearer_status("/api/v1/api-keys", &tok).await }
        };
        // Alive everywhere.
        assert_eq!(app.userinfo_status(&at).await, 200, "{death:?}");
        assert_eq!(introspect(at.clone()).await, true, "{death:?}");
        assert_eq!(introspect(rt.clone()).await, true, "{death:?}");
        let resp = exchange(&app, &rs, &at, "notes:read").await;
        let mgmt = s(&expect_token(resp).await, "access_token");
        assert_eq!(
            mgmt_status(mgmt.clone()).await,
            403,
            "live, lacks keys:write"
        );

        let user_id = app.verify(&at, MCP).await.sub;
        match death {
            Death::SessionEnded => {
                app.sql("UPDATE sessions SET ended_at = 1").await;
            }
            Death::UserDisabled => {
                app.sql(&format!(
                    "UPDATE users SET disabled_at = 1 WHERE id = '{user_id}'"
                ))
                .await;
            }
            Death::CredentialsChanged => {
                let later = app.state.now() + 1;
                app.sql(&format!(
                    "UPDATE users SET credentials_changed_at = {later} WHERE id = '{user_id}'"
                ))
                .await;
                app.clock.advance(1);
            }
            Death::ClientDeleted => {
                // Its refresh tokens go with it (ON DELETE CASCADE); its access tokens remain.
                authz::identity::admin::delete_client(
                    &*app.state.store,
                    &app.state.clients,
                    &app.state.events,
                    "test",
                    "rp",
                )
                .await
                .unwrap();
            }
        }
        assert_eq!(app.userinfo_status(&at).await, 401, "userinfo, {death:?}");
        assert_eq!(introspect(at.clone()).await, false, "introspect, {death:?}");
        assert_eq!(
            introspect(rt.clone()).await,
            false,
            "introspect rt, {death:?}"
        );
        expect_error(
            exchange(&app, &rs, &at, "notes:read").await,
            400,
            "invalid_request",
        )
        .await;
        if !matches!(death, Death::ClientDeleted) {
            // The exchanged token speaks for the same user and session.
            assert_eq!(mgmt_status(mgmt).await, 401, "management API, {death:?}");
            expect_error(app.refresh("rp", &rt, &[]).await, 400, "invalid_grant").await;
        } else {
            expect_error(app.refresh("rp", &rt, &[]).await, 401, "invalid_client").await;
        }
    }
}
