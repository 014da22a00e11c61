//! `POST /device_authorization` (RFC 8628 §3.1): form in, JSON out (§3.2), never cached. The
//! client authenticates as at `/token` (a public client sends its `client_id`); the endpoint
//! is rate-limited per client IP and only served when the device flow is enabled.

use axum::extract::State;
use axum::{Json, Router};

use crate::error::Result;
use crate::extract::{ClientCredentials, Ctx, FormBody};
use crate::layers::NoStore;
use authz_core::clients::authentication;
use authz_core::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    if !state.config.device.enabled {
        return Router::new();
    }
    // RFC 8628 §3.2 via RFC 6749 §5.1: the codes are secrets.
    crate::layers::client_form_endpoint(
        state,
        "/device_authorization",
        device_authorization,
        "device_authorization",
        state.config.device.rate_per_minute,
        NoStore::CacheControl,
    )
}

async fn device_authorization(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ClientCredentials(credentials): ClientCredentials,
    FormBody { form, .. }: FormBody,
) -> Result<Json<authz_core::protocol::device::DeviceAuthorizationResponse>> {
    let client = authentication::authenticate_audited(
        state.client_services(),
        &form.client_credentials(credentials),
        serde_json::json!({ "endpoint": "device_authorization" }),
        &ctx,
    )
    .await?;
    let started = authz_core::protocol::device::start(&state, &client, &form, &ctx).await?;
    Ok(Json(started))
}
