//! `POST /par` (RFC 9126 §2): form in, 201 JSON out, never cached. The client authenticates
//! as at `/token` (a public client sends its `client_id`); rate-limited per client IP with the
//! token endpoint's budget.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::error::{Error, Result};
use crate::extract::{ClientCredentials, Ctx, DpopProof, FormBody};
use crate::layers::NoStore;
use authz_core::clients::authentication;
use authz_core::protocol::authorize::par as pushed;
use authz_core::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    // The token endpoint's budget (RFC 9126 §2: a client-authenticated endpoint like it).
    let per_minute = state.config.rate_limits.token;
    let no_store = NoStore::CacheControl;
    crate::layers::client_form_endpoint(state, "/par", par, "par", per_minute, no_store)
}

async fn par(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ClientCredentials(credentials): ClientCredentials,
    DpopProof(proof): DpopProof,
    FormBody { form, raw }: FormBody,
) -> Result<Response> {
    let raw =
        std::str::from_utf8(&raw).map_err(|_| Error::invalid_request("the body must be UTF-8"))?;
    let client = authentication::authenticate_audited(
        state.client_services(),
        &form.client_credentials(credentials),
        serde_json::json!({ "endpoint": "par" }),
        &ctx,
    )
    .await?;
    // RFC 9449 §10.1: a DPoP proof for this endpoint binds the code to its key.
    let proved = match state.dpop.check(proof.as_ref(), ctx.now).await {
        Ok(jkt) => jkt,
        Err(refused) => return Ok(crate::error::dpop_refused(refused)),
    };
    let pushed = pushed::push(&state, &client, &form, raw, proved.as_ref(), &ctx).await?;
    // RFC 9126 §2.2: 201 Created.
    Ok((StatusCode::CREATED, Json(pushed)).into_response())
}
