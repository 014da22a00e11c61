//! `POST /par` (RFC 9126 §2): form in, 201 JSON out, never cached. The client authenticates
//! as at `/token` (a public client sends its `client_id`); rate-limited per client IP with the
//! token endpoint's budget.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::context::Ctx;
use crate::error::{Error, Result};
use authz_core::clients::authentication;
use authz_core::protocol::form::Form;
use authz_core::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    // The token endpoint's budget (RFC 9126 §2: a client-authenticated endpoint like it).
    super::client_form_endpoint(state, "/par", par, "par", state.config.rate_limits.token)
}

async fn par(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    let form = Form::from_request(&headers, &body)?;
    let raw =
        std::str::from_utf8(&body).map_err(|_| Error::invalid_request("the body must be UTF-8"))?;
    let client = authentication::authenticate_audited(
        &state,
        &headers,
        &form,
        serde_json::json!({ "endpoint": "par" }),
        &ctx,
    )
    .await?;
    // RFC 9449 §10.1: a DPoP proof for this endpoint binds the code to its key.
    let endpoint = format!("{}/par", state.config.issuer);
    let proved = match state.dpop.check(&headers, "POST", &endpoint, ctx.now).await {
        Ok(jkt) => jkt,
        Err(refused) => return Ok(crate::error::dpop_refused(refused)),
    };
    let params = authz_core::protocol::par::pushed_params(&client, &form, raw, proved.as_ref())?;
    // The same validation as /authorize; its errors, as JSON (RFC 9126 §2.3).
    authz_core::protocol::authorize::validate_pushed(&state, &params)
        .await
        .map_err(authz_core::protocol::authorize::Reject::into_error)?;
    let pushed = authz_core::protocol::par::keep(&state, &client, params, &ctx).await?;
    // RFC 9126 §2.2: 201 Created.
    let mut response = (StatusCode::CREATED, Json(pushed)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
