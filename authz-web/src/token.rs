//! `POST /token` (RFC 6749 §3.2): form in, JSON out, never cached.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::context::Ctx;
use crate::error::{Error, Result};
use authz_core::events::audit::RequestContext;
use authz_core::protocol::form::Form;
use authz_core::protocol::grant;
use authz_core::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let per_minute = state.config.rate_limits.token;
    super::client_form_endpoint(state, "/token", token, "token", per_minute)
}

async fn token(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    let form = Form::from_request(&headers, &body)?;
    // RFC 9449 §5: a DPoP proof for this endpoint binds what is issued to its key. A refused
    // proof is answered here (400 invalid_dpop_proof / use_dpop_nonce with DPoP-Nonce).
    let endpoint = format!("{}/token", state.config.issuer);
    let ctx = match state.dpop.check(&headers, "POST", &endpoint, ctx.now).await {
        Ok(dpop_jkt) => RequestContext { dpop_jkt, ..ctx },
        Err(refused) => return Ok(crate::error::dpop_refused(refused)),
    };
    let issued = grant::exchange(&state, &headers, &form, &ctx).await;
    let nonce = state
        .dpop
        .current_nonce(ctx.now)
        .and_then(|n| HeaderValue::from_str(&n).ok());
    let mut response = match issued {
        Ok(issued) => Json(issued).into_response(),
        Err(e) => crate::error::WebError(e).into_response(),
    };
    // RFC 9449 §8.2: the nonce for the next proof, on every answer.
    if let Some(n) = nonce {
        response.headers_mut().insert(shared::dpop::NONCE_HEADER, n);
    }
    // RFC 6749 §5.1.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
