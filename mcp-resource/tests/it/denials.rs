//! Denied tool calls reach the authorization server's audit log (`mcp_resource::denials`, every
//! second here) as `mcp.tool_denied`: each once (a persisted cursor; a second replica on the
//! same database does not report it again), and only once the authorization server accepted
//! the report (a reporter whose client secret is wrong moves nothing, a good one then does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::both_backends;

use crate::support::{Backend, System, call};

both_backends!(
    a_denied_tool_call_reaches_the_authz_audit_log_once,
    denials_wait_until_the_authorization_server_accepts_them,
);

const EVERY: Duration = Duration::from_secs(1);

async fn system(backend: Backend, tweak: impl FnOnce(&mut mcp_resource::Config)) -> System {
    System::start_with(backend, |m| {
        m.denial_report_secs = EVERY.as_secs();
        tweak(m);
    })
    .await
}

/// The `mcp.tool_denied` events in authz's audit log, oldest first.
async fn reported(sys: &System) -> Vec<authz::store::AuditEvent> {
    sys.authz.audit_log.flush().await;
    let mut events: Vec<_> = sys
        .authz
        .store
        .recent(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "mcp.tool_denied")
        .collect();
    events.reverse();
    events
}

/// Wait (a few report intervals at most) until authz holds `n` reported denials.
async fn wait_for(sys: &System, n: usize) -> Vec<authz::store::AuditEvent> {
    let start = Instant::now();
    loop {
        let events = reported(sys).await;
        if events.len() >= n {
            return events;
        }
        assert!(
            start.elapsed() < 5 * EVERY,
            "{} of {n} denials reported after {:?}",
            events.len(),
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// readonly tries to create a note (it lacks notes:write): 403.
async fn denied_call(sys: &System, token: &str) {
    let r = sys
        .post(
            Some(token),
            &call("create_secure_note", json!({"title": "t", "content": "c"})),
        )
        .await;
    assert_eq!(r.status(), 403);
}

/// Another process's reporter on the same database (a replica).
async fn replica_reporter(
    sys: &System,
    tweak: impl FnOnce(&mut mcp_resource::Config),
) -> (Arc<mcp_resource::McpState>, tokio::task::JoinHandle<()>) {
    let mut config = sys.mcp.config.clone();
    tweak(&mut config);
    let state = mcp_resource::build_state_with_clock(config, sys.clock.clone())
        .await
        .unwrap();
    let task = tokio::spawn(mcp_resource::denials::report_forever(Arc::clone(&state)));
    (state, task)
}

async fn a_denied_tool_call_reaches_the_authz_audit_log_once(backend: Backend) {
    let sys = system(backend, |_| {}).await;
    let (_replica, replica_task) = replica_reporter(&sys, |_| {}).await;
    let token = sys.user_token("readonly").await;
    // Not reported: an allowed call, and a refused token (not a tool call).
    let r = sys
        .post(Some(&token), &call("list_secure_notes", json!({})))
        .await;
    assert_eq!(r.status(), 200);
    let r = sys
        .post(Some("not-a-token"), &call("list_secure_notes", json!({})))
        .await;
    assert_eq!(r.status(), 401);
    let start = Instant::now();
    denied_call(&sys, &token).await;

    let events = wait_for(&sys, 1).await;
    println!("a denial reached authz after {:?}", start.elapsed());
    sys.mcp.audit_log.flush().await;
    let local = sys.mcp.store.recent_audit(50).await.unwrap();
    let row = local
        .iter()
        .find(|a| a.action == "tool:create_secure_note" && a.outcome == "denied")
        .expect("the denial is in the MCP server's audit table");
    let e = &events[0];
    assert_eq!(e.outcome, authz::store::Outcome::Failure);
    assert_eq!(e.actor.as_deref(), Some("resource:mcp-resource"));
    assert_eq!(e.subject, row.subject);
    assert!(e.subject.is_some());
    assert_eq!(e.client_id.as_deref(), Some("mcp-cli"));
    assert_eq!(e.ts, row.ts);
    assert_eq!(
        e.details,
        json!({"action": "tool:create_secure_note", "reason": "missing scope notes:write",
               "resource": sys.mcp_url})
    );

    // Several rounds later (of both reporters) it is still there once.
    tokio::time::sleep(3 * EVERY).await;
    assert_eq!(reported(&sys).await.len(), 1, "reported once");
    // An answer lost after authz committed leaves the cursor where it was: the same rows go
    // again, and authz knows them by their ids (recorded once).
    let before = sys.mcp.store.denial_cursor().await.unwrap();
    sqlx::query("UPDATE denial_report_cursor SET last_id = 0 WHERE id = 1")
        .execute(sys.mcp.store.pool())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sys.mcp.store.denial_cursor().await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the rows were not sent again");
        tokio::time::sleep(EVERY / 4).await;
    }
    assert_eq!(sys.mcp.store.denial_cursor().await.unwrap(), before);
    assert_eq!(reported(&sys).await.len(), 1, "sent again, recorded once");

    // The next denial is reported, and the first not again.
    denied_call(&sys, &token).await;
    wait_for(&sys, 2).await;
    tokio::time::sleep(2 * EVERY).await;
    let events = reported(&sys).await;
    assert_eq!(events.len(), 2, "{events:?}");
    // The cursor is stored (a restarted server starts after what was reported), past the
    // allowed calls too.
    let cursor = sys.mcp.store.denial_cursor().await.unwrap();
    assert_eq!(cursor, sys.mcp.store.last_audit_id().await.unwrap());
    assert!(
        sys.mcp
            .store
            .denied_after(cursor, 500)
            .await
            .unwrap()
            .is_empty()
    );
    replica_task.abort();
}

async fn denials_wait_until_the_authorization_server_accepts_them(backend: Backend) {
    // This server's reports are refused (401): nothing is recorded, the cursor stays.
    let sys = system(backend, |m| {
        m.client_secret = Some(shared::secret::ClientSecret::new("not-the-secret"));
    })
    .await;
    let before = sys.mcp.store.denial_cursor().await.unwrap();
    let token = sys.user_token("readonly").await;
    denied_call(&sys, &token).await;
    tokio::time::sleep(3 * EVERY).await;
    assert!(
        reported(&sys).await.is_empty(),
        "refused reports record nothing"
    );
    assert_eq!(sys.mcp.store.denial_cursor().await.unwrap(), before);

    // A replica with the right secret takes over and reports what is waiting.
    let (_replica, task) = replica_reporter(&sys, |m| m.client_secret = None).await;
    let events = wait_for(&sys, 1).await;
    assert_eq!(events[0].details["action"], "tool:create_secure_note");
    assert!(sys.mcp.store.denial_cursor().await.unwrap() > before);
    tokio::time::sleep(2 * EVERY).await;
    assert_eq!(reported(&sys).await.len(), 1, "reported once");
    task.abort();
}
