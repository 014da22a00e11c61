//! Probes for load balancers and orchestrators: `GET /healthz` (the process is up and
//! serving) and `GET /readyz` (it can do its work: the database answers and signing keys are
//! loaded). A balancer routes by `/readyz`; a supervisor restarts by `/healthz`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

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
    let ready = database && keys;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let up = |ok: bool| if ok { "up" } else { "down" };
    (
        status,
        Json(serde_json::json!({
            "status": if ready { "ready" } else { "unavailable" },
            "database": up(database),
            "keys": if keys { "loaded" } else { "missing" },
        })),
    )
}
