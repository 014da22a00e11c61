//! `GET/POST /userinfo` (OIDC Core §5.3): claims about the user behind an access token, by
//! scope (`profile`, `email`). The token comes from the `Authorization` header only (`Bearer`,
//! RFC 6750 §2.1, or `DPoP` with a proof, RFC 9449 §7); errors are RFC 6750 §3 / RFC 9449 §7.1
//! challenges.
//!
//! Accepted tokens: live access tokens presented as their binding requires
//! (`protocol::live::presented`: ours, unexpired, client and user live, credentials unchanged,
//! session and grant not ended; a DPoP-bound token only with a proof by its key) of a user,
//! with `openid` in scope. The audience is not checked: every access token we issue carries
//! exactly one audience (RFC 8707), and the UserInfo endpoint is part of this server, not a
//! resource server that could be confused with another.

use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::{Error, Result};
use crate::extract::BearerOrDpop;
use crate::layers::{NoStore, never_cached};
use authz_core::protocol::live::{self, Audience};
use authz_core::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    // OIDC Core §5.3.2: claims about the user, never cached.
    let userinfo = never_cached(get(userinfo).post(userinfo), NoStore::CacheControl);
    let routes = Router::new().route("/userinfo", userinfo);
    crate::layers::cors(state, &[Method::GET, Method::POST]).apply(routes)
}

async fn userinfo(
    State(state): State<AppState>,
    BearerOrDpop(presentation): BearerOrDpop,
) -> Result<Json<serde_json::Value>> {
    // The token live and presented as its DPoP binding requires (RFC 9449 §7).
    let live = live::presented(&state, &presentation, Audience::Any).await?;
    let Some(user) = live.user else {
        return Err(Error::invalid_token("the token does not speak for a user").into());
    };
    let scope = live.scope;
    if !scope.contains("openid") {
        return Err(Error::InsufficientScope {
            scope: "openid".into(),
        }
        .into());
    }
    let mut body = json!({ "sub": user.id });
    if scope.contains("profile") {
        body["preferred_username"] = json!(user.username);
        body["name"] = json!(user.name());
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        body["email"] = json!(email);
        body["email_verified"] = json!(false);
    }
    Ok(Json(body))
}
