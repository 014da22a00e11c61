//! RFC 7591 dynamic client registration.

use serde_json::{Value, json};
use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(
    public_and_confidential_clients_register,
    bad_metadata_gets_rfc7591_errors,
    registration_can_be_closed_and_is_rate_limited,
    application_type_is_checked_against_redirect_uris,
    the_cap_on_self_registered_clients_holds_under_concurrency,
    unused_and_idle_self_registered_clients_are_pruned,
);

async fn register(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn public_and_confidential_clients_register(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, c) = register(
        &app,
        json!({
            "client_name": "Claude Desktop",
            "redirect_uris": ["http://127.0.0.1:33418/oauth/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "openid notes:read",
            "logo_uri": "https://example.com/ignored.png"
        }),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert!(c["client_id"].as_str().unwrap().starts_with("cl_"));
    assert!(c.get("client_secret").is_none());
    assert_eq!(c["token_endpoint_auth_method"], "none");
    assert_eq!(c["scope"], "notes:read openid");
    let stored = app
        .state
        .store
        .get_client(c["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.registration, authz::store::Registration::Dynamic);
    // Defaults: client_secret_basic, authorization_code, every user-grantable scope.
    let (status, c) = register(
        &app,
        json!({ "redirect_uris": ["https://app.example.com/cb"] }),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(c["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(c["client_secret_expires_at"], 0);
    assert_eq!(c["grant_types"], json!(["authorization_code"]));
    assert!(c["scope"].as_str().unwrap().contains("audit:read"));
    let stored = app
        .state
        .store
        .get_client(c["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        stored.secret_hash.as_deref(),
        c["client_secret"].as_str(),
        "stored hashed"
    );
    let events = app.audit_events().await;
    assert!(events.iter().any(|e| e.kind == "client.registered"));
    assert!(
        !serde_json::to_string(&events)
            .unwrap()
            .contains(c["client_secret"].as_str().unwrap())
    );
}

async fn bad_metadata_gets_rfc7591_errors(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.browser.registration_per_minute = 100).await;
    let cases = [
        (json!({}), "invalid_redirect_uri"),
        (
            json!({ "redirect_uris": ["http://app.example.com/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://app.example.com/cb#frag"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["com.example.app:/cb"] }),
            "invalid_redirect_uri",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["password"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "response_types": ["token"] }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "scope": "root:all" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb"], "client_name": "x\u{7}" }),
            "invalid_client_metadata",
        ),
        (
            json!({ "redirect_uris": "https://a.example/cb" }),
            "invalid_client_metadata",
        ),
    ];
    for (body, code) in cases {
        let (status, err) = register(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(err["error"], code, "{body}: {err}");
        assert!(err["error_description"].is_string());
    }
    let r = app
        .http
        .post(app.url("/register"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "wrong content type");
    assert!(
        app.state.store.list_clients().await.unwrap().is_empty(),
        "nothing stored"
    );
}

async fn registration_can_be_closed_and_is_rate_limited(backend: Backend) {
    let closed = TestApp::spawn_with(backend, |c| c.browser.registration_open = false).await;
    let (status, body) = register(
        &closed,
        json!({ "redirect_uris": ["https://a.example/cb"] }),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "invalid_request", "an RFC 6749 code: {body}");
    let meta: Value = closed
        .http
        .get(closed.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("registration_endpoint").is_none());

    let app = TestApp::spawn_with(backend, |c| c.browser.registration_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(
            register(&app, json!({ "redirect_uris": ["https://a.example/cb"] }))
                .await
                .0,
            201
        );
    }
    let r = app
        .http
        .post(app.url("/register"))
        .json(&json!({ "redirect_uris": ["https://a.example/cb"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 0
    );
    app.clock.advance(60);
    assert_eq!(
        register(&app, json!({ "redirect_uris": ["https://a.example/cb"] }))
            .await
            .0,
        201
    );
}

/// OIDC Registration §2 `application_type`: `web` redirects to https, `native` to loopback;
/// absent, loopback-only clients are native (MCP clients) and others web; echoed back.
async fn application_type_is_checked_against_redirect_uris(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reg = |app_type: Option<&str>, uris: &[&str]| {
        let mut body = json!({ "client_name": "App", "redirect_uris": uris,
                               "token_endpoint_auth_method": "none" });
        if let Some(t) = app_type {
            body["application_type"] = json!(t);
        }
        let app = &app;
        async move { register(app, body).await }
    };
    for (t, uris, want) in [
        (None, vec!["http://127.0.0.1:3000/cb"], "native"),
        (None, vec!["https://app.example/cb"], "web"),
        (Some("native"), vec!["http://[::1]/cb"], "native"),
        (Some("web"), vec!["https://app.example/cb"], "web"),
    ] {
        let (status, c) = reg(t, &uris).await;
        assert_eq!(status, 201, "{t:?} {uris:?}: {c}");
        assert_eq!(c["application_type"], want, "{t:?} {uris:?}");
    }
    // Not stated, and a mix of https and loopback: accepted, no type claimed.
    let (status, c) = reg(None, &["https://app.example/cb", "http://127.0.0.1/cb"]).await;
    assert_eq!(status, 201, "{c}");
    assert!(c.get("application_type").is_none(), "{c}");
    for (t, uris, code) in [
        (
            Some("web"),
            vec!["http://127.0.0.1:3000/cb"],
            "invalid_redirect_uri",
        ),
        (
            Some("native"),
            vec!["https://app.example/cb"],
            "invalid_redirect_uri",
        ),
        (
            Some("desktop"),
            vec!["http://127.0.0.1/cb"],
            "invalid_client_metadata",
        ),
    ] {
        let (status, c) = reg(t, &uris).await;
        assert_eq!(status, 400, "{t:?} {uris:?}: {c}");
        assert_eq!(c["error"], code, "{t:?} {uris:?}");
    }
}

/// `registration_max_clients`: concurrent registrations cannot pass the cap (the counter moves
/// atomically with the insert), and deleting a client frees its place.
async fn the_cap_on_self_registered_clients_holds_under_concurrency(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.browser.registration_max_clients = 3;
        c.browser.registration_per_minute = 1000;
    })
    .await;
    let body = json!({ "client_name": "Flood", "redirect_uris": ["http://127.0.0.1/cb"],
                       "token_endpoint_auth_method": "none" });
    // Twelve at once, each on its own task.
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (http, url, body) = (app.http.clone(), app.url("/register"), body.clone());
            tokio::spawn(async move {
                let r = http.post(url).json(&body).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, c)| c)
        .collect();
    assert_eq!(created.len(), 3, "{results:?}");
    for (status, c) in results.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 400);
        assert_eq!(c["error"], "invalid_client_metadata");
        assert!(
            c["error_description"]
                .as_str()
                .unwrap()
                .contains("most self-registered")
        );
    }
    // Administrators' clients do not count; deleting a self-registered one frees a place.
    app.code_client("admin-made", authz::store::AuthMethod::None, "notes:read")
        .await;
    let id = created[0]["client_id"].as_str().unwrap();
    authz::identity::admin::delete_client(
        &*app.state.store,
        &app.state.clients,
        &app.state.events,
        "test",
        id,
    )
    .await
    .unwrap();
    let (status, _) = register(&app, body.clone()).await;
    assert_eq!(status, 201);
    let (status, _) = register(&app, body).await;
    assert_eq!(status, 400);
}

/// Housekeeping deletes self-registered clients never used within a day, and ones idle for 90
/// days with no live grant; used ones, and administrators' clients, stay. Dry runs list only.
async fn unused_and_idle_self_registered_clients_are_pruned(backend: Backend) {
    use authz::identity::admin::prune_clients;
    // Idle after 2 days (refresh families live 30): a live grant must keep an idle client.
    let app = TestApp::spawn_with(backend, |c| c.browser.registration_idle_ttl_days = 2).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("admin-made", authz::store::AuthMethod::None, "notes:read")
        .await;
    let body = json!({ "client_name": "App", "redirect_uris": [crate::support::CB],
                       "token_endpoint_auth_method": "none",
                       "grant_types": ["authorization_code", "refresh_token"] });
    let (_, unused) = register(&app, body.clone()).await;
    let (_, used) = register(&app, body).await;
    let (unused, used) = (
        unused["client_id"].as_str().unwrap().to_owned(),
        used["client_id"].as_str().unwrap().to_owned(),
    );
    // `used` completes an authorization.
    let (verifier, challenge) = crate::support::pkce();
    let url = app.authorize_url(&used, &challenge, &[("scope", "notes:read")]);
    let back = app
        .browser_sign_in(
            &testkit::agent::FormAgent::new(),
            &url,
            "alice",
            "correct horse battery staple",
        )
        .await;
    let tokens =
        crate::support::expect_token(app.redeem(&used, &back["code"], &verifier).await).await;
    assert!(
        prune_clients(
            &*app.state.store,
            &app.state.clients,
            &app.state.events,
            &app.state.config.browser,
            "test",
            false
        )
        .await
        .unwrap()
        .is_empty(),
        "too early"
    );

    app.clock.advance(86_401);
    let listed = prune_clients(
        &*app.state.store,
        &app.state.clients,
        &app.state.events,
        &app.state.config.browser,
        "test",
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|p| p.client_id.as_str())
            .collect::<Vec<_>>(),
        [unused.as_str()]
    );
    assert_eq!(listed[0].reason, "never_used");
    assert!(
        app.state.store.get_client(&unused).await.unwrap().is_some(),
        "a dry run deletes nothing"
    );
    authz::housekeeping(&app.state).await.unwrap();
    assert!(app.state.store.get_client(&unused).await.unwrap().is_none());
    assert!(app.state.store.get_client(&used).await.unwrap().is_some());
    assert!(app.audit_kinds().await.iter().any(|k| k == "client.pruned"));

    // Idle for 3 days, but its refresh token is still live: kept.
    assert!(tokens["refresh_token"].is_string());
    app.clock.advance(2 * 86_400);
    authz::housekeeping(&app.state).await.unwrap();
    assert!(
        app.state.store.get_client(&used).await.unwrap().is_some(),
        "a live grant was pruned"
    );
    // Once its refresh family has ended (30 days), nothing is live: pruned.
    app.clock.advance(30 * 86_400);
    authz::housekeeping(&app.state).await.unwrap();
    assert!(
        app.state.store.get_client(&used).await.unwrap().is_none(),
        "idle client kept"
    );
    assert!(
        app.state
            .store
            .get_client("admin-made")
            .await
            .unwrap()
            .is_some()
    );
    // Its place under the registration cap is free again.
    assert_eq!(
        app.sql_count("SELECT value FROM counters WHERE name = 'dynamic_clients'")
            .await,
        0
    );
    // The command does the same: `authz client prune [--dry-run]`.
    let (_, old) = register(
        &app,
        json!({ "client_name": "Old", "redirect_uris": [crate::support::CB],
                "token_endpoint_auth_method": "none" }),
    )
    .await;
    let old = old["client_id"].as_str().unwrap().to_owned();
    app.sql(&format!(
        "UPDATE clients SET created_at = 0 WHERE id = '{old}'"
    ))
    .await;
    let (ok, out, err) = crate::cli::authz(&app, &["client", "prune", "--dry-run", "--json"], None);
    assert!(ok, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["client_id"], old.as_str(), "{out}");
    assert!(app.state.store.get_client(&old).await.unwrap().is_some());
    let (ok, out, err) = crate::cli::authz(&app, &["client", "prune"], None);
    assert!(ok && out.contains("1 client(s) deleted"), "{out} {err}");
    assert!(app.state.store.get_client(&old).await.unwrap().is_none());
}
