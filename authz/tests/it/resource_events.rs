//! `POST /resource-events`: a resource server reports the tool calls it denied; each becomes an
//! audit event `mcp.tool_denied`. Authenticated like the Shared Signals poll, and only for a
//! client that serves a resource; strict about the body, nothing stored when it refuses.

use authz::clock::Clock;
use authz::store::{AuditEvent, Outcome};
use serde_json::{Value, json};
use testkit::both_backends;

use crate::support::{Backend, MCP, TestApp, expect_error};

both_backends!(
    reported_denials_become_tool_denied_audit_events,
    only_a_resource_server_may_report,
    a_wrong_or_missing_secret_is_401,
    oversized_or_malformed_reports_are_400,
    a_report_sent_again_is_recorded_once,
);

const KIND: &str = "mcp.tool_denied";

async fn post(app: &TestApp, auth: Option<(&str, &str)>, body: &Value) -> reqwest::Response {
    let mut req = app.http.post(app.url("/resource-events")).json(body);
    if let Some((id, secret)) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn denied(app: &TestApp) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == KIND)
        .collect();
    events.reverse(); // oldest first
    events
}

fn one(action: &str) -> Value {
    json!({"events": [{"ts": 1, "action": action}]})
}

async fn reported_denials_become_tool_denied_audit_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.exchange_client("profile:read").await;
    let now = app.clock.now();
    let long = "y".repeat(1000);
    let body = json!({"events": [
        {"ts": now - 60, "action": "tool:create_secure_note", "subject": "usr_1",
         "client_id": "mcp-cli", "reason": "missing scope notes:write"},
        {"ts": now - 30 * 86_400, "action": "tool:list_users"},
        {"ts": now + 3600, "action": "tool:delete_user", "subject": "", "reason": null},
        {"ts": now, "action": format!("tool:{long}"), "subject": long, "client_id": long,
         "reason": long},
    ]});
    let r = post(&app, Some(("rs", &secret)), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer, json!({"accepted": 4, "duplicates": 0}));

    let events = denied(&app).await;
    assert_eq!(events.len(), 4, "{events:?}");
    for e in &events {
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.actor.as_deref(), Some("resource:rs"));
        assert_eq!(e.details["resource"], MCP);
        assert_eq!(e.ip, None, "the reporter's address is not the caller's");
    }
    let first = &events[0];
    assert_eq!(first.ts, now - 60);
    assert_eq!(first.subject.as_deref(), Some("usr_1"));
    assert_eq!(first.client_id.as_deref(), Some("mcp-cli"));
    assert_eq!(first.details["action"], "tool:create_secure_note");
    assert_eq!(first.details["reason"], "missing scope notes:write");
    // Into the last seven days, by the server's clock.
    assert_eq!(events[1].ts, now - 7 * 86_400, "a month old: clamped");
    assert_eq!(events[1].subject, None);
    assert_eq!(events[1].details["reason"], Value::Null);
    assert_eq!(events[2].ts, now, "the future: now");
    assert_eq!(events[2].subject, None, "empty is absent");
    // Strings clipped to 256 characters.
    let clipped = &events[3];
    assert_eq!(clipped.subject.as_deref().unwrap().chars().count(), 256);
    assert_eq!(clipped.client_id.as_deref().unwrap().chars().count(), 256);
    for field in ["action", "reason"] {
        assert_eq!(
            clipped.details[field].as_str().unwrap().chars().count(),
            256,
            "{field}"
        );
    }
    assert!(
        clipped.details["action"]
            .as_str()
            .unwrap()
            .starts_with("tool:yyy")
    );

    // An empty report is fine and stores nothing.
    let r = post(&app, Some(("rs", &secret)), &json!({"events": []})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted": 0, "duplicates": 0})
    );
    assert_eq!(denied(&app).await.len(), 4);
}

async fn only_a_resource_server_may_report(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A confidential client with the right secret, but it serves no resource.
    let bot = app.bot("profile:read").await;
    let r = post(&app, Some(("bot", &bot)), &one("tool:whoami")).await;
    let why = expect_error(r, 403, "unauthorized_client").await;
    assert!(why.contains("serves no resource"), "{why}");
    assert!(denied(&app).await.is_empty(), "nothing stored");

    // Positive control: the same report from the resource server is recorded.
    let rs = app.exchange_client("profile:read").await;
    let r = post(&app, Some(("rs", &rs)), &one("tool:whoami")).await;
    assert_eq!(r.status(), 200);
    let events = denied(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.as_deref(), Some("resource:rs"));
}

async fn a_wrong_or_missing_secret_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs = app.exchange_client("profile:read").await;
    let r = post(&app, Some(("rs", "not-the-secret")), &one("tool:whoami")).await;
    expect_error(r, 401, "invalid_client").await;
    let r = post(&app, None, &one("tool:whoami")).await;
    expect_error(r, 401, "invalid_client").await;
    let r = post(&app, Some(("nobody", "x")), &one("tool:whoami")).await;
    expect_error(r, 401, "invalid_client").await;
    assert!(denied(&app).await.is_empty(), "nothing stored");
    // Positive control.
    let r = post(&app, Some(("rs", &rs)), &one("tool:whoami")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(denied(&app).await.len(), 1);
}

