//! Reporting denied tool calls to the authorization server, whose audit log (and the admin
//! dashboard's "denied MCP tool calls" chart) counts them as `mcp.tool_denied`: every
//! `MCP_DENIAL_REPORT_SECS` (default 10 s; 0 = never) the audit rows of tool calls denied
//! since the last report go to `POST <MCP_AUTHZ_URL or issuer>/resource-events`, authenticated
//! as this server's client like the Shared Signals poll (`crate::authz_client`).
//!
//! - **Once, in order, persisted.** The id of the last row reported is kept in the database
//!   (`denial_report_cursor`) and moved only after the authorization server answered 2xx (it
//!   commits before answering). A failure is logged and the same rows go again next time.
//!   Each event carries its row id, so when an answer was lost after the commit the rows
//!   that go again are recognised there and not counted twice.
//! - **One replica reports.** Replicas sharing the database take a lease on the cursor
//!   (renewed every round, `lease_secs`), so a denial is not counted once per replica; one
//!   whose report failed lets the lease go, so a healthy replica can take over.
//! - **Never in the way.** The task only reads the audit table; tool calls never wait for it.
//! - Rows denied before the migration that added the cursor are not reported.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::state::McpState;
use crate::store::AuditRow;

/// The most events one report carries (the authorization server's limit).
pub(crate) const MAX_BATCH: usize = 500;
/// The longest string sent (characters; the authorization server clips to this too).
const MAX_TEXT: usize = 256;
/// Largest request body sent (the authorization server accepts 1 MiB).
const MAX_BODY: usize = 1_000_000;

/// How long a replica's reporting lease lasts: several rounds, at least half a minute.
fn lease_secs(every: Duration) -> i64 {
    i64::try_from(every.as_secs().saturating_mul(3))
        .unwrap_or(i64::MAX)
        .max(30)
}

/// Report denials every `denial_report_secs` until the task is aborted.
pub async fn report_forever(state: Arc<McpState>) {
    let every = Duration::from_secs(state.config.denial_report_secs.max(1));
    let holder = shared::crypto::random_id("mcp_");
    loop {
        tokio::time::sleep(every).await;
        // Catch up in full batches without waiting, then rest until the next round.
        loop {
            match report_once(&state, &holder, lease_secs(every)).await {
                Ok(Round::More) => continue,
                Ok(Round::Done) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "reporting denied tool calls failed; retrying");
                    // Another replica may do better (this one may be misconfigured).
                    if let Err(e) = state.store.release_denial_lease(&holder).await {
                        tracing::warn!(error = %e, "releasing the denial reporting lease failed");
                    }
                    break;
                }
            }
        }
    }
}

enum Round {
    /// A full batch went: more may be waiting.
    More,
    /// Nothing (more) to report now, or another replica reports.
    Done,
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// One reported event; `id` (the row's) and `ts` make the key the authorization server
/// records it under once.
fn event(id: i64, row: &AuditRow) -> Value {
    json!({
        "id": id,
        "ts": row.ts,
        "action": clip(&row.action),
        "subject": row.subject.as_deref().map(clip),
        "client_id": row.client_id.as_deref().map(clip),
        "reason": row.reason.as_deref().map(clip),
    })
}

/// The request body for the first `n` events, fewer if it would be too large (halving; one
/// event always fits): the body and how many events it holds.
fn body(events: &[Value]) -> (String, usize) {
    let mut n = events.len();
    loop {
        let body = json!({ "events": &events[..n] }).to_string();
        if body.len() <= MAX_BODY || n <= 1 {
            return (body, n);
        }
        n /= 2;
    }
}

async fn report_once(state: &McpState, holder: &str, lease: i64) -> Result<Round, String> {
    let now = state.now();
    let store = &state.store;
    if !store
        .claim_denial_lease(holder, now, now.saturating_add(lease))
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Round::Done);
    }
    let cursor = store.denial_cursor().await.map_err(|e| e.to_string())?;
    // Read before the denied rows: every denied row up to it is in the batch unless the batch
    // is full, so the cursor may skip to it past the allowed calls in between.
    let newest = store.last_audit_id().await.map_err(|e| e.to_string())?;
    let rows = store
        .denied_after(cursor, MAX_BATCH as i64)
        .await
        .map_err(|e| e.to_string())?;
    let Some((last, _)) = rows.last() else {
        if newest > cursor {
            store
                .set_denial_cursor(newest)
                .await
                .map_err(|e| e.to_string())?;
        }
        return Ok(Round::Done);
    };
    let events: Vec<Value> = rows.iter().map(|(id, r)| event(*id, r)).collect();
    let (body, sent) = body(&events);
    let answer = state
        .authz
        .report_denials(body)
        .await
        .map_err(|e| e.to_string())?;
    let (next, round) = if sent < rows.len() {
        (rows[sent - 1].0, Round::More)
    } else if rows.len() == MAX_BATCH {
        (*last, Round::More)
    } else {
        ((*last).max(newest), Round::Done)
    };
    store
        .set_denial_cursor(next)
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(
        sent,
        accepted = %answer["accepted"],
        duplicates = %answer["duplicates"],
        "reported denied tool calls"
    );
    Ok(round)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_stay_under_the_limit_and_hold_at_least_one_event() {
        let big = "x".repeat(MAX_TEXT);
        let row = AuditRow {
            ts: 1,
            subject: Some(big.clone()),
            client_id: Some(big.clone()),
            action: format!("tool:{big}"),
            outcome: "denied",
            reason: Some(big),
        };
        let events: Vec<Value> = (0..MAX_BATCH).map(|i| event(i as i64, &row)).collect();
        let (b, n) = body(&events);
        assert_eq!(n, MAX_BATCH, "500 clipped ASCII events fit");
        assert!(b.len() <= MAX_BODY);
        // Strings of escapes (6 bytes a character) do not: the batch is cut, never empty.
        let nasty = "\u{1}".repeat(1000);
        let row = AuditRow {
            action: format!("tool:{nasty}"),
            subject: Some(nasty.clone()),
            client_id: Some(nasty.clone()),
            reason: Some(nasty),
            ..row
        };
        let events: Vec<Value> = (0..MAX_BATCH).map(|i| event(i as i64, &row)).collect();
        let (b, n) = body(&events);
        assert!((1..MAX_BATCH).contains(&n), "{n}");
        assert!(b.len() <= MAX_BODY);
        assert_eq!(
            event(1, &row)["action"].as_str().unwrap().chars().count(),
            MAX_TEXT
        );
    }

    #[test]
    fn the_lease_outlasts_several_rounds() {
        assert_eq!(lease_secs(Duration::from_secs(1)), 30);
        assert_eq!(lease_secs(Duration::from_secs(60)), 180);
    }
}
