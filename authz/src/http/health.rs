//! Probes for load balancers and orchestrators: `GET /healthz` (the process is up and
//! serving) and `GET /readyz` (it can do its work: the database answers and signing keys are
//! loaded; Redis answers, when rate limits are kept there). A balancer routes by `/readyz`; a supervisor restarts by `/healthz`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use shared::probe::{Check, readiness};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, Json(serde_json::json!({ "status": "ok" })))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = match state.store.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "readiness: database unavailable");
            false
        }
    };
    let keys = !state.keys.current().kids.is_empty();
    let mut checks = vec![
        Check::reachable("database", database),
        Check::loaded("keys", keys),
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
