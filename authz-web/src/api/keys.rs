//! `/api/v1/api-keys` (keys:write): create, list and revoke the caller's API keys;
//! `/api/v1/sessions/current` (any scope): log the caller's grant out.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;

use super::Caller;
use crate::context::Ctx;
use crate::error::{Error, WebError};
use authz_core::clients::api_keys;
use authz_core::identity::session;
use authz_core::protocol::revocation;
use authz_core::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/api-keys", get(list).post(create))
        .route("/api/v1/api-keys/{id}", delete(revoke))
        .route("/api/v1/sessions/current", delete(logout))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scope: String,
    expires_in_days: Option<i64>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NewKey>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    caller.require("keys:write")?;
    let Json(req) = body.map_err(|e| Error::invalid_request(format!("bad JSON body: {e}")))?;
    // A lasting credential: the sign-in behind the token must be recent (RFC 9470).
    let signed_in = session::recent_sign_in(
        &*state.store,
        &state.config,
        state.now(),
        caller.claims.sid.as_deref(),
        &caller.user,
    )
    .await?;
    let created = api_keys::create(
        state.client_services(),
        &caller.user,
        &signed_in,
        &caller.scope,
        &req.name,
        &req.scope,
        req.expires_in_days,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list(State(state): State<AppState>, caller: Caller) -> Result<Response, WebError> {
    caller.require("keys:write")?;
    let keys = api_keys::list(&*state.store, state.now(), &caller.user).await?;
    Ok(Json(serde_json::json!({ "keys": keys })).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    caller.require("keys:write")?;
    let key = api_keys::revoke(
        &*state.store,
        &state.clients,
        &state.events,
        &caller.user,
        &id,
    )
    .await?;
    Ok(Json(key).into_response())
}

/// End the caller's grant (session): its refresh tokens stop working, and resource servers
/// refuse its access tokens (they carry the `sid`).
async fn logout(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    caller: Caller,
) -> Result<Response, WebError> {
    let ended = match caller.claims.sid.as_deref() {
        Some(sid) => {
            revocation::end_grant(
                &state,
                Some(sid),
                None,
                "logout",
                &caller.user.username,
                &ctx,
            )
            .await?
        }
        None => false,
    };
    Ok(Json(serde_json::json!({ "sid": caller.claims.sid, "ended": ended })).into_response())
}
