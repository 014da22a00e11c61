//! The admin dashboard's charts count what the audit log holds: known events are written at
//! known times (the injected clock), and the server-rendered SVG's bars carry exactly those
//! counts, in the right hour, with heights in proportion; when the clock moves on, the bars
//! move with it.

use std::collections::BTreeMap;

use authz::clock::Clock;
use authz::store::{AuditEvent, Outcome};
use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(dashboard_bars_match_the_audit_counts);

const PW: &str = "correct horse battery staple";
const HOUR: i64 = 3600;

/// Every bar of the page: (series, label) → (value, height).
fn bars(html: &str) -> BTreeMap<(String, String), (i64, f64)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!(" {name}=\"");
        let start = tag.find(&key)? + key.len();
        let end = tag[start..].find('"')? + start;
        Some(testkit::agent::unescape(&tag[start..end]))
    };
    let mut out = BTreeMap::new();
    for tag in html.split("<rect").skip(1) {
        let tag = tag.split('>').next().unwrap_or("");
        let (Some(series), Some(label), Some(value)) = (
            attr(tag, "data-series"),
            attr(tag, "data-label"),
            attr(tag, "data-value"),
        ) else {
            continue;
        };
        let height = attr(tag, "height")
            .and_then(|h| h.parse().ok())
            .unwrap_or(-1.0);
        out.insert((series, label), (value.parse().unwrap(), height));
    }
    out
}

fn label(ts: i64) -> String {
    let s = ts.rem_euclid(86_400);
    format!("{:02}:00", s / 3600)
}

async fn dashboard(app: &TestApp, agent: &FormAgent) -> BTreeMap<(String, String), (i64, f64)> {
    let page = agent.get(&app.url("/admin")).await;
    assert_eq!(page.status, 200, "{:?} {}", page.location, page.body);
    assert!(
        page.body.contains("Show as a table"),
        "each chart has a table"
    );
    bars(&page.body)
}

async fn sign_in(app: &TestApp) -> FormAgent {
    let agent = FormAgent::new();
    let login = agent.get(&app.url("/account/login?next=%2Fadmin")).await;
    let mut fields = hidden_inputs(&login.body);
    fields.push(("username".into(), "root".into()));
    fields.push(("password".into(), PW.into()));
    assert_eq!(
        agent.post_form(&app.url("/login"), &fields).await.status,
        303
    );
    agent
}

async fn dashboard_bars_match_the_audit_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("root", PW, "admin").await;
    // Sign in first (one login.succeeded in the current hour).
    let agent = sign_in(&app).await;

    let now = app.clock.now();
    let this_hour = now - now.rem_euclid(HOUR);
    let at = |ts: i64, kind: &str, outcome: Outcome| AuditEvent::new(ts, kind, outcome);
    let mut events = Vec::new();
    let an_hour_ago = this_hour - HOUR + 10;
    for _ in 0..3 {
        events.push(at(an_hour_ago, "login.succeeded", Outcome::Success));
    }
    for _ in 0..2 {
        events.push(at(an_hour_ago + 5, "login.failed", Outcome::Failure));
    }
    let early = this_hour - 18 * HOUR;
    events.push(at(early, "login.failed", Outcome::Failure));
    // Outside the 24 hours: not counted.
    events.push(at(
        this_hour - 24 * HOUR - 1,
        "login.failed",
        Outcome::Failure,
    ));
    for _ in 0..2 {
        events.push(at(this_hour, "refresh.reuse_detected", Outcome::Failure));
    }
    events.push(at(this_hour + 1, "mcp.tool_denied", Outcome::Failure));
    // In the window's first hour now; out of it two hours later.
    events.push(at(
        this_hour - 23 * HOUR + 5,
        "login.locked",
        Outcome::Failure,
    ));
    for _ in 0..2 {
        events.push(
            at(an_hour_ago, "token.issued", Outcome::Success)
                .details(serde_json::json!({ "grant_type": "client_credentials" })),
        );
    }
    app.state.store.append_all(&events).await.unwrap();

    let b = dashboard(&app, &agent).await;
    let get = |series: &str, ts: i64| b[&(series.to_owned(), label(ts))];
    assert_eq!(get("Succeeded", an_hour_ago).0, 3);
    assert_eq!(get("Failed", an_hour_ago).0, 2);
    assert_eq!(get("Failed", early).0, 1);
    assert_eq!(get("Succeeded", this_hour).0, 1, "root's own sign-in");
    assert_eq!(get("Refresh token reuse", this_hour).0, 2);
    assert_eq!(get("Denied MCP tool calls", this_hour).0, 1);
    assert_eq!(get("Lockouts", this_hour).0, 0);
    // Every hour has its bar; the failures add up to what the window holds (not the old one).
    let failed: Vec<i64> = b
        .iter()
        .filter(|((s, _), _)| s == "Failed")
        .map(|(_, (v, _))| *v)
        .collect();
    assert_eq!(failed.len(), 24);
    assert_eq!(failed.iter().sum::<i64>(), 3);
    // Heights in proportion to the counts (one scale per chart).
    let (h3, h2) = (
        get("Succeeded", an_hour_ago).1,
        get("Failed", an_hour_ago).1,
    );
    assert!((h3 / h2 - 1.5).abs() < 0.01, "{h3} vs {h2}");
    assert_eq!(get("Failed", this_hour - 2 * HOUR).1, 0.0);
    let tokens = &b[&("Tokens issued".to_owned(), "client_credentials".to_owned())];
    assert_eq!(tokens.0, 2);

    // Two hours later the same events sit two bars further left; the early failure has
    // almost left the window, and the current hour is empty.
    app.clock.advance(2 * HOUR);
    // (The session went idle meanwhile: sign in again.)
    let later = dashboard(&app, &sign_in(&app).await).await;
    let l = |series: &str, ts: i64| later[&(series.to_owned(), label(ts))].0;
    assert_eq!(l("Succeeded", an_hour_ago), 3);
    assert_eq!(l("Failed", early), 1);
    assert_eq!(l("Denied MCP tool calls", this_hour + 2 * HOUR), 0);
    let sum = |bars: &BTreeMap<(String, String), (i64, f64)>, series: &str| -> i64 {
        bars.iter()
            .filter(|((s, _), _)| s == series)
            .map(|(_, (v, _))| *v)
            .sum()
    };
    assert_eq!(sum(&b, "Lockouts"), 1);
    assert_eq!(sum(&later, "Lockouts"), 0, "the window moved past it");
}
