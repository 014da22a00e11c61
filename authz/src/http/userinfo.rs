//! `GET/POST /userinfo` (OIDC Core §5.3): claims about the user behind an access token, by
//! scope (`profile`, `email`). The bearer token comes from the `Authorization` header only
//! (RFC 6750 §2.1); errors are RFC 6750 §3 challenges.
//!
//! Accepted tokens: live access tokens (`oauth::live`: ours, unexpired, client and user live,
//! credentials unchanged, session and grant not ended) of a user, with `openid` in scope. The
//! audience is not checked: every access token we issue carries exactly one audience
//! (RFC 8707), and the UserInfo endpoint is part of this server, not a resource server that
//! could be confused with another.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::cors::{Any, CorsLayer};

use super::bearer::{BearerToken, NoBearer};
use crate::oauth::live::{self, Audience};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/userinfo", get(userinfo).post(userinfo))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION]),
        )
}

/// An RFC 6750 §3 error response.
fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let value = match error {
        Some((code, desc)) => {
            format!("Bearer realm=\"userinfo\", error=\"{code}\", error_description=\"{desc}\"")
        }
        None => "Bearer realm=\"userinfo\"".to_owned(),
    };
    let mut r = match error {
        Some((code, desc)) => (
            status,
            axum::Json(json!({ "error": code, "error_description": desc })),
        )
            .into_response(),
        None => status.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

async fn userinfo(
    State(state): State<AppState>,
    bearer: Result<BearerToken, NoBearer>,
) -> Response {
    let token = match bearer {
        Ok(t) => t,
        Err(NoBearer::Missing) => return challenge(StatusCode::UNAUTHORIZED, None),
        Err(NoBearer::Malformed) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", "the Authorization header is malformed")),
            );
        }
    };
    let live = match live::access_token(&state, token.expose(), Audience::Any).await {
        Ok(Ok(l)) => l,
        Ok(Err(dead)) => {
            return challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", dead.description())),
            );
        }
        Err(e) => return e.into_response(),
    };
    let Some(user) = live.user else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            Some(("invalid_token", "the token does not speak for a user")),
        );
    };
    let scope = live.scope;
    if !scope.contains("openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some((
                "insufficient_scope",
                "the token was not issued with the openid scope",
            )),
        );
    }
    let mut body = json!({ "sub": user.id });
    if scope.contains("profile") {
        body["preferred_username"] = json!(user.username);
        body["name"] = json!(user.username);
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        body["email"] = json!(email);
        body["email_verified"] = json!(false);
    }
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
