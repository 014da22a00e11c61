//! Probes for load balancers and orchestrators: `GET /healthz` (the process is up and
//! serving) and `GET /readyz` (it can do its work: the database answers and signing keys are
//! loaded; Redis answers, when rate limits are kept there). A balancer routes by `/readyz`; a supervisor restarts by `/healthz`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use shared::probe::Check;

use authz_core::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, Json(serde_json::json!({ "status": "ok" })))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let keys = Check::loaded("keys", !state.keys.current().kids.is_empty());
    let (status, body) = state.counters.readyz(state.store.ping().await, keys).await;
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        Json(body),
    )
}
