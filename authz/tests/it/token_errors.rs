//! Error cases of the token endpoint, each an RFC 6749 §5.2 response.

use authz::store::{AuthMethod, GrantType};

use crate::password::ALICE_PW;
use crate::support::{Backend, MCP, OTHER_API, TestApp, expect_error};
use testkit::both_backends;

both_backends!(
    client_authentication_errors,
    request_format_errors,
    client_credentials_errors,
    password_errors
);

async fn setup(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn(backend).await;
    let secret = app.bot("notes:read profile:read").await;
    app.client(
        "cli",
        AuthMethod::None,
        &[GrantType::Password, GrantType::RefreshToken],
        "notes:read notes:write profile:read offline_access",
        &[MCP],
    )
    .await;
    app.client(
        "nopw",
        AuthMethod::None,
        &[GrantType::RefreshToken],
        "notes:read",
        &[MCP],
    )
    .await;
    app.user("alice", ALICE_PW, "readonly").await;
    (app, secret)
}

const CC: (&str, &str) = ("grant_type", "client_credentials");

async fn client_authentication_errors(backend: Backend) {
    let (app, secret) = setup(backend).await;
    // Wrong secret, unknown client, no credentials: 401 invalid_client with a challenge.
    expect_error(
        app.token(&[CC], Some(("bot", "wrong"))).await,
        401,
        "invalid_client",
    )
    .await;
    expect_error(
        app.token(&[CC], Some(("ghost", &secret))).await,
        401,
        "invalid_client",
    )
    .await;
    expect_error(app.token(&[CC], None).await, 401, "invalid_client").await;
    // Registered for Basic, tried POST: refused (the registered method only).
    let e = expect_error(
        app.token(
            &[CC, ("client_id", "bot"), ("client_secret", &secret)],
            None,
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    assert!(e.contains("client_secret_basic"));
    // A confidential client cannot skip its secret.
    expect_error(
        app.token(&[CC, ("client_id", "bot")], None).await,
        401,
        "invalid_client",
    )
    .await;
    // Two methods at once (RFC 6749 §2.3).
    expect_error(
        app.token(&[CC, ("client_secret", &secret)], Some(("bot", &secret)))
            .await,
        400,
        "invalid_request",
    )
    .await;
    // Mismatched client_id in body and Basic.
    expect_error(
        app.token(&[CC, ("client_id", "cli")], Some(("bot", &secret)))
            .await,
        400,
        "invalid_request",
    )
    .await;
    // Garbage Basic header and a Bearer header.
    let r = app
        .http
        .post(app.url("/token"))
        .header("Authorization", "Basic !!!")
        .form(&[CC])
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_client").await;
    let r = app
        .http
        .post(app.url("/token"))
        .header("Authorization", "Bearer abc")
        .form(&[CC])
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_client").await;
    // The secret never appears in the response and failures are audited.
    assert!(
        app.audit_kinds()
            .await
            .contains(&"client.auth_failed".to_owned())
    );
}

async fn request_format_errors(backend: Backend) {
    let (app, secret) = setup(backend).await;
    let post = |body: Vec<u8>, ct: &'static str| {
        app.http
            .post(app.url("/token"))
            .basic_auth("bot", Some(&secret))
            .header("Content-Type", ct)
            .body(body)
            .send()
    };
    // JSON instead of a form.
    let r = post(
        br#"{"grant_type":"client_credentials"}"#.to_vec(),
        "application/json",
    )
    .await
    .unwrap();
    expect_error(r, 400, "invalid_request").await;
    // Duplicate parameter (RFC 6749 §3.2).
    let r = post(
        b"grant_type=client_credentials&scope=notes:read&scope=profile:read".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    let e = expect_error(r, 400, "invalid_request").await;
    assert!(e.contains("repeated"));
    // Oversized body: invalid_request (or, if the client is still sending when the server has
    // answered, a closed connection; either way the request is refused).
    let big = format!("grant_type=client_credentials&x={}", "a".repeat(20 * 1024)).into_bytes();
    match post(big, "application/x-www-form-urlencoded").await {
        Ok(r) => {
            expect_error(r, 400, "invalid_request").await;
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "unexpected error: {e}"),
    }
    // Invalid UTF-8 after percent-decoding.
    let r = post(
        b"grant_type=client_credentials&scope=%C3%28".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    expect_error(r, 400, "invalid_request").await;
    // Missing and unknown grant types.
    expect_error(
        app.token(&[("scope", "notes:read")], Some(("bot", &secret)))
            .await,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        app.token(&[("grant_type", "urn:x:magic")], Some(("bot", &secret)))
            .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    // A known grant the client is not registered for (RFC 6749 §5.2).
    expect_error(
        app.token(
            &[("grant_type", "authorization_code")],
            Some(("bot", &secret)),
        )
        .await,
        400,
        "unauthorized_client",
    )
    .await;
    expect_error(
        app.token(&[("grant_type", "implicit")], Some(("bot", &secret)))
            .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    // GET is not a token request.
    let r = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

async fn client_credentials_errors(backend: Backend) {
    let (app, secret) = setup(backend).await;
    let basic = Some(("bot", secret.as_str()));
    let e = expect_error(
        app.token(&[CC, ("scope", "notes:read nonsense")], basic)
            .await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(e.contains("nonsense"), "{e}");
    let e = expect_error(
        app.token(&[CC, ("scope", "notes:write")], basic).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(
        e.contains("notes:write"),
        "forbidden scope is named, not dropped: {e}"
    );
    expect_error(
        app.token(&[CC, ("scope", "offline_access")], basic).await,
        400,
        "invalid_scope",
    )
    .await;
    expect_error(
        app.token(&[CC, ("scope", "openid")], basic).await,
        400,
        "invalid_scope",
    )
    .await;
    expect_error(
        app.token(&[CC, ("scope", "notes:read  profile:read")], basic)
            .await,
        400,
        "invalid_scope",
    )
    .await;
    // RFC 8707: not allowed, malformed, with fragment, or two at once.
    expect_error(
        app.token(&[CC, ("resource", OTHER_API)], basic).await,
        400,
        "invalid_target",
    )
    .await;
    expect_error(
        app.token(&[CC, ("resource", "not a uri")], basic).await,
        400,
        "invalid_target",
    )
    .await;
    expect_error(
        app.token(&[CC, ("resource", "http://127.0.0.1:8081/mcp#x")], basic)
            .await,
        400,
        "invalid_target",
    )
    .await;
    expect_error(
        app.token(&[CC, ("resource", MCP), ("resource", OTHER_API)], basic)
            .await,
        400,
        "invalid_target",
    )
    .await;
    // Near-misses of the allowed resource (another path, port, scheme): the canonical form
    // (issue 14: case, default port and a trailing `/` do not matter) must match exactly.
    for near in [
        "http://127.0.0.1:8081/mcp/x",
        "http://127.0.0.1:8081/mcpx",
        "http://127.0.0.1:8082/mcp",
        "https://127.0.0.1:8081/mcp",
    ] {
        expect_error(
            app.token(&[CC, ("resource", near)], basic).await,
            400,
            "invalid_target",
        )
        .await;
    }
    // Public client or a client without the grant.
    expect_error(
        app.token(&[CC, ("client_id", "cli")], None).await,
        400,
        "unauthorized_client",
    )
    .await;
}

async fn password_errors(backend: Backend) {
    let (app, _) = setup(backend).await;
    let pw = |user: &'static str, pass: &'static str, scope: &'static str| {
        let mut f = vec![
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", user),
            ("password", pass),
        ];
        if !scope.is_empty() {
            f.push(("scope", scope));
        }
        f
    };
    let wrong = expect_error(
        app.token(&pw("alice", "nope", ""), None).await,
        400,
        "invalid_grant",
    )
    .await;
    let unknown = expect_error(
        app.token(&pw("mallory", "nope", ""), None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(wrong, unknown, "no user enumeration");
    // readonly may not write, whatever the client allows.
    let e = expect_error(
        app.token(&pw("alice", ALICE_PW, "notes:write"), None).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(e.contains("notes:write"));
    expect_error(
        app.token(&pw("alice", ALICE_PW, "openid"), None).await,
        400,
        "invalid_scope",
    )
    .await;
    // Missing parameters.
    expect_error(
        app.token(
            &[
                ("grant_type", "password"),
                ("client_id", "cli"),
                ("username", "alice"),
            ],
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    // A client not allowed the password grant (RFC 9700 §2.4: off unless explicitly allowed).
    expect_error(
        app.token(
            &[
                ("grant_type", "password"),
                ("client_id", "nopw"),
                ("username", "alice"),
                ("password", ALICE_PW),
            ],
            None,
        )
        .await,
        400,
        "unauthorized_client",
    )
    .await;
    // Disabled accounts get the same generic answer.
    app.set_disabled("test", "alice", true).await;
    let disabled = expect_error(
        app.token(&pw("alice", ALICE_PW, ""), None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(disabled, wrong);
    let events = app.audit_events().await;
    let failures = events.iter().filter(|e| e.kind == "login.failed").count();
    assert_eq!(failures, 3);
    assert!(!serde_json::to_string(&events).unwrap().contains(ALICE_PW));
}
