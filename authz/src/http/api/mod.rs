//! The management API (`/api/v1`): JSON over HTTPS for first-party tools and resource servers
//! acting for a user through token exchange. It accepts only live access tokens
//! (`oauth::live`) whose `aud` is the management audience (a user's token for the MCP server is
//! refused: no passthrough), of users, never of API keys; each route names the scope it needs
//! (RFC 6750 §3.1).

mod keys;
mod reports;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::{AccessTokenClaims, ScopeSet};

use super::bearer::BearerToken;
use crate::error::Error;
use crate::oauth::live::{self, Audience};
use crate::state::AppState;
use crate::store::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(keys::router())
        .merge(reports::router())
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
}

/// Errors of the management API: RFC 6750 challenges for token problems, RFC 6749 shapes for
/// the rest.
#[derive(Debug)]
pub enum ApiError {
    /// No, or an unusable, token → 401 `invalid_token`.
    Unauthorized(&'static str),
    /// The token lacks `scope` → 403 `insufficient_scope`.
    Forbidden(&'static str),
    Other(Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self::Other(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            Self::Unauthorized(desc) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{desc}\""
                ),
                serde_json::json!({ "error": "invalid_token", "error_description": desc }),
            ),
            Self::Forbidden(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"{scope}\""),
                serde_json::json!({
                    "error": "insufficient_scope",
                    "error_description": format!("this needs the {scope} scope"),
                    "scope": scope,
                }),
            ),
            Self::Other(e) => return e.into_response(),
        };
        let mut r = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

/// The verified caller of a management request.
#[derive(Debug)]
pub struct Caller {
    pub claims: AccessTokenClaims,
    pub user: User,
    pub scope: ScopeSet,
}

impl Caller {
    pub fn require(&self, scope: &'static str) -> Result<(), ApiError> {
        if self.scope.contains(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = BearerToken::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Unauthorized("a bearer token is required"))?;
        let audience = state.config.management_audience();
        let live = live::access_token(state, token.expose(), Audience::Exactly(&audience))
            .await?
            .map_err(|dead| ApiError::Unauthorized(dead.description()))?;
        // API keys never reach the management API (no key mints keys): only user grants,
        // directly or through token exchange.
        if live.client.owner_id.is_some() {
            return Err(ApiError::Unauthorized(
                "API keys cannot call the management API",
            ));
        }
        let Some(user) = live.user else {
            return Err(ApiError::Unauthorized(
                "the token does not speak for a user",
            ));
        };
        Ok(Caller {
            claims: live.claims,
            user,
            scope: live.scope,
        })
    }
}
