//! `GET/POST /userinfo` (OIDC Core §5.3): claims about the user behind an access token, by
//! scope (`profile`, `email`). The bearer token comes from the `Authorization` header only
//! (RFC 6750 §2.1); errors are RFC 6750 §3 challenges.
//!
//! Accepted tokens: access tokens (`typ` at+jwt) this server signed, unexpired, with `openid`
//! in scope, for a user who still exists and is enabled, whose session (if any) has not been
//! logged out. The audience is not checked: every access token we issue carries exactly one
//! audience (RFC 8707), and the UserInfo endpoint is part of this server, not a resource
//! server that could be confused with another.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims, ScopeSet};
use tower_http::cors::{Any, CorsLayer};

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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return challenge(StatusCode::UNAUTHORIZED, None);
    };
    let invalid = || {
        challenge(
            StatusCode::UNAUTHORIZED,
            Some(("invalid_token", "the access token is invalid or expired")),
        )
    };
    let Some(claims) = state.keys.current().verify_own::<AccessTokenClaims>(
        token,
        ACCESS_TOKEN_TYP,
        &state.config.issuer,
        Some(state.now()),
    ) else {
        return invalid();
    };
    let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return challenge(
            StatusCode::FORBIDDEN,
            Some((
                "insufficient_scope",
                "the token was not issued with the openid scope",
            )),
        );
    }
    if let Some(sid) = &claims.sid {
        match state.store.get_session_by_sid(sid).await {
            Ok(Some(s)) if s.ended_at.is_none() => {}
            Ok(_) => return invalid(),
            Err(e) => return e.into_response(),
        }
    }
    let user = match state.store.get_user(&claims.sub).await {
        Ok(Some(u)) if u.disabled_at.is_none() => u,
        Ok(_) => return invalid(),
        Err(e) => return e.into_response(),
    };
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
