//! The Shared Signals endpoints (`authz_core::events::ssf`): the transmitter's metadata
//! (`GET /.well-known/ssf-configuration`), a receiver's stream configuration (`GET
//! /ssf/stream`) and poll delivery (`POST /ssf/poll`, RFC 8936). The last two are rate limited
//! per client IP (`AUTHZ_RATE_SSF`, one budget for both, counted before anything else),
//! authenticate the receiver as its confidential client with HTTP Basic (`client_secret_basic`,
//! checked as at the token endpoint, against stored clients only: an administrator's, never a
//! metadata document fetched for the occasion) and answer only clients named in
//! `AUTHZ_SSF_RECEIVERS`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::extract::{ClientCredentials, content_type};
use crate::layers::{NoStore, never_cached};
use crate::limits::{Limit, limited, too_many_json};
use authz_core::clients::authentication;
use authz_core::protocol::form::MAX_BODY_BYTES;
use authz_core::state::AppState;
use authz_core::store::SetRefusal;

/// The most SETs one poll answer carries.
pub(crate) const MAX_EVENTS: u32 = 100;

pub fn router(state: &AppState) -> Router<AppState> {
    let limit = Limit::new(state, "ssf", state.config.rate_limits.ssf, too_many_json);
    // A receiver's stream and its events: never cached (the metadata is public).
    let stream = never_cached(get(stream), NoStore::CacheControl);
    let poll = never_cached(post(poll), NoStore::CacheControl);
    Router::new()
        .route("/.well-known/ssf-configuration", get(configuration))
        .route("/ssf/stream", limited(stream, &limit))
        .route("/ssf/poll", limited(poll, &limit))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn configuration(State(state): State<AppState>) -> Response {
    Json(authz_core::events::ssf::configuration(&state.config)).into_response()
}

/// The authenticated receiver's client id (credentials in the headers only).
async fn receiver(
    state: &AppState,
    credentials: &authentication::ClientCredentials,
) -> Result<String> {
    let presented = authentication::presented(credentials)?;
    let client =
        authentication::authenticate_registered(state.client_services(), &presented, state.now())
            .await?;
    if client.is_public() {
        return Err(Error::invalid_client(
            "a Shared Signals receiver must authenticate as a confidential client",
        )
        .into());
    }
    if !state.config.ssf.receivers.iter().any(|r| *r == client.id) {
        return Err(Error::unauthorized_client(
            "this client is not a Shared Signals receiver (AUTHZ_SSF_RECEIVERS)",
        )
        .into());
    }
    Ok(client.id.clone())
}

async fn stream(
    State(state): State<AppState>,
    ClientCredentials(credentials): ClientCredentials,
) -> Result<Response> {
    let receiver = receiver(&state, &credentials).await?;
    Ok(Json(authz_core::events::ssf::stream(&state.config, &receiver)).into_response())
}

/// An RFC 8936 §2.4 poll request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PollRequest {
    #[serde(default)]
    max_events: Option<u32>,
    #[serde(default)]
    return_immediately: bool,
    #[serde(default)]
    ack: Vec<String>,
    /// SETs the receiver could not process (RFC 8936 §2.4): delivered again after a pause, a
    /// bounded number of times (`authz_core::events::ssf::refused`), and logged.
    #[serde(default)]
    set_errs: BTreeMap<String, SetError>,
}

#[derive(Debug, Deserialize)]
struct SetError {
    err: String,
    #[serde(default)]
    description: String,
}

/// A receiver's error code as recorded (RFC 8935 §2.4 codes are short ASCII words): at most 64
/// characters of `[A-Za-z0-9_.-]`, so what the audit log keeps stays small and plain.
fn error_code(err: &str) -> String {
    let code: String = err
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(64)
        .collect();
    if code.is_empty() {
        "unspecified".to_owned()
    } else {
        code
    }
}

async fn poll(
    State(state): State<AppState>,
    ClientCredentials(credentials): ClientCredentials,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let receiver = receiver(&state, &credentials).await?;
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    authz_core::protocol::form::require_json(content_type(&headers), "RFC 8936 §2.4")?;
    let req: PollRequest = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid_request(format!("malformed poll request: {e}")))?;
    if req.ack.len() + req.set_errs.len() > 10 * MAX_EVENTS as usize {
        return Err(Error::invalid_request("too many acknowledgements at once").into());
    }
    for (jti, e) in &req.set_errs {
        tracing::warn!(%receiver, %jti, err = %e.err, description = %e.description,
            "a receiver refused a security event");
    }
    if !req.ack.is_empty() {
        state
            .store
            .ack_sets(&receiver, &req.ack, state.now())
            .await?;
    }
    if !req.set_errs.is_empty() {
        let refusals: Vec<SetRefusal> = req
            .set_errs
            .iter()
            .map(|(jti, e)| SetRefusal {
                jti: jti.clone(),
                err: error_code(&e.err),
            })
            .collect();
        authz_core::events::ssf::refused(&state.events, &receiver, &refusals).await?;
    }
    let max = req.max_events.unwrap_or(MAX_EVENTS).min(MAX_EVENTS);
    // maxEvents 0: only acknowledging (RFC 8936 §2.4.1).
    if max == 0 {
        return Ok(Json(serde_json::json!({ "sets": {}, "moreAvailable": false })).into_response());
    }
    // Long poll (RFC 8936 §2.4.1): wait a bounded time for an event, checking storage (where
    // every replica queues) four times a second.
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(state.config.ssf.long_poll_secs.min(30));
    let mut pending = state
        .store
        .pending_sets(&receiver, max + 1, state.now())
        .await?;
    while pending.is_empty() && !req.return_immediately && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        pending = state
            .store
            .pending_sets(&receiver, max + 1, state.now())
            .await?;
    }
    let more = pending.len() > max as usize;
    pending.truncate(max as usize);
    let sets: serde_json::Map<String, serde_json::Value> =
        authz_core::events::ssf::deliverable(&state.events, &receiver, pending)
            .await
            .into_iter()
            .map(|(jti, jwt)| (jti, jwt.into()))
            .collect();
    Ok(Json(serde_json::json!({ "sets": sets, "moreAvailable": more })).into_response())
}
