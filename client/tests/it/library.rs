//! The library: browser sign-in answered programmatically, refresh before expiry (rotation),
//! API-key step-up, remembered tokens (0600), logout.

use mcp_auth_client::{AuthenticatedMcpClient, ClientError, SignInMethod};
use testkit::both_backends;

use crate::support::{Backend, System, browser_approves};

both_backends!(
    browser_sign_in_through_the_loopback_redirect,
    authorization_response_without_iss_is_refused,
    tokens_refresh_before_expiry_with_rotation,
    api_key_steps_up_on_insufficient_scope,
    remembered_tokens_are_private_and_logout_revokes,
);

async fn browser_sign_in_through_the_loopback_redirect(backend: Backend) {
    let s = System::start(backend).await;
    let c = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    assert_eq!(
        c.endpoints().issuer,
        s.authz_url,
        "discovered from the MCP URL"
    );
    let signin = c
        .start_browser_login("profile:read notes:read")
        .await
        .unwrap();
    let url = signin.url.clone();
    assert!(url.contains("code_challenge_method=S256") && url.contains("resource="));
    // The "browser": the real login page, then the redirect to the client's loopback listener.
    let browser = browser_approves(&s.authz_url, &url);
    c.finish_browser_login(signin, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    assert!(browser.await.unwrap().contains("You can close this window"));
    let p = c.get_user_profile().await.unwrap();
    assert_eq!(p.username.as_deref(), Some("testuser"));
    assert_eq!(c.tokens().await.unwrap().method, SignInMethod::Browser);
}

/// Regression (issue 11, item 15; RFC 9207 §2.4): an authorization response without `iss` was
/// accepted although the server advertises `authorization_response_iss_parameter_supported`, so
/// a mix-up attacker's response could pass by leaving it out. The positive control is
/// `browser_sign_in_through_the_loopback_redirect` (the real server's response, with `iss`).
async fn authorization_response_without_iss_is_refused(backend: Backend) {
    let s = System::start(backend).await;
    let c = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    assert!(
        c.endpoints().authorization_response_iss_parameter_supported,
        "authz advertises RFC 9207"
    );
    for iss in [None, Some("https://attacker.example")] {
        let signin = c.start_browser_login("profile:read").await.unwrap();
        let state = url::Url::parse(&signin.url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let mut callback = url::Url::parse(&signin.redirect_uri).unwrap();
        callback
            .query_pairs_mut()
            .append_pair("code", "a-code-from-somewhere-else")
            .append_pair("state", &state);
        if let Some(i) = iss {
            callback.query_pairs_mut().append_pair("iss", i);
        }
        let deliver = tokio::spawn(async move { reqwest::get(callback.as_str()).await });
        let err = c
            .finish_browser_login(signin, std::time::Duration::from_secs(20))
            .await
            .unwrap_err();
        deliver.await.unwrap().unwrap();
        match err {
            ClientError::SignIn(msg) => assert!(msg.contains("RFC 9207"), "{iss:?}: {msg}"),
            other => panic!("{iss:?}: expected SignIn, got {other:?}"),
        }
        assert!(c.tokens().await.is_none(), "not signed in");
    }
}

async fn tokens_refresh_before_expiry_with_rotation(backend: Backend) {
    // 30 s tokens are always inside the refresh margin: every call refreshes first.
    let s = System::start_with_authz(backend, |c| c.access_token_ttl_secs = 30).await;
    let c = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    c.login_with_password("testuser", "TestPass123!", "")
        .await
        .unwrap();
    let first = c.tokens().await.unwrap();
    c.get_user_profile().await.unwrap();
    let second = c.tokens().await.unwrap();
    assert_ne!(first.refresh_token, second.refresh_token, "rotated");
    c.list_secure_notes().await.unwrap();
    let third = c.tokens().await.unwrap();
    assert_ne!(second.refresh_token, third.refresh_token);
    // The first refresh token is spent.
    let r = reqwest::Client::new()
        .post(format!("{}/token", s.authz_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "mcp-cli"),
            ("refresh_token", first.refresh_token.unwrap().expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn api_key_steps_up_on_insufficient_scope(backend: Backend) {
    let s = System::start(backend).await;
    let owner = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    owner
        .login_with_password("testuser", "TestPass123!", "")
        .await
        .unwrap();
    let key = owner
        .create_api_key("stepper", "notes:read notes:write", Some(1))
        .await
        .unwrap();
    let bot = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    bot.login_with_api_key(&key.client_id, &key.client_secret, "notes:read")
        .await
        .unwrap();
    let tokens = bot.tokens().await.unwrap();
    assert_eq!(tokens.scope, "notes:read");
    // Secrets are typed: Debug never shows them, serialization keeps the plain value.
    let shown = format!("{key:?} {tokens:?}");
    assert!(
        shown.contains(&key.client_id) && shown.contains("[redacted]"),
        "{shown}"
    );
    for secret in [key.client_secret.expose(), tokens.access_token.expose()] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let stored = serde_json::to_value(&tokens).unwrap();
    assert_eq!(stored["access_token"], tokens.access_token.expose());
    assert_eq!(stored["method"]["key_secret"], key.client_secret.expose());
    // 403 insufficient_scope → the key asks for notes:write too → the call succeeds.
    bot.create_secure_note("stepped up", "ok").await.unwrap();
    assert!(bot.tokens().await.unwrap().scope.contains("notes:write"));
    // Password sign-ins cannot step up by themselves: a typed error names the scope.
    let ro = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    ro.login_with_password("readonly", "ReadOnly123!", "")
        .await
        .unwrap();
    match ro.create_secure_note("x", "y").await {
        Err(ClientError::Forbidden { scope, .. }) => assert!(scope.contains("notes:write")),
        other => panic!("{other:?}"),
    }
    match ro.get_secure_note("note_missing").await {
        Err(ClientError::Tool(msg)) => assert!(msg.contains("no note")),
        other => panic!("{other:?}"),
    }
}

async fn remembered_tokens_are_private_and_logout_revokes(backend: Backend) {
    let s = System::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.json");
    let c = AuthenticatedMcpClient::connect(&s.mcp_url)
        .await
        .unwrap()
        .remember_in(path.clone())
        .await;
    c.login_with_password("testuser", "TestPass123!", "")
        .await
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A new process picks the session up from the file.
    let again = AuthenticatedMcpClient::connect(&s.mcp_url)
        .await
        .unwrap()
        .remember_in(path.clone())
        .await;
    assert_eq!(
        again.get_user_profile().await.unwrap().username.as_deref(),
        Some("testuser")
    );
    let rt = again.tokens().await.unwrap().refresh_token.unwrap();
    again.logout().await.unwrap();
    assert!(!path.exists(), "forgotten");
    assert!(matches!(
        again.get_user_profile().await,
        Err(ClientError::AuthRequired(_))
    ));
    let r = reqwest::Client::new()
        .post(format!("{}/token", s.authz_url))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "mcp-cli"),
            ("refresh_token", rt.expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "revoked");
}
