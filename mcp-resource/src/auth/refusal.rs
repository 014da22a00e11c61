//! Refusal rendering, in one place: every reason the MCP endpoint turns a request away
//! ([`Refusal`]) and the one response each maps to ([`AuthError`]'s `IntoResponse`).
//!
//! - **Body.** RFC 6749 §5.2 error codes (`shared::ErrorCode`) in a JSON error body, with
//!   `Cache-Control: no-store` (RFC 6749 §5.1).
//! - **Challenges.** A token problem answers with RFC 6750 §3 `WWW-Authenticate` challenges:
//!   no token → 401 and a challenge without an error code (§3.1); a token in the query string or
//!   body → 400 `invalid_request` (§2); a bad token → 401 `invalid_token`; missing scope → 403
//!   `insufficient_scope`. Every challenge names the scopes to ask for and the RFC 9728 §5.1
//!   `resource_metadata` URL, so an unmodified MCP client can discover the authorization
//!   server from a 401 alone (MCP authorization 2025-11-25).
//! - **DPoP.** One challenge per scheme (RFC 9449 §7.1): `DPoP algs=…` beside `Bearer` (no
//!   `Bearer` with `MCP_DPOP_REQUIRED`), the error in the one the request used; a
//!   `use_dpop_nonce` refusal carries a fresh `DPoP-Nonce` (§9). The challenge text is
//!   `shared::dpop::Challenge`, the one `authz` renders too.
//! - **Load.** 429 and 503 carry `Retry-After` (RFC 9110 §10.2.3); 413 closes the connection
//!   (the rest of the body is unread).
//! - **JSON-RPC.** What the MCP transport refuses before rmcp runs (a disallowed `Origin`, an
//!   `Mcp-Method`/`Mcp-Name` header that disagrees with the body: `-32020` HeaderMismatch,
//!   SEP-2243) is a JSON-RPC error
//!   ([`json_rpc_error`]), not an OAuth one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use shared::dpop::{DpopError, Scheme};

/// Largest JSON-RPC body accepted (the gate's body cap; its refusal names it).
pub const MAX_BODY: usize = 1024 * 1024;

/// Why the MCP endpoint refuses a request, with what its challenge names. Built by
/// `McpState::refuse` (which fills in this server's details and counts the refusal).
#[derive(Debug)]
pub struct AuthError {
    kind: Refusal,
    /// Where the protected-resource metadata is (every challenge names it, RFC 9728 §5.1).
    resource_metadata: String,
    /// The scopes a client should ask for (RFC 6750 §3 `scope`).
    scope: String,
    /// The scheme the request used: the error goes into its challenge (RFC 9449 §7.1).
    used: Option<Scheme>,
    /// `MCP_DPOP_REQUIRED`: no `Bearer` challenge is offered.
    dpop_required: bool,
    /// A fresh nonce (`DPoP-Nonce`), with `use_dpop_nonce` (RFC 9449 §9).
    nonce: Option<String>,
}

impl AuthError {
    /// A refusal of `kind`, its challenge naming `resource_metadata` and `scope`.
    pub(crate) fn new(
        kind: Refusal,
        resource_metadata: String,
        scope: String,
        dpop_required: bool,
        nonce: Option<String>,
    ) -> Self {
        Self {
            kind,
            resource_metadata,
            scope,
            used: None,
            dpop_required,
            nonce,
        }
    }

    /// The refusal concerns a request under `scheme`.
    pub fn via(mut self, scheme: Scheme) -> Self {
        self.used = Some(scheme);
        self
    }
}

/// The refusals of the MCP endpoint.
#[derive(Debug)]
pub enum Refusal {
    /// No bearer token: 401, a challenge without an error code (RFC 6750 §3.1).
    NoToken,
    /// A token in the query string or body: 400 `invalid_request` (RFC 6750 §2).
    TokenNotInHeader,
    /// Two `Authorization` headers: 400 `invalid_request` (RFC 6750 §3.1; which one a proxy
    /// in front checked is unknown, so neither is used — as `authz` refuses them).
    TwoAuthorizations,
    /// The token is not valid here: 401 `invalid_token`.
    InvalidToken(String),
    /// The DPoP proof is missing or invalid: 401 `invalid_dpop_proof` (RFC 9449 §7.1).
    InvalidDpopProof(String),
    /// The proof lacks this server's current nonce (`MCP_DPOP_NONCE`), or the replay store is
    /// full while nonces are on: 401 `use_dpop_nonce` with a `DPoP-Nonce` (RFC 9449 §9).
    UseDpopNonce(String),
    /// The replay store is full of live proofs (nonces off): 503 `temporarily_unavailable`
    /// with `Retry-After`; nothing live is forgotten to make room.
    DpopBusy { retry_after: u64 },
    /// The token lacks the scope: 403 `insufficient_scope`, naming what to ask for.
    InsufficientScope(String),
    /// Over the per-IP limit: 429 `temporarily_unavailable` with `Retry-After`.
    TooMany { retry_after: u64 },
    /// The issuer's keys cannot be fetched: 503 `temporarily_unavailable`, retry soon.
    KeysUnavailable,
    /// Over `MAX_BODY`: 413 `invalid_request`, the connection closed (the rest is unread).
    TooLarge,
}

