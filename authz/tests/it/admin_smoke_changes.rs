//! Checks of the admin console's changes (users, clients, keys) through the whole server
//! (moved from `authz-web`'s unit tests): CSRF, a recent sign-in, the rules on oneself, and an
//! audit record with the administrator as actor for each (harness: `admin_smoke::App`).

use reqwest::StatusCode;
use testkit::both_backends;

use crate::admin_smoke::App;
use crate::support::Backend;

both_backends!(user_changes_are_checked_and_audited, clients_and_keys);

async fn user_changes_are_checked_and_audited(backend: Backend) {
    let app = App::new(backend).await;
    let root = app.user("root", "admin").await;
    let bob = app.user("bob", "user").await;
    let c = app.sign_in(&root).await;
    let _bob_c = app.sign_in(&bob).await;

    // No CSRF token: refused, nothing changed.
    let path = format!("/admin/users/{}/disable", bob.id);
    let r = app.post(&path, &c, &[], false).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(app.reload(&bob).await.is_enabled());

    let r = app.post(&path, &c, &[("q", "bo")], true).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location, "/admin/users?q=bo&done=disabled");
    assert!(!app.reload(&bob).await.is_enabled());
    assert_eq!(
        app.audit("user.disabled").await[0].actor.as_deref(),
        Some("root")
    );
    let r = app.get("/admin/users?q=bo&done=disabled", &c).await;
    assert!(r.body.contains("The user was disabled"));
    assert!(r.body.contains(">disabled</span>"));
    assert!(!r.body.contains("data-username=\"root\""));

    let r = app.user_action(&bob.id, "enable", &c).await;
    assert_eq!(r.location, "/admin/users?done=enabled");

    // Not on oneself.
    for action in [
        "disable",
        "reset-password",
        "end-sessions",
        "reset-two-factor",
    ] {
        let r = app
            .post(&format!("/admin/users/{}/{action}", root.id), &c, &[], true)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{action}");
        assert!(r.body.contains("notice-error"), "{action}");
    }
    let roles = format!("/admin/users/{}/roles", root.id);
    let r = app.post(&roles, &c, &[("role-user", "on")], true).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("your own admin role"));
    let roles = format!("/admin/users/{}/roles", bob.id);
    let r = app
        .post(
            &roles,
            &c,
            &[("role-user", "on"), ("role-readonly", "on")],
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(app.reload(&bob).await.roles, vec!["readonly", "user"]);
    let r = app.post(&roles, &c, &[], true).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Give at least one role."));

    // Reset password: shown once, to be changed at the next sign-in.
    let r = app.user_action(&bob.id, "reset-password", &c).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("class=\"secret-once\" data-name=\"password\"")
    );
    assert!(app.reload(&bob).await.password_change_required);

    // End sessions.
    let _ = app.sign_in(&bob).await;
    let r = app.user_action(&bob.id, "end-sessions", &c).await;
    assert_eq!(r.location, "/admin/users?done=sessions-ended&count=1");
    let ended = app.audit("user.sessions_ended").await;
    assert_eq!(ended[0].actor.as_deref(), Some("root"));
    let r = app.user_action(&bob.id, "reset-two-factor", &c).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Create: refused with the reason, then done.
    let r = app
        .post(
            "/admin/users",
            &c,
            &[
                ("username", "carol"),
                ("password", "short"),
                ("role-user", "on"),
            ],
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Password is too short"), "{}", r.body);
    assert!(r.body.contains("value=\"carol\""));
    let pairs = [
        ("username", "carol"),
        ("password", "another long password"),
        ("role-user", "on"),
    ];
    let r = app.post("/admin/users", &c, &pairs, true).await;
    assert_eq!(r.location, "/admin/users?done=created");
    let r = app.post("/admin/users", &c, &pairs, true).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // Unknown user or action.
    let r = app
        .post("/admin/users/usr_nope/disable", &c, &[], true)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.user_action(&bob.id, "explode", &c).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // An old sign-in is sent to sign in again first.
    app.clock.advance(601);
    let r = app.user_action(&bob.id, "disable", &c).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location, "/account/login?reauth=1&next=%2Fadmin%2Fusers");
    assert!(app.reload(&bob).await.is_enabled());
}

