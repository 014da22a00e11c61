//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662): form in, client
//! authentication as at the token endpoint, JSON out.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::limits::{Limit, limited, too_many_json};
use crate::context::Ctx;
use crate::error::{Error, Result};
use authz_core::clients::authentication;
use authz_core::protocol::form::{Form, MAX_BODY_BYTES};
use authz_core::protocol::{introspection, revocation};
use authz_core::state::AppState;
use authz_core::store::Client;

pub fn router(state: &AppState) -> Router<AppState> {
    let revoke_limit = Limit::new(
        state,
        "revoke",
        state.config.rate_limits.revoke,
        too_many_json,
    );
    let introspect_limit = Limit::new(
        state,
        "introspect",
        state.config.rate_limits.introspect,
        too_many_json,
    );
    let cors = super::cors(state, &[Method::POST]);
    let revoke = Router::new().route("/revoke", limited(post(revoke), &revoke_limit));
    let mut introspect =
        Router::new().route("/introspect", limited(post(introspect), &introspect_limit));
    // Introspection is for resource servers; browsers get CORS there only when configured.
    if state.config.cors_introspect {
        introspect = cors.apply(introspect);
    }
    cors.apply(revoke)
        .merge(introspect)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<(Form, std::sync::Arc<Client>)> {
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    let form = Form::from_request(headers, &body)?;
    let presented = authentication::presented(headers, &form)?;
    let client = authentication::authenticate_request(state, &presented, state.now()).await?;
    Ok((form, client))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let (form, client) = authenticated(&state, &headers, body).await?;
    let token = form.require("token")?;
    revocation::revoke(&state, &client, token, form.get("token_type_hint"), &ctx).await?;
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    Ok(no_store(axum::http::StatusCode::OK.into_response()))
}

async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let (form, client) = authenticated(&state, &headers, body).await?;
    if !client.may_introspect || client.is_public() {
        // RFC 7662 §2.1: the endpoint is protected; this client is not one of the callers.
        return Err(Error::unauthorized_client("this client may not introspect tokens").into());
    }
    let token = form.require("token")?;
    let answer = introspection::introspect(&state, token, form.get("token_type_hint")).await?;
    Ok(no_store(Json(answer).into_response()))
}
