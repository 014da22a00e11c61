//! `POST /resource-events`: a resource server reports what it refused on its own (today: MCP
//! tool calls denied for a missing scope), so this server's audit log, and the dashboards that
//! count it, see them. Each event becomes an audit event `mcp.tool_denied` (outcome failure,
//! actor `resource:<client id>`).
//!
//! - **Who may report.** The resource server authenticates as its confidential client, exactly
//!   like a Shared Signals receiver at `/ssf/poll` (`authentication::authenticate_registered`:
//!   `client_secret_basic` or any method the client registered, against stored clients only,
//!   never a metadata document fetched for the occasion), and only a client that serves a
//!   resource (`serves_resource`) is accepted; others get 403 `unauthorized_client`. Requests
//!   are rate limited per client IP first (`AUTHZ_RATE_RESOURCE_EVENTS`).
//! - **Contract.** `application/json` `{"events": [{"id"?, "ts", "action", "subject"?,
//!   "client_id"?, "reason"?}]}`, at most `MAX_EVENTS` per request, answered
//!   `{"accepted": n, "duplicates": d}` once every event is committed (one transaction): the
//!   reporter may then forget them.
//! - **Once.** `id` (the event's id at the reporter) with `ts` is the event's key: a report
//!   sent again because its answer was lost records nothing twice (`duplicates` counts what
//!   was skipped). Keys are kept eight days (housekeeping); events without `id` are recorded
//!   each time they are sent.
//! - **Not trusted blindly.** Strings are clipped to `MAX_TEXT` characters and `ts` is clamped
//!   into the last `MAX_AGE_SECS` (by this server's clock), so a reporter can neither bloat the
//!   log nor write into the past or the future.

use authz_core::events::kinds;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::extract::{ClientCredentials, content_type};
use crate::layers::{NoStore, never_cached};
use crate::limits::{Limit, limited, too_many_json};
use authz_core::clients::authentication;
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, Outcome, Reported};

/// The audit event kind of a denied MCP tool call.
pub const KIND: &str = kinds::MCP_TOOL_DENIED;
/// The most events one request carries.
pub(crate) const MAX_EVENTS: usize = 500;
/// The longest string kept (characters); longer ones are clipped.
pub(crate) const MAX_TEXT: usize = 256;
pub use authz_core::events::resource_reports::{KEY_RETENTION_SECS, MAX_AGE_SECS};
/// Largest body accepted (read only after authentication): `MAX_EVENTS` events of clipped
/// strings, with room to spare.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(state: &AppState) -> Router<AppState> {
    let limit = Limit::new(
        state,
        "resource-events",
        state.config.rate_limits.resource_events,
        too_many_json,
    );
    let report = never_cached(post(report), NoStore::CacheControl);
    Router::new().route("/resource-events", limited(report, &limit))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    events: Vec<ReportedEvent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportedEvent {
    #[serde(default)]
    id: Option<i64>,
    ts: i64,
    action: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// An optional string: clipped, empty counts as absent.
fn clip_opt(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(clip)
}

async fn report(
    State(state): State<AppState>,
    ClientCredentials(credentials): ClientCredentials,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    // The Shared Signals receiver's authentication (`/ssf/poll`): credentials in the headers,
    // checked as at the token endpoint; a confidential client only.
    let presented = authentication::presented(&credentials)?;
    let client =
        authentication::authenticate_registered(state.client_services(), &presented, state.now())
            .await?;
    if client.is_public() {
        return Err(Error::invalid_client(
            "a resource server must authenticate as a confidential client",
        )
        .into());
    }
    let Some(resource) = client.serves_resource.clone() else {
        let mut r = crate::error::WebError(Error::unauthorized_client(
            "this client serves no resource: only resource servers report resource events",
        ))
        .into_response();
        *r.status_mut() = StatusCode::FORBIDDEN;
        return Ok(r);
    };
    authz_core::protocol::form::require_json(content_type(&headers), "POST /resource-events")?;
    // Read only once the reporter is known to be a resource server.
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            Error::invalid_request(format!(
                "unreadable body, or larger than {MAX_BODY_BYTES} bytes"
            ))
        })?;
    let req: Report = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid_request(format!("malformed resource events: {e}")))?;
    if req.events.len() > MAX_EVENTS {
        return Err(Error::invalid_request(format!(
            "too many events: at most {MAX_EVENTS} per request, {} sent",
            req.events.len()
        ))
        .into());
    }
    if req.events.iter().any(|e| e.action.is_empty()) {
        return Err(Error::invalid_request("every event needs a non-empty action").into());
    }
    let now = state.now();
    let actor = format!("resource:{}", client.id);
    let events: Vec<Reported> = req
        .events
        .iter()
        .map(|e| {
            let mut a =
                AuditEvent::new(e.ts.clamp(now - MAX_AGE_SECS, now), KIND, Outcome::Failure)
                    .actor(actor.clone())
                    .details(serde_json::json!({
                        "action": clip(&e.action),
                        "reason": clip_opt(e.reason.as_deref()),
                        "resource": resource,
                    }));
            a.subject = clip_opt(e.subject.as_deref());
            a.client_id = clip_opt(e.client_id.as_deref());
            // The key holds the time as reported, before clamping.
            Reported {
                key: e.id.map(|id| (id, e.ts)),
                event: a,
            }
        })
        .collect();
    let recorded = if events.is_empty() {
        0
    } else {
        state
            .store
            .append_reported(&client.id, &events, now)
            .await?
    };
    let duplicates = events.len() - recorded;
    tracing::debug!(client = %client.id, recorded, duplicates, "resource events recorded");
    Ok(
        Json(serde_json::json!({ "accepted": events.len(), "duplicates": duplicates }))
            .into_response(),
    )
}
