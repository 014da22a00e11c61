//! `POST /register` (RFC 7591 §3): JSON in, `201 Created` with the client's credentials out.
//! Off when `registration_open` is false; rate-limited per client IP.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use shared::ErrorCode;

use crate::error::{Error, Result};
use crate::http::limits::ClientIp;
use crate::oauth::registration::{self, ClientMetadata};
use crate::state::AppState;
use crate::store::{AuditEvent, Outcome};

const MAX_BODY: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", post(register))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn register(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response> {
    if !state.config.browser.registration_open {
        return Ok((
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({
                "error": "access_denied",
                "error_description": "dynamic client registration is turned off on this server",
            })),
        )
            .into_response());
    }
    if let Err(retry) = state.registrations.check_ip(peer, state.now()) {
        let mut r = Error::oauth(
            ErrorCode::TemporarilyUnavailable,
            format!("too many registrations from this address; retry in {retry} s"),
        )
        .into_response();
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(r);
    }
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    let json_ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !json_ct {
        return Err(Error::invalid_request(
            "the body must be application/json (RFC 7591 §3.1)",
        ));
    }
    let metadata: ClientMetadata = serde_json::from_slice(&body).map_err(|e| {
        Error::oauth(
            ErrorCode::InvalidClientMetadata,
            format!("the body is not valid client metadata: {e}"),
        )
    })?;
    let registered = registration::register(&state, metadata).await;
    let mut ev = match &registered {
        Ok(c) => AuditEvent::new(state.now(), "client.registered", Outcome::Success)
            .client(&c.client_id)
            .details(serde_json::json!({
                "client_name": c.client_name,
                "auth_method": c.token_endpoint_auth_method,
                "redirect_uris": c.redirect_uris,
            })),
        Err(e) => AuditEvent::new(state.now(), "client.registration_failed", Outcome::Failure)
            .details(serde_json::json!({ "error": e.code().as_str() })),
    };
    ev.ip = Some(peer.to_string());
    state.audit(ev).await;
    let mut r = (StatusCode::CREATED, Json(registered?)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
