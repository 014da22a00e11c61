//! `POST /token` (RFC 6749 §3.2): form in, JSON out, never cached (the route's `no-store`,
//! `layers::NoStore::WithPragma`, RFC 6749 §5.1).

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

use crate::error::Result;
use crate::extract::{ClientCredentials, Ctx, DpopProof, FormBody};
use crate::layers::NoStore;
use authz_core::events::audit::RequestContext;
use authz_core::protocol::grant;
use authz_core::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let per_minute = state.config.rate_limits.token;
    let no_store = NoStore::WithPragma;
    crate::layers::client_form_endpoint(state, "/token", token, "token", per_minute, no_store)
}

async fn token(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ClientCredentials(credentials): ClientCredentials,
    DpopProof(proof): DpopProof,
    FormBody { form, .. }: FormBody,
) -> Result<Response> {
    // RFC 9449 §5: a DPoP proof for this endpoint binds what is issued to its key. A refused
    // proof is answered here (400 invalid_dpop_proof / use_dpop_nonce with DPoP-Nonce).
    let ctx = match state.dpop.check(proof.as_ref(), ctx.now).await {
        Ok(dpop_jkt) => RequestContext { dpop_jkt, ..ctx },
        Err(refused) => return Ok(crate::error::dpop_refused(refused)),
    };
    let issued = grant::exchange(&state, credentials, &form, &ctx).await;
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
    Ok(response)
}
