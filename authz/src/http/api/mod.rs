//! The management API (`/api/v1`): JSON over HTTPS for first-party tools and resource servers
//! acting for a user through token exchange. It accepts only access tokens whose `aud` is the
//! management audience (a user's token for the MCP server is refused: no passthrough), from
//! live sessions of enabled users; each route names the scope it needs (RFC 6750 §3.1).

mod keys;
mod reports;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims, ScopeSet};

use crate::error::Error;
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
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or(ApiError::Unauthorized("a bearer token is required"))?;
        let claims: AccessTokenClaims = state
            .keys
            .current()
            .verify_own(
                token,
                ACCESS_TOKEN_TYP,
                &state.config.issuer,
                Some(state.now()),
            )
            .ok_or(ApiError::Unauthorized(
                "the access token is invalid or expired",
            ))?;
        if claims.aud != state.config.management_audience() {
            return Err(ApiError::Unauthorized(
                "the access token is not for this API (wrong audience)",
            ));
        }
        if let Some(sid) = &claims.sid {
            let live = state
                .store
                .get_session_by_sid(sid)
                .await?
                .is_some_and(|s| s.ended_at.is_none());
            if !live {
                return Err(ApiError::Unauthorized("the session has ended"));
            }
        }
        let user = match state.store.get_user(&claims.sub).await? {
            Some(u) if u.disabled_at.is_none() => u,
            _ => return Err(ApiError::Unauthorized("the account is disabled or gone")),
        };
        let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
        Ok(Caller {
            claims,
            user,
            scope,
        })
    }
}
