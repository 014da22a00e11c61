//! Probes for load balancers and orchestrators: `GET /healthz` (the process is up) and
//! `GET /readyz` (it can verify tokens and serve: its database answers and it holds the
//! authorization server's keys, fetched now if it has none yet). Neither needs a token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use shared::probe::{Check, readiness};

use crate::state::McpState;

pub fn router() -> Router<Arc<McpState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, Json(serde_json::json!({ "status": "ok" })))
}

async fn readyz(State(state): State<Arc<McpState>>) -> impl IntoResponse {
    let database = match state.store.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "readiness: database unavailable");
            false
        }
    };
    if !state.verifier.has_keys() {
        // The verifier's own floor bounds how often probes can make it fetch.
        if let Err(e) = state.verifier.refresh(false).await {
            tracing::warn!(error = %e, "readiness: the issuer's keys are not available");
        }
    }
    let keys = state.verifier.has_keys();
    let mut checks = vec![
        Check::reachable("database", database),
        Check::loaded("issuer_keys", keys),
    ];
    checks.extend(state.counters.readiness().await);
    let (ready, mut body) = readiness(&checks);
    state.counters.annotate(&mut body);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
