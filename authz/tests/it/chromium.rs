//! End to end in a real browser: headless Chromium (Debian `chromium` + `chromedriver`, which
//! `.ci/run` installs) opens the authorization URL, a person's keystrokes fill the login form,
//! the consent page is approved with a click, and the client's loopback redirect listener
//! receives the code, which then buys a token.

use std::time::Duration;

use testkit::both_backends;
use testkit::webdriver::Browser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Backend, MCP, TestApp, expect_token, pkce, query};
use authz::store::AuthMethod;

both_backends!(chromium_signs_in_consents_and_the_client_gets_a_code);

/// A one-shot loopback "client": answers the first request and hands over its path.
async fn redirect_listener() -> (String, tokio::sync::oneshot::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let body = "<!doctype html><title>Signed in</title><p>You can close this window.";
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            if path.starts_with("/cb")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(path);
            }
        }
    });
    (format!("http://127.0.0.1:{port}/cb"), rx)
}

async fn chromium_signs_in_consents_and_the_client_gets_a_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("native-app", AuthMethod::None, "openid notes:read")
        .await;
    let (redirect_uri, received) = redirect_listener().await;
    let (verifier, challenge) = pkce();
    // The registered redirect is http://127.0.0.1:7777/cb; a loopback client may use any port.
    let url = app
        .authorize_url(
            "native-app",
            &challenge,
            &[("scope", "openid notes:read"), ("nonce", "n-1")],
        )
        .replace(
            &form_urlencoded::byte_serialize(crate::support::CB.as_bytes()).collect::<String>(),
            &form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect::<String>(),
        );

    let browser = Browser::start().await.unwrap();
    browser.goto(&url).await.unwrap();
    assert!(browser.title().await.unwrap().contains("Sign in"));
    let user = browser.find("#username").await.unwrap();
    browser.send_keys(&user, "alice").await.unwrap();
    let pw = browser.find("#password").await.unwrap();
    browser
        .send_keys(&pw, "correct horse battery staple")
        .await
        .unwrap();
    let submit = browser.find("button[type=submit]").await.unwrap();
    browser.click(&submit).await.unwrap();
    // The consent page (same /authorize URL as the login page, so wait for its button).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let allow = loop {
        match browser.find("button[value=approve]").await {
            Ok(el) => break el,
            Err(e) if std::time::Instant::now() > deadline => panic!("no consent page: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let source = browser.page_source().await.unwrap();
    assert!(
        source.contains("native-app app"),
        "consent names the client"
    );
    browser.click(&allow).await.unwrap();
    let path = tokio::time::timeout(Duration::from_secs(15), received)
        .await
        .expect("the client's redirect listener received the browser")
        .unwrap();
    let final_url = browser
        .wait_for_url(|u| u.starts_with(&redirect_uri), Duration::from_secs(10))
        .await
        .unwrap();
    browser.quit().await;
    let q = query(&format!("http://127.0.0.1{path}"));
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.base);
    assert!(final_url.contains(&q["code"]));
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "native-app"),
        ("code", q["code"].as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens = expect_token(app.token(&form, None).await).await;
    assert!(tokens["id_token"].is_string());
    let claims = app
        .verify(tokens["access_token"].as_str().unwrap(), MCP)
        .await;
    assert_eq!(claims.preferred_username.as_deref(), Some("alice"));
}