impl Refusal {
    /// Its name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NoToken => "no_token",
            Self::TokenNotInHeader => "token_not_in_header",
            Self::TwoAuthorizations => "two_authorizations",
            Self::InvalidToken(_) => "invalid_token",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::UseDpopNonce(_) => "use_dpop_nonce",
            Self::DpopBusy { .. } => "dpop_busy",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::TooMany { .. } => "too_many",
            Self::KeysUnavailable => "keys_unavailable",
            Self::TooLarge => "too_large",
        }
    }
}

impl From<DpopError> for Refusal {
    /// A refused proof (RFC 9449 §7.1, §9).
    fn from(e: DpopError) -> Self {
        match e {
            DpopError::Invalid(m) => Self::InvalidDpopProof(m),
            e @ DpopError::UseNonce => Self::UseDpopNonce(e.to_string()),
            DpopError::Unavailable { retry_after } => Self::DpopBusy { retry_after },
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        use shared::ErrorCode as C;
        let quote = |s: &str| s.replace(['"', '\\'], "");
        let (status, code, description) = match &self.kind {
            Refusal::NoToken => (
                StatusCode::UNAUTHORIZED,
                C::InvalidRequest,
                "a bearer token is required".to_owned(),
            ),
            Refusal::TokenNotInHeader => (
                StatusCode::BAD_REQUEST,
                C::InvalidRequest,
                "tokens are accepted only in the Authorization header".to_owned(),
            ),
            Refusal::TwoAuthorizations => (
                StatusCode::BAD_REQUEST,
                C::InvalidRequest,
                "send one Authorization header".to_owned(),
            ),
            Refusal::InvalidToken(d) => (StatusCode::UNAUTHORIZED, C::InvalidToken, d.clone()),
            Refusal::InvalidDpopProof(d) => {
                (StatusCode::UNAUTHORIZED, C::InvalidDpopProof, d.clone())
            }
            Refusal::UseDpopNonce(d) => (StatusCode::UNAUTHORIZED, C::UseDpopNonce, d.clone()),
            Refusal::DpopBusy { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                C::TemporarilyUnavailable,
                DpopError::Unavailable {
                    retry_after: *retry_after,
                }
                .to_string(),
            ),
            Refusal::InsufficientScope(d) => {
                (StatusCode::FORBIDDEN, C::InsufficientScope, d.clone())
            }
            Refusal::TooMany { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                C::TemporarilyUnavailable,
                format!("too many requests from this address; retry in {retry_after} s"),
            ),
            Refusal::KeysUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                C::TemporarilyUnavailable,
                "the authorization server's signing keys are unavailable; retry shortly".to_owned(),
            ),
            Refusal::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                C::InvalidRequest,
                format!("the request body is larger than {MAX_BODY} bytes"),
            ),
        };
        let description = shared::error_description(&description);
        let body = shared::ErrorResponse::new(code, &description);
        let mut r = (status, axum::Json(body)).into_response();
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // RFC 6750 §3: which refusals challenge, and whether with an error code (§3.1: none
        // when the request carried no credentials at all).
        let challenge_error = match &self.kind {
            Refusal::NoToken => Some(None),
            Refusal::TokenNotInHeader
            | Refusal::TwoAuthorizations
            | Refusal::InvalidToken(_)
            | Refusal::InvalidDpopProof(_)
            | Refusal::UseDpopNonce(_)
            | Refusal::InsufficientScope(_) => Some(Some(code)),
            _ => None,
        };
        if let Some(error) = challenge_error {
            let params = format!(
                "scope=\"{}\", resource_metadata=\"{}\"",
                quote(&self.scope),
                self.resource_metadata
            );
            // RFC 9449 §7.1: one challenge per scheme, the error in the one the request used
            // (`shared::dpop::Challenge`, as at `authz`).
            let challenges = shared::dpop::Challenge {
                used: self.used,
                error: error.map(|code| (code, description.as_str())),
                params: &params,
                bearer: !self.dpop_required,
                dpop: true,
            }
            .render();
            for c in challenges {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    h.append(header::WWW_AUTHENTICATE, v);
                }
            }
        }
        if let Some(n) = self
            .nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            h.insert(shared::dpop::NONCE_HEADER, n);
        }
        match self.kind {
            Refusal::TooMany { retry_after } | Refusal::DpopBusy { retry_after } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            Refusal::KeysUnavailable => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Refusal::TooLarge => {
                h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        r
    }
}

/// JSON-RPC 2.0 §5.1 Invalid Request.
pub const INVALID_REQUEST: i64 = -32600;
/// MCP 2026-07-28 (SEP-2243) HeaderMismatch: a routing header (`Mcp-Method`, `Mcp-Name`) that
/// disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// A refusal of the MCP transport itself, as a JSON-RPC error (JSON-RPC 2.0 §5.1, `-32600`
/// Invalid Request) with `id` echoed (`null` when unknown).
pub fn json_rpc_error(status: StatusCode, id: Value, message: &str) -> Response {
    json_rpc_error_coded(status, id, INVALID_REQUEST, message)
}

/// As [`json_rpc_error`], with the error `code`.
pub fn json_rpc_error_coded(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    });
    (status, axum::Json(body)).into_response()
}
