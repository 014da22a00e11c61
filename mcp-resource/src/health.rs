//! Probes for load balancers and orchestrators: `GET /healthz` (the process is up) and
//! `GET /readyz` (it can verify tokens and serve: its database answers and it holds the
//! authorization server's keys, fetched now if it has none yet). Neither needs a token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use shared::probe::Check;

use crate::state::McpState;

pub(crate) fn router() -> Router<Arc<McpState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, Json(serde_json::json!({ "status": "ok" })))
}

async fn readyz(State(state): State<Arc<McpState>>) -> impl IntoResponse {
    if !state.verifier.has_keys() {
        // The verifier's own floor bounds how often probes can make it fetch.
        if let Err(e) = state.verifier.refresh(false).await {
            tracing::warn!(error = %e, "readiness: the issuer's keys are not available");
        }
    }
    let keys = Check::loaded("issuer_keys", state.verifier.has_keys());
    let (status, body) = state.counters.readyz(state.store.ping().await, keys).await;
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        Json(body),
    )
}
