//! `POST /login/upstream/{id}/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0
//! §2.5, §2.8): a provider's logout token in a form; 200 when it was accepted (also when it
//! names nobody here), 400 `invalid_request` when it was refused (the checks:
//! `authz_core::federation::back_channel`). Never cached.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::post;

use crate::error::{Error, Result};
use crate::extract::{Ctx, FormBody};
use crate::layers::{NoStore, never_cached};
use authz_core::federation::back_channel;
use authz_core::protocol::form::MAX_BODY_BYTES;
use authz_core::state::AppState;

pub fn router() -> Router<AppState> {
    let route = never_cached(post(logout), NoStore::CacheControl);
    Router::new()
        .route("/login/upstream/{id}/backchannel-logout", route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn logout(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: FormBody,
) -> Result<StatusCode> {
    let svc = state.federation();
    let Some(up) = svc.provider(&id) else {
        return Err(Error::invalid_request("no such upstream provider").into());
    };
    let token = body
        .form
        .get("logout_token")
        .ok_or_else(|| Error::invalid_request("the logout_token parameter is missing"))?;
    match back_channel::logout(svc, up, token, &ctx).await? {
        Ok(_) => Ok(StatusCode::OK),
        Err(refusal) => Err(Error::invalid_request(refusal.message).into()),
    }
}