async fn oversized_or_malformed_reports_are_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs = app.exchange_client("profile:read").await;
    let auth = Some(("rs", rs.as_str()));
    let events = |n: usize| {
        json!({"events": (0..n)
            .map(|i| json!({"id": i, "ts": 1, "action": format!("tool:t{i}")}))
            .collect::<Vec<_>>()})
    };
    let r = post(&app, auth, &events(501)).await;
    let why = expect_error(r, 400, "invalid_request").await;
    assert!(why.contains("at most 500"), "{why}");
    assert!(
        denied(&app).await.is_empty(),
        "a refused report stores nothing"
    );

    let raw = |body: &'static str, content_type: &'static str| {
        app.http
            .post(app.url("/resource-events"))
            .basic_auth("rs", Some(&rs))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (body, what) in [
        (
            r#"{"events": [{"ts": 1, "action": "tool:x"}"#,
            "truncated JSON",
        ),
        ("not json", "not JSON"),
        (
            r#"{"events": [{"ts": "yesterday", "action": "tool:x"}]}"#,
            "ts not a number",
        ),
        (r#"{"events": [{"ts": 1}]}"#, "no action"),
        (r#"{"events": [{"ts": 1, "action": ""}]}"#, "empty action"),
        (
            r#"{"events": [{"ts": 1, "action": "tool:x", "extra": 1}]}"#,
            "unknown field",
        ),
        (r#"{"evnts": []}"#, "no events"),
    ] {
        let r = raw(body, "application/json").await.unwrap();
        let why = expect_error(r, 400, "invalid_request").await;
        assert!(!why.is_empty(), "{what}: a description");
    }
    let r = raw(r#"{"events": []}"#, "application/x-www-form-urlencoded")
        .await
        .unwrap();
    let why = expect_error(r, 400, "invalid_request").await;
    assert!(why.contains("application/json"), "{why}");
    assert!(denied(&app).await.is_empty(), "nothing stored");

    // The limit itself is accepted.
    let r = post(&app, auth, &events(500)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"accepted": 500, "duplicates": 0})
    );
    assert_eq!(denied(&app).await.len(), 500);
}

/// A report whose answer was lost goes again (the reporter's cursor did not move): the events
/// that carry ids are recognised by (reporter, id, ts) and recorded once. Positive controls: a
/// new id in the same request, the same id at another time, the same id from another
/// reporter, and events without ids (recorded each time) all count.
async fn a_report_sent_again_is_recorded_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.exchange_client("profile:read").await;
    let now = app.clock.now();
    let batch = json!({"events": [
        {"id": 41, "ts": now - 5, "action": "tool:list_users"},
        {"id": 42, "ts": now - 4, "action": "tool:delete_user"},
    ]});
    let answer = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let first = answer(post(&app, Some(("rs", &secret)), &batch).await).await;
    assert_eq!(first, json!({"accepted": 2, "duplicates": 0}));
    assert_eq!(denied(&app).await.len(), 2);
    // The same report again: nothing new.
    let again = answer(post(&app, Some(("rs", &secret)), &batch).await).await;
    assert_eq!(again, json!({"accepted": 2, "duplicates": 2}));
    assert_eq!(denied(&app).await.len(), 2);
    // Overlapping: 42 again (and twice in one request), 43 new, 41 at another time, two
    // without an id.
    let mixed = json!({"events": [
        {"id": 42, "ts": now - 4, "action": "tool:delete_user"},
        {"id": 43, "ts": now - 3, "action": "tool:list_users"},
        {"id": 43, "ts": now - 3, "action": "tool:list_users"},
        {"id": 41, "ts": now - 1, "action": "tool:list_users"},
        {"ts": now, "action": "tool:list_users"},
        {"ts": now, "action": "tool:list_users"},
    ]});
    let r = answer(post(&app, Some(("rs", &secret)), &mixed).await).await;
    assert_eq!(r, json!({"accepted": 6, "duplicates": 2}));
    assert_eq!(denied(&app).await.len(), 6);
    // Another resource server's id 41 is its own event.
    let (_, other) = authz::identity::admin::add_client(
        app.state.client_services(),
        "test",
        Some("rs2".into()),
        authz::store::ClientSettings {
            name: "another resource server".into(),
            auth_method: authz::store::AuthMethod::ClientSecretBasic,
            grant_types: vec![authz::store::GrantType::TokenExchange],
            scopes: shared::ScopeSet::parse("profile:read").unwrap(),
            serves_resource: Some("https://other.example/mcp".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let other = other.unwrap().expose().to_owned();
    let r = answer(post(&app, Some(("rs2", &other)), &batch).await).await;
    assert_eq!(r, json!({"accepted": 2, "duplicates": 0}));
    assert_eq!(denied(&app).await.len(), 8);
    // Keys are forgotten after eight days (housekeeping); the audit events stay.
    app.clock
        .advance(authz::http::resource_events::KEY_RETENTION_SECS + 1);
    authz::housekeeping(&app.state).await.unwrap();
    assert_eq!(
        app.sql_count("SELECT COUNT(*) FROM resource_event_keys")
            .await,
        0
    );
    assert_eq!(denied(&app).await.len(), 8);
}
