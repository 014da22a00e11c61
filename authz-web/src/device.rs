//! `POST /device_authorization` (RFC 8628 §3.1): form in, JSON out (§3.2), never cached. The
//! client authenticates as at `/token` (a public client sends its `client_id`); the endpoint
//! is rate-limited per client IP and only served when the device flow is enabled.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::context::Ctx;
use crate::error::{Error, Result};
use authz_core::clients::authentication;
use authz_core::protocol::form::Form;
use authz_core::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    if !state.config.device.enabled {
        return Router::new();
    }
    super::client_form_endpoint(
        state,
        "/device_authorization",
        device_authorization,
        "device_authorization",
        state.config.device.rate_per_minute,
    )
}

async fn device_authorization(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    let form = Form::from_request(&headers, &body)?;
    let client = authentication::authenticate_audited(
        &state,
        &headers,
        &form,
        serde_json::json!({ "endpoint": "device_authorization" }),
        &ctx,
    )
    .await?;
    let started = authz_core::protocol::device::start(&state, &client, &form, &ctx).await?;
    let mut response = Json(started).into_response();
    // RFC 8628 §3.2 via RFC 6749 §5.1: the codes are secrets.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
