//! `/api/v1/audit` (audit:read) and `/api/v1/security/summary` (security:read): admins' views
//! of the audit log.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::Caller;
use crate::error::{Error, WebError};
use authz_core::state::AppState;
use authz_core::store::AuditQuery;

const MAX_PAGE: i64 = 500;
const MAX_WINDOW: i64 = 366 * 86_400;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/security/summary", get(summary))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    from: Option<i64>,
    to: Option<i64>,
    kind: Option<String>,
    actor: Option<String>,
    outcome: Option<String>,
    cursor: Option<i64>,
    limit: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    caller.require("audit:read")?;
    let Query(p) = params.map_err(|e| Error::invalid_request(format!("bad query: {e}")))?;
    if let Some(o) = &p.outcome
        && o != "success"
        && o != "failure"
    {
        return Err(Error::invalid_request("outcome is success or failure").into());
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid_request(format!("limit must be within 1..={MAX_PAGE}")).into());
    }
    let q = AuditQuery {
        from: p.from,
        to: p.to,
        kind: p.kind,
        actor: p.actor,
        outcome: p.outcome,
        before_id: p.cursor,
        limit,
        ..AuditQuery::default()
    };
    state.audit_log.flush().await;
    let events = state.store.query_audit(&q).await?;
    // The next page starts below the last id returned, when the page was full.
    let next = (events.len() as i64 == limit)
        .then(|| events.last().and_then(|e| e.id))
        .flatten();
    Ok(Json(serde_json::json!({ "events": events, "next_cursor": next })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryParams {
    window_secs: Option<i64>,
}

async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<SummaryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    caller.require("security:read")?;
    let Query(p) = params.map_err(|e| Error::invalid_request(format!("bad query: {e}")))?;
    let window = p.window_secs.unwrap_or(86_400);
    if !(60..=MAX_WINDOW).contains(&window) {
        return Err(Error::invalid_request("window_secs must be within 60..=31622400").into());
    }
    state.audit_log.flush().await;
    let now = state.now();
    let counts = state.store.security_counts(now - window, now).await?;
    Ok(
        Json(serde_json::json!({ "window_secs": window, "now": now, "counts": counts }))
            .into_response(),
    )
}
