//! `POST /token` (RFC 6749 §3.2): form in, JSON out, never cached.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::limits::{Limit, limited, too_many_json};
use crate::audit::RequestContext;
use crate::error::{Error, Result};
use crate::oauth::form::{Form, MAX_BODY_BYTES};
use crate::oauth::grant;
use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let limit = Limit::new(
        state,
        "token",
        state.config.rate_limits.token,
        too_many_json,
    );
    let routes = Router::new()
        .route("/token", limited(post(token), &limit))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    super::cors(state, &[Method::POST]).apply(routes)
}

async fn token(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let body = body.map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
    let form = Form::from_request(&headers, &body)?;
    let issued = grant::exchange(&state, &headers, &form, &ctx).await?;
    let mut response = Json(issued).into_response();
    // RFC 6749 §5.1.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
