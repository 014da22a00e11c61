//! `POST /register` (RFC 7591 §3): JSON in, `201 Created` with the client's credentials out.
//! Off when `registration_open` is false; rate-limited per client IP.

use authz_core::events::kinds;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use shared::ErrorCode;

use crate::error::{Error, Result};
use crate::extract::{Ctx, content_type};
use crate::layers::{NoStore, never_cached};
use authz_core::clients::registration::{self, ClientMetadata};
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, Outcome};

const MAX_BODY: usize = 16 * 1024;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        // RFC 7591 §3.2.1: the answer carries the client's secret.
        .route(
            "/register",
            never_cached(post(register), NoStore::CacheControl),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY));
    crate::layers::cors(state, &[Method::POST]).apply(routes)
}

async fn register(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: std::result::Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response> {
    if !state.config.browser.registration_open {
        // Closed: the endpoint does not exist (nor is it in the metadata), as for any unknown
        // path.
        return Err(Error::NotFound(
            "dynamic client registration (turned off on this server)".into(),
        )
        .into());
    }
    if let (Some(ip), Some(limit)) = (ctx.ip, &state.registrations)
        && let Err(retry_after) = limit.check_ip(ip, ctx.now).await
    {
        state.metrics.rate_limited(limit.name());
        return Err(Error::TooMany { retry_after }.into());
    }
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    authz_core::protocol::form::require_json(content_type(&headers), "RFC 7591 §3.1")?;
    let metadata: ClientMetadata = serde_json::from_slice(&body).map_err(|e| {
        Error::oauth(
            ErrorCode::InvalidClientMetadata,
            format!("the body is not valid client metadata: {e}"),
        )
    })?;
    let registered = registration::register(state.client_services(), metadata).await;
    let ev = match &registered {
        Ok(c) => AuditEvent::new(state.now(), kinds::CLIENT_REGISTERED, Outcome::Success)
            .client(&c.client_id)
            .details(serde_json::json!({
                "client_name": c.client_name,
                "auth_method": c.token_endpoint_auth_method,
                "redirect_uris": c.redirect_uris,
            })),
        Err(e) => AuditEvent::new(
            state.now(),
            kinds::CLIENT_REGISTRATION_FAILED,
            Outcome::Failure,
        )
        .details(serde_json::json!({ "error": e.code().as_str() })),
    };
    state.audit(ev.ctx(&ctx)).await;
    Ok((StatusCode::CREATED, Json(registered?)).into_response())
}
