//! The crate's one error type, mapped once to RFC 6749 §5.2 JSON responses in `IntoResponse`.
//! Each error has a client-visible description; causes of internal failures are logged only.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::{ErrorCode, ErrorResponse};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A protocol error the client caused; `description` is shown to it.
    #[error("{code}: {description}")]
    OAuth {
        code: ErrorCode,
        description: Cow<'static, str>,
    },
    /// An administrative request that cannot be carried out (CLI, management API).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    /// Storage failed; the cause is logged, the client sees `server_error`.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else that is the server's fault; the message is logged only.
    #[error("internal: {0}")]
    Internal(String),
    /// Too much work queued (password hashing): shed, answered 503 with `Retry-After`.
    #[error("the server is busy; retry in {retry_after} s")]
    Overloaded { retry_after: u64 },
}

impl Error {
    pub fn oauth(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
        }
    }
    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth(ErrorCode::InvalidScope, d)
    }
    pub fn invalid_target(d: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth(ErrorCode::InvalidTarget, d)
    }
    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::oauth(ErrorCode::UnauthorizedClient, d)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The OAuth code this error is reported as.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::OAuth { code, .. } => *code,
            Self::Invalid(_) | Self::Conflict(_) | Self::NotFound(_) => ErrorCode::InvalidRequest,
            Self::Database(_) | Self::Migrate(_) | Self::Internal(_) => ErrorCode::ServerError,
            Self::Overloaded { .. } => ErrorCode::TemporarilyUnavailable,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.code();
        let description = match &self {
            Self::OAuth { description, .. } => description.to_string(),
            Self::Invalid(_) | Self::Conflict(_) | Self::NotFound(_) | Self::Overloaded { .. } => {
                self.to_string()
            }
            Self::Database(_) | Self::Migrate(_) | Self::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                "the server could not complete the request".to_owned()
            }
        };
        let retry_after = match &self {
            Self::Overloaded { retry_after } => Some(*retry_after),
            _ => None,
        };
        let status = match &self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            // RFC 6749 §5.2 has no code for this; temporarily_unavailable (§4.1.2.1) with 503
            // and Retry-After (RFC 9110 §10.2.3) is what clients already retry on.
            Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        let body = ErrorResponse {
            error: code,
            error_description: Some(description),
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1/§5.2: token endpoint responses must not be cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2 (invalid_client) and RFC 7235 §3.1: a 401 carries a challenge.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"authz\", charset=\"UTF-8\""),
            );
        }
        response
    }
}
