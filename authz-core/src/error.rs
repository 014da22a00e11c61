//! The core's one error type. Each error knows its OAuth code, its HTTP status and its
//! challenge (RFC 6749 §5.2 for protocol and administrative errors, RFC 6750 §3 for bearer
//! tokens, 429/503 with `Retry-After` for limits, shedding and storage outages) and has a client-visible
//! description; causes of internal failures are for the log only. The web edge
//! (`authz_web::error::WebError`) turns it into a response, once.

use std::borrow::Cow;

use http::StatusCode;
use shared::ErrorCode;
use shared::dpop::Scheme;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Retry-After` (seconds) while the database cannot be reached.
pub(crate) const OUTAGE_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A protocol error the client caused; `description` is shown to it.
    #[error("{code}: {description}")]
    OAuth {
        code: ErrorCode,
        description: Cow<'static, str>,
    },
    /// A bearer token that is missing (`presented: false`), malformed or not live: 401 with an
    /// RFC 6750 §3 challenge, carrying `invalid_token` only when a token was presented (§3.1).
    #[error("invalid_token: {description}")]
    InvalidToken {
        description: Cow<'static, str>,
        presented: bool,
    },
    /// A request to a resource endpoint of this server (UserInfo, the management API) refused
    /// over its token, the token's DPoP binding or its proof (`protocol::live::presented`; RFC
    /// 6750 §3, RFC 9449 §7): 401 with one challenge per scheme, the error in the one the
    /// request used; `use_dpop_nonce` with a `DPoP-Nonce`; 503 with `Retry-After` when the
    /// replay store is full.
    #[error("{}: {}", .0.code, .0.description)]
    Resource(Box<ResourceRefusal>),
    /// The token is live but lacks `scope`: 403 `insufficient_scope`, the challenge naming the
    /// scope to ask for (RFC 6750 §3.1).
    #[error("insufficient_scope: this needs the {scope} scope")]
    InsufficientScope { scope: Cow<'static, str> },
    /// The token is live, but the sign-in behind it is too old (or lacks a factor) for what
    /// the request does: 401 `insufficient_user_authentication` whose challenge carries
    /// `max_age`, so the client signs the user in again and retries (RFC 9470 §3, §4).
    #[error("insufficient_user_authentication: {description}")]
    StepUp {
        description: Cow<'static, str>,
        max_age: i64,
    },
    /// Over a per-client rate limit: 429 (RFC 6585 §4) with `Retry-After`.
    #[error("too many requests from this address; retry in {retry_after} s")]
    TooMany { retry_after: u64 },
    /// Too much work queued (password hashing): shed, answered 503 with `Retry-After`.
    #[error("the server is busy; retry in {retry_after} s")]
    Overloaded { retry_after: u64 },
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
    /// A refusal whose reason the client must not learn (it would tell who exists, or which
    /// keys they hold): answered exactly as `shown`; `cause` goes only to the audit event and
    /// the server log.
    #[error("{shown} ({cause})")]
    Concealed { shown: Box<Error>, cause: String },
}

/// How a resource request was refused (`Error::Resource`).
#[derive(Debug)]
pub struct ResourceRefusal {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// A token was presented (RFC 6750 §3.1: without one, the challenge has no error code).
    pub presented: bool,
    /// The scheme the request used.
    pub used: Option<Scheme>,
    /// DPoP is on here (`AUTHZ_DPOP`): the DPoP challenge is offered.
    pub dpop: bool,
    /// A fresh nonce (`DPoP-Nonce`), with `use_dpop_nonce`.
    pub nonce: Option<String>,
    /// With `temporarily_unavailable` (503).
    pub retry_after: Option<u64>,
}

impl ResourceRefusal {
    /// No token: 401 with the challenges and no error code.
    pub fn missing(dpop: bool) -> Self {
        Self {
            code: ErrorCode::InvalidToken,
            description: "a bearer token is required".into(),
            presented: false,
            used: None,
            dpop,
            nonce: None,
            retry_after: None,
        }
    }

    /// A presented token refused with `code`.
    pub fn new(
        code: ErrorCode,
        description: impl Into<Cow<'static, str>>,
        used: Scheme,
        dpop: bool,
    ) -> Self {
        Self {
            code,
            description: description.into(),
            presented: true,
            used: Some(used),
            ..Self::missing(dpop)
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// RFC 6750 §3, RFC 9449 §7.1 (`shared::dpop::Challenge`).
    pub fn challenges(&self, description: &str) -> Vec<String> {
        if self.status() != StatusCode::UNAUTHORIZED {
            return Vec::new();
        }
        shared::dpop::Challenge {
            used: self.used,
            error: self.presented.then_some((self.code, description)),
            params: "realm=\"authz\"",
            bearer: true,
            dpop: self.dpop,
        }
        .render()
    }
}

impl From<ResourceRefusal> for Error {
    fn from(r: ResourceRefusal) -> Self {
        Self::Resource(Box::new(r))
    }
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
    /// This error, answered as `shown` (`Error::Concealed`): its own description becomes the
    /// log-only cause.
    pub fn concealed_as(self, shown: Error) -> Self {
        Self::Concealed {
            cause: self.raw_description(),
            shown: Box::new(shown),
        }
    }
    /// Why a concealed refusal was made (the audit event and the log say it, the client not).
    pub fn cause(&self) -> Option<&str> {
        match self {
            Self::Concealed { cause, .. } => Some(cause),
            _ => None,
        }
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
    /// A presented bearer token that is not usable.
    pub fn invalid_token(d: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidToken {
            description: d.into(),
            presented: true,
        }
    }
    /// No bearer token at all.
    pub fn no_token() -> Self {
        Self::InvalidToken {
            description: "a bearer token is required".into(),
            presented: false,
        }
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The database cannot be reached (connection refused or lost, pool closed or exhausted):
    /// a temporary condition a client may retry, unlike a query that failed. The server
    /// recovers by itself once the database is back (the pool reconnects).
    pub fn is_storage_outage(&self) -> bool {
        matches!(
            self,
            Self::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }

    /// When a client should try again (`Retry-After`, seconds): for limits, shedding and
    /// storage outages.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Concealed { shown, .. } => shown.retry_after(),
            Self::TooMany { retry_after } | Self::Overloaded { retry_after } => Some(*retry_after),
            _ if self.is_storage_outage() => Some(OUTAGE_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// The OAuth code this error is reported as.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Concealed { shown, .. } => shown.code(),
            Self::OAuth { code, .. } => *code,
            Self::InvalidToken { .. } => ErrorCode::InvalidToken,
            Self::Resource(r) => r.code,
            Self::InsufficientScope { .. } => ErrorCode::InsufficientScope,
            Self::StepUp { .. } => ErrorCode::InsufficientUserAuthentication,
            Self::TooMany { .. } | Self::Overloaded { .. } => ErrorCode::TemporarilyUnavailable,
            Self::Invalid(_) | Self::Conflict(_) | Self::NotFound(_) => ErrorCode::InvalidRequest,
            // RFC 6749 §4.1.2.1: a temporary condition the client may retry.
            Self::Database(_) if self.is_storage_outage() => ErrorCode::TemporarilyUnavailable,
            Self::Database(_) | Self::Migrate(_) | Self::Internal(_) => ErrorCode::ServerError,
        }
    }

    /// What the client is told (internal causes are logged, never sent), in the RFC 6749
    /// §5.2 character set.
    pub fn description(&self) -> String {
        shared::error_description(&self.raw_description())
    }

    fn raw_description(&self) -> String {
        match self {
            Self::Concealed { shown, .. } => shown.raw_description(),
            Self::OAuth { description, .. }
            | Self::InvalidToken { description, .. }
            | Self::StepUp { description, .. } => description.to_string(),
            Self::Resource(r) => r.description.to_string(),
            Self::InsufficientScope { scope } => format!("this needs the {scope} scope"),
            Self::Database(_) if self.is_storage_outage() => {
                "the server is temporarily unavailable; retry shortly".to_owned()
            }
            Self::Database(_) | Self::Migrate(_) | Self::Internal(_) => {
                "the server could not complete the request".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Concealed { shown, .. } => shown.status(),
            // RFC 9110 §15.6.4, with `Retry-After` (`retry_after`).
            Self::Database(_) if self.is_storage_outage() => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Resource(r) => r.status(),
            // RFC 6749 §5.2 has no code for this; temporarily_unavailable (§4.1.2.1) with 503
            // and Retry-After (RFC 9110 §10.2.3) is what clients already retry on.
            Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            other => StatusCode::from_u16(other.code().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The `WWW-Authenticate` challenge this error carries, if any.
    pub fn challenge(&self) -> Option<String> {
        let quote = |s: &str| s.replace(['"', '\\'], "");
        match self {
            Self::Concealed { shown, .. } => shown.challenge(),
            Self::InvalidToken {
                presented: false, ..
            } => Some("Bearer realm=\"authz\"".to_owned()),
            Self::InvalidToken { .. } => Some(format!(
                "Bearer realm=\"authz\", error=\"invalid_token\", error_description=\"{}\"",
                self.description()
            )),
            Self::InsufficientScope { scope } => Some(format!(
                "Bearer realm=\"authz\", error=\"insufficient_scope\", scope=\"{}\"",
                quote(scope)
            )),
            // RFC 9470 §3: the challenge says how recent a sign-in the request needs.
            Self::StepUp { max_age, .. } => Some(format!(
                "Bearer realm=\"authz\", error=\"insufficient_user_authentication\", \
                 error_description=\"{}\", max_age={max_age}",
                self.description()
            )),
            // Its own challenges (`ResourceRefusal::challenges`).
            Self::Resource(_) => None,
            // RFC 6749 §5.2 (invalid_client) and RFC 7235 §3.1: a 401 carries a challenge.
            _ if self.status() == StatusCode::UNAUTHORIZED => {
                Some("Basic realm=\"authz\", charset=\"UTF-8\"".to_owned())
            }
            _ => None,
        }
    }
}
