//! Security alerts: a lockout reaches the webhook as HMAC-signed JSON; while the webhook hangs,
//! sign-ins are answered as before (the alert waits in the persisted queue), and once the
//! webhook is back the alert arrives.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::Value;
use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(a_lockout_alert_waits_out_a_dead_webhook_without_slowing_sign_in);

const SECRET: &str = "webhook secret for tests 0123";

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A webhook that accepts connections and never answers, on `listener`'s port; how many
/// connections it took.
fn hanging(listener: std::net::TcpListener) -> (Arc<Mutex<usize>>, Arc<Mutex<bool>>) {
    let (taken, stop) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(false)));
    let (t, s) = (taken.clone(), stop.clone());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while !*s.lock().unwrap() {
            if let Ok((sock, _)) = listener.accept() {
                held.push(sock);
                *t.lock().unwrap() += 1;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (taken, stop)
}

async fn sign_in(app: &TestApp, user: &str, pw: &str) -> (u16, Duration) {
    let started = Instant::now();
    let r = app
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "cli"),
                ("username", user),
                ("password", pw),
            ],
            None,
        )
        .await;
    (r.status().as_u16(), started.elapsed())
}

async fn a_lockout_alert_waits_out_a_dead_webhook_without_slowing_sign_in(backend: Backend) {
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hook.local_addr().unwrap().port();
    let (taken, stop) = hanging(hook);
    let app = TestApp::spawn_with(backend, |c| {
        c.browser.login_max_failures = 3;
        c.alerts.webhooks.push(authz::config::Webhook {
            url: format!("http://127.0.0.1:{port}/hook"),
            secret: shared::secret::SigningSecret::new(SECRET),
            kinds: vec!["login.locked".into()],
        });
    })
    .await;
    let pw = "correct horse battery staple";
    app.user("alice", pw, "user").await;
    app.user("carol", pw, "user").await;
    app.client(
        "cli",
        authz::store::AuthMethod::None,
        &[authz::store::GrantType::Password],
        "notes:read",
        &[crate::support::MCP],
    )
    .await;
    // Sign-ins with the webhook idle.
    let mut before = Vec::new();
    for _ in 0..5 {
        let (status, took) = sign_in(&app, "carol", pw).await;
        assert_eq!(status, 200);
        before.push(took);
    }
    // alice is locked: the alert is queued, and its delivery hangs on the dead webhook.
    for _ in 0..3 {
        assert_eq!(sign_in(&app, "alice", "wrong password").await.0, 400);
    }
    let start = Instant::now();
    while *taken.lock().unwrap() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no delivery attempt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // While the delivery hangs, sign-ins are answered as before (never after it).
    let mut during = Vec::new();
    for _ in 0..5 {
        let (status, took) = sign_in(&app, "carol", pw).await;
        assert_eq!(status, 200);
        assert!(
            took < authz::events::alerts::DELIVERY_TIMEOUT,
            "a sign-in waited for the webhook"
        );
        during.push(took);
    }
    before.sort();
    during.sort();
    println!(
        "sign-in p50 with the webhook idle {:?}, while its delivery hangs {:?}",
        before[2], during[2]
    );

    // The webhook comes back on the same port; the alert is retried after its backoff.
    *stop.lock().unwrap() = true;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let received: Received = Arc::default();
    let r = received.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let r = r.clone();
            async move {
                r.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let start = Instant::now();
    while received.lock().unwrap().is_empty() {
        // The retry is due a few (injected-clock) seconds after the hung attempt gave up.
        app.clock.advance(5);
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the alert never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (headers, body) = received.lock().unwrap()[0].clone();
    let ts: i64 = headers["x-authz-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = headers["x-authz-signature"].to_str().unwrap();
    assert_eq!(
        sig,
        authz::events::alerts::signature(SECRET, ts, &body),
        "valid HMAC"
    );
    assert_ne!(
        sig,
        authz::events::alerts::signature("another secret 0123456", ts, &body)
    );
    let alert: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alert["kind"], "login.locked");
    assert_eq!(alert["issuer"], app.base.as_str());
    assert!(headers.contains_key("x-authz-alert-id"));
    // Delivered once: the queue is empty.
    assert_eq!(
        app.state
            .store
            .due_alerts(i64::MAX, 10)
            .await
            .unwrap()
            .len(),
        0
    );
}