async fn clients_and_keys(backend: Backend) {
    let app = App::new(backend).await;
    let root = app.user("root", "admin").await;
    let c = app.sign_in(&root).await;
    let pairs = [
        ("name", "Web app"),
        ("client_id", "web-app"),
        ("auth_method", "client_secret_basic"),
        ("grant-authorization_code", "on"),
        ("redirect_uris", "https://app.example/cb"),
        ("scope", "openid"),
    ];
    let r = app.post("/admin/clients", &c, &pairs, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("data-name=\"client_secret\""));
    assert!(
        r.body
            .contains("<tr data-id=\"web-app\" data-kind=\"admin\">")
    );
    let r = app.post("/admin/clients", &c, &pairs, true).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let bad = [
        ("name", "X"),
        ("auth_method", "none"),
        ("grant-client_credentials", "on"),
    ];
    let r = app.post("/admin/clients", &c, &bad, true).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body
            .contains("public client cannot use client_credentials")
    );
    // A resource server from the form: token exchange, the resource it serves, introspection,
    // DPoP-bound and PAR-only (the issue 18 settings).
    let rs = [
        ("name", "Notes MCP"),
        ("client_id", "notes-mcp"),
        ("auth_method", "client_secret_basic"),
        ("grant-token_exchange", "on"),
        ("serves_resource", "https://mcp.example/mcp"),
        ("may_introspect", "on"),
        ("dpop_bound", "on"),
        ("require_par", "on"),
        ("scope", "profile:read"),
    ];
    let r = app.post("/admin/clients", &c, &rs, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = app
        .state
        .store
        .get_client("notes-mcp")
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(
        stored.grant_types,
        vec![authz::store::GrantType::TokenExchange]
    );
    assert_eq!(
        stored.serves_resource.as_deref(),
        Some("https://mcp.example/mcp")
    );
    assert!(stored.may_introspect && stored.dpop_bound_access_tokens);
    assert!(stored.require_pushed_authorization_requests);

    let r = app
        .post("/admin/clients/web-app/rotate-secret", &c, &[], true)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("data-name=\"client_secret\""));
    assert_eq!(
        app.audit("client.secret_rotated").await[0].actor.as_deref(),
        Some("root")
    );
    let r = app
        .post("/admin/clients/web-app/delete", &c, &[], true)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post(
            "/admin/clients/web-app/delete",
            &c,
            &[("confirm", "on")],
            true,
        )
        .await;
    assert_eq!(r.location, "/admin/clients?done=deleted");
    let r = app
        .post(
            "/admin/clients/web-app/delete",
            &c,
            &[("confirm", "on")],
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.post("/admin/clients/prune", &c, &[], true).await;
    assert_eq!(r.location, "/admin/clients?done=pruned&count=0");
    let r = app.get(&r.location, &c).await;
    assert!(
        r.body
            .contains("Deleted 0 unused self-registered client(s).")
    );

    let r = app.post("/admin/keys", &c, &[("alg", "ES256")], true).await;
    assert_eq!(r.location, "/admin/keys?done=rotated");
    let r = app.get("/admin/keys", &c).await;
    assert!(r.body.matches("<tr data-kid=").count() >= 2, "{}", r.body);
    assert!(r.body.contains("data-status=\"next\""));
    let r = app.post("/admin/keys", &c, &[("alg", "HS256")], true).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .post("/admin/keys", &c, &[("alg", "EdDSA"), ("now", "on")], true)
        .await;
    assert_eq!(r.location, "/admin/keys?done=rotated-now");
    assert_eq!(
        app.audit("key.rotated").await[0].actor.as_deref(),
        Some("root")
    );
}
