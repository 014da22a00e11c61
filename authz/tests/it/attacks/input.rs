//! Hostile input: oversized bodies, duplicated parameters, invalid UTF-8, SQL metacharacters in
//! every text field.

use testkit::agent::FormAgent;
use testkit::both_backends;

use super::{PW, browser_app};
use crate::support::{Backend, expect_error, pkce};

both_backends!(
    oversized_bodies_are_refused_everywhere,
    duplicate_parameters_are_refused,
    invalid_utf8_is_refused,
    sql_metacharacters_in_every_text_field_are_just_text,
);

/// Size limits on every endpoint that takes a body (RFC 6749 §3.2 forms, RFC 7591 JSON).
async fn oversized_bodies_are_refused_everywhere(backend: Backend) {
    let app = browser_app(backend).await;
    let big = "a".repeat(64 * 1024);
    for path in [
        "/token",
        "/revoke",
        "/introspect",
        "/login",
        "/consent",
        "/register",
    ] {
        let r = app
            .http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("x={big}"))
            .send()
            .await;
        // A closed connection is also a refusal.
        if let Ok(r) = r {
            assert!(
                matches!(r.status().as_u16(), 400 | 403 | 413),
                "{path}: {}",
                r.status()
            );
        }
    }
}

/// RFC 6749 §3.1, §3.2: parameters must not be included more than once.
async fn duplicate_parameters_are_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let secret = app.bot("notes:read").await;
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("bot", Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=notes:read&scope=notes:write")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_request").await;
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("state", "second")]);
    let page = FormAgent::new().get(&url).await;
    assert_eq!(page.status, 400, "duplicate state: a page, no redirect");
}

/// Invalid UTF-8 is an error, never silently repaired.
async fn invalid_utf8_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let r = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"grant_type=password&username=%FF%FE&password=x&client_id=rp".to_vec())
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_request").await;
    let r = app
        .http
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a', b'=', 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// SQL injection: quotes, comments and UNION in usernames, passwords, client names, scopes,
/// state, nonce and registration metadata are data, never SQL (every query is parameterised).
async fn sql_metacharacters_in_every_text_field_are_just_text(backend: Backend) {
    let app = browser_app(backend).await;
    let evil = "x' OR '1'='1'; DROP TABLE users; --";
    // Login form and password grant.
    let r = FormAgent::new()
        .sign_in(
            &app.base,
            &{
                let (_, c) = pkce();
                app.authorize_url("rp", &c, &[("nonce", evil)])
            },
            evil,
            evil,
            "approve",
        )
        .await;
    assert!(r.unwrap_err().body.contains("incorrect"));
    let r = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", evil),
                ("username", evil),
                ("password", evil),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 401);
    // Registration metadata and scope.
    let r = app
        .http
        .post(app.url("/register"))
        .json(
            &serde_json::json!({ "client_name": evil, "redirect_uris": ["https://a.example/cb"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = app
        .http
        .post(app.url("/register"))
        .json(&serde_json::json!({ "scope": evil, "redirect_uris": ["https://a.example/cb"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // State and nonce round-trip untouched.
    let (_, c) = pkce();
    let url = app
        .authorize_url("rp", &c, &[("state", evil)])
        .replace("state=st-123&", "");
    let back = FormAgent::new()
        .sign_in(&app.base, &url, "alice", PW, "approve")
        .await
        .unwrap();
    assert_eq!(crate::support::query(&back)["state"], evil);
    // Everything is still there.
    assert!(
        app.state
            .store
            .get_user_by_username("alice")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        app.state
            .store
            .list_clients()
            .await
            .unwrap()
            .iter()
            .filter(|c| c.name == evil)
            .count(),
        1
    );
}
