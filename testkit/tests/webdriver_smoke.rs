//! `testkit::webdriver` against a real headless Chromium: a hand-written HTTP server serves a GET
//! form; the browser types into it, submits, and lands on the form's action with the value in
//! the query.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use testkit::webdriver::Browser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FORM: &str = r#"<!doctype html>
<html><head><title>Sign in</title></head>
<body>
<form action="/done" method="get">
  <input id="user" name="user" type="text">
  <button id="go" type="submit">Go</button>
</form>
</body></html>"#;

const DONE: &str = r#"<!doctype html>
<html><head><title>Done</title></head><body><p id="msg">signed in</p></body></html>"#;

/// Serve `/` (the form) and `/done` (any query) on a loopback port until the test ends.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (status, body) = match path.split('?').next() {
                    Some("/") => ("200 OK", FORM),
                    Some("/done") => ("200 OK", DONE),
                    _ => ("404 Not Found", "not found"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_submit_in_headless_chromium() {
    let base = serve().await;
    let browser = Browser::start().await.expect("start headless Chromium");

    browser.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Sign in");
    assert_eq!(browser.current_url().await.unwrap(), format!("{base}/"));

    let input = browser.find("#user").await.unwrap();
    browser.send_keys(&input, "alice").await.unwrap();
    let err = browser.find("#no-such-thing").await.unwrap_err();
    assert!(err.contains("no such element"), "{err}");
    browser
        .click(&browser.find("#go").await.unwrap())
        .await
        .unwrap();

    let url = browser
        .wait_for_url(|u| u.contains("/done?"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(url, format!("{base}/done?user=alice"));
    assert_eq!(browser.title().await.unwrap(), "Done");
    assert!(browser.page_source().await.unwrap().contains("signed in"));

    browser.quit().await;
}
