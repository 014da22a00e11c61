//! Bearer-token enforcement in front of the MCP endpoint (MCP authorization spec 2025-11-25,
//! RFC 6750, RFC 9728):
//!
//! * the token comes only from `Authorization: Bearer` (never the query string or body);
//! * no/invalid token → 401 with `WWW-Authenticate: Bearer resource_metadata=…, scope=…`
//!   (plus `error="invalid_token"` when a token was presented);
//! * a `tools/call` or `resources/read` the token's scopes do not allow → 403 with
//!   `error="insufficient_scope"` and the scopes needed, so clients can step up;
//! * every request is authorized on its own: the server is stateless (no MCP sessions), so
//!   there is no session id another user could reuse;
//! * DPoP (RFC 9449 §7): the rule of `shared::dpop::binding`, the one `authz` applies too —
//!   `Authorization: DPoP <token>` with a `DPoP` proof for this request (`htm`, `htu` = the
//!   configured `MCP_RESOURCE_URL`, never a Host header a proxy rewrote, `iat` window, `ath` =
//!   the token's hash, this server's nonce with `MCP_DPOP_NONCE`, §9) signed by the key the
//!   token is bound to (`cnf.jkt`); a bound token sent as `Bearer` is refused, and with
//!   `MCP_DPOP_REQUIRED` every Bearer token is; challenges offer `DPoP algs=…` beside `Bearer`
//!   (§7.1). The proof's `jti` is spent last, once the per-caller limit let the request
//!   through (§11.1: in Redis with `MCP_REDIS_URL`, shared by replicas); a full replay store
//!   refuses (`use_dpop_nonce`, or 503 with `Retry-After`) rather than forget a live proof.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use serde_json::Value;
use shared::dpop::{Authorization, Binding, DpopError, Presented, Scheme};
use shared::verifier::VerifyError;
use shared::{AccessTokenClaims, ScopeSet};

use crate::rbac;
use crate::state::McpState;
use crate::store::AuditRow;

/// Largest JSON-RPC body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// The verified caller, put into request extensions for the MCP handlers.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessTokenClaims,
    pub scopes: ScopeSet,
    /// The presented token, kept only to be the `subject_token` of a token exchange; it is
    /// never forwarded (redacted in Debug).
    pub token: shared::secret::AccessToken,
}

impl Caller {
    /// The caller the token middleware put on the HTTP request rmcp hands to its handlers.
    pub fn of(extensions: &rmcp::model::Extensions) -> Option<Caller> {
        extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
    }
}

/// Tools take the verified caller as an argument. The middleware always sets it, so its
/// absence is a server fault, never a client error.
impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, rmcp::ErrorData> {
        Caller::of(&context.as_request_context().extensions)
            .ok_or_else(|| rmcp::ErrorData::internal_error("unauthenticated request", None))
    }
}

/// Why the MCP endpoint refuses a request, mapped once to its response: RFC 6749 §5.2 error
/// codes in the body (`shared::ErrorCode`), and for token problems an RFC 6750 §3 challenge with
/// the scopes to ask for and the RFC 9728 `resource_metadata` URL.
#[derive(Debug)]
pub struct AuthError {
    kind: Refusal,
    /// Where the protected-resource metadata is (every challenge names it).
    resource_metadata: String,
    /// The scopes a client should ask for.
    scope: String,
    /// The scheme the request used: the error goes into its challenge (RFC 9449 §7.1).
    used: Option<Scheme>,
    /// `MCP_DPOP_REQUIRED`: no `Bearer` challenge is offered.
    dpop_required: bool,
    /// A fresh nonce (`DPoP-Nonce`), with `use_dpop_nonce` (RFC 9449 §9).
    nonce: Option<String>,
}

impl AuthError {
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

impl McpState {
    /// A refusal carrying this server's challenge details; `scope` defaults to the configured
    /// challenge scope.
    pub fn refuse(&self, kind: Refusal, scope: Option<String>) -> AuthError {
        self.metrics.refused(kind.name());
        let nonce = match kind {
            Refusal::UseDpopNonce(_) => self.dpop.current_nonce(self.now()),
            _ => None,
        };
        AuthError {
            kind,
            resource_metadata: self.config.metadata_url(),
            scope: scope.unwrap_or_else(|| self.config.challenge_scope.clone()),
            used: None,
            dpop_required: self.config.dpop_required,
            nonce,
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
        let challenge_error = match &self.kind {
            Refusal::NoToken => Some(None),
            Refusal::TokenNotInHeader
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

/// The middleware.
pub async fn require_token(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Result<Response, AuthError> {
    if req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("access_token=")))
    {
        return Err(state.refuse(Refusal::TokenNotInHeader, None));
    }
    // `Bearer <token>` (RFC 6750 §2.1) or `DPoP <token>` (RFC 9449 §7.1).
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let (scheme, token) = match Authorization::parse(authorization) {
        Authorization::Token(scheme, token) => (scheme, token.to_owned()),
        Authorization::Missing => return Err(state.refuse(Refusal::NoToken, None)),
        Authorization::Malformed(scheme) => {
            let msg = "the Authorization header is malformed";
            state.audit(None, "token", "denied", Some(msg.into())).await;
            let e = state.refuse(Refusal::InvalidToken(msg.into()), None);
            return Err(e.via(scheme));
        }
    };
    let refuse_token = |kind| state.refuse(kind, None).via(scheme);
    let claims = match state.verifier.verify(&token).await {
        Ok(c) => c,
        Err(VerifyError::KeysUnavailable(cause)) => {
            tracing::error!(%cause, "cannot verify tokens: signing keys unavailable");
            return Err(state.refuse(Refusal::KeysUnavailable, None));
        }
        Err(e) => {
            state.metrics.verification_failed(e.reason());
            state
                .audit(None, "token", "denied", Some(e.to_string()))
                .await;
            return Err(refuse_token(Refusal::InvalidToken(e.to_string())));
        }
    };
    let binding = match check_binding(&state, &req, &token, scheme, &claims) {
        Ok(binding) => binding,
        Err(refusal) => {
            state.metrics.verification_failed(match &refusal {
                Refusal::InvalidDpopProof(_) => "dpop_proof",
                Refusal::UseDpopNonce(_) => "dpop_nonce",
                _ => "dpop_binding",
            });
            let reason = match &refusal {
                Refusal::InvalidDpopProof(m) | Refusal::InvalidToken(m) => m.clone(),
                _ => String::new(),
            };
            // A nonce request is the protocol's normal first round (§9), not a denial.
            if !matches!(refusal, Refusal::UseDpopNonce(_)) {
                state.audit(None, "token", "denied", Some(reason)).await;
            }
            return Err(refuse_token(refusal));
        }
    };
    if let Some(msg) = state.revocations.refuses(&claims) {
        state.metrics.verification_failed("revoked");
        state
            .audit(None, "token", "denied", Some(msg.to_owned()))
            .await;
        return Err(refuse_token(Refusal::InvalidToken(msg.to_owned())));
    }
    // Per authenticated caller (a user through one client, or a service client), after the
    // token is verified: nobody can spend another caller's budget.
    if let Some(limit) = &state.caller_limiter {
        let key = format!("{} {}", claims.sub, claims.client_id);
        if let Err(retry_after) = limit.check(&key, state.now()).await {
            state.metrics.rate_limited(limit.name());
            return Err(state.refuse(Refusal::TooMany { retry_after }, None));
        }
    }
    // RFC 9449 §11.1: the proof is used up only now, once every check and limit let the
    // request through (refused requests cannot fill the replay store).
    if let Binding::Proved(proof) = &binding
        && let Err(e) = state.dpop.spend(proof, state.now()).await
    {
        if let DpopError::Invalid(m) = &e {
            state.metrics.verification_failed("dpop_proof");
            state.audit(None, "token", "denied", Some(m.clone())).await;
        }
        return Err(refuse_token(e.into()));
    }
    let scopes = ScopeSet::parse(&claims.scope).unwrap_or_default();
    let caller = Caller {
        claims,
        scopes,
        token: shared::secret::AccessToken::new(token),
    };

    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        // Refused before a byte of it is read.
        return Err(state.refuse(Refusal::TooLarge, None));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| state.refuse(Refusal::TooLarge, None))?;
    let peek: Option<Peek<'_>> = serde_json::from_slice(&bytes).ok();
    if let Some(msg) = &peek
        && let Some(mismatch) = header_mismatch(&parts.headers, msg)
    {
        return Ok(json_rpc_error(
            StatusCode::BAD_REQUEST,
            msg.id.clone(),
            &mismatch,
        ));
    }
    if let Some((action, needed)) = peek.as_ref().and_then(required_scope)
        && !rbac::allows(&caller.scopes, needed)
    {
        // The scopes this server knows that the token holds, plus the missing one: what a
        // client should ask for when it steps up (MCP 2025-11-25, scope challenge handling).
        let mut all = caller.scopes.intersection(&rbac::scopes_supported());
        if let Ok(s) = shared::Scope::new(needed) {
            all.insert(s);
        }
        state
            .audit(
                Some(&caller),
                &action,
                "denied",
                Some(format!("missing scope {needed}")),
            )
            .await;
        return Err(state.refuse(
            Refusal::InsufficientScope(format!("{action} requires scope {needed}")),
            Some(all.to_string()),
        ));
    }
    parts.extensions.insert(caller);
    let mut response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // RFC 9449 §9: the nonce for the next proof, on every answer to a DPoP request.
    if scheme == Scheme::Dpop
        && let Some(n) = state
            .dpop
            .current_nonce(state.now())
            .and_then(|n| HeaderValue::from_str(&n).ok())
    {
        response.headers_mut().insert(shared::dpop::NONCE_HEADER, n);
    }
    Ok(response)
}

/// RFC 9449 §7: the token's binding and the request's scheme and proof agree
/// (`shared::dpop::binding`, with this server's nonce when `MCP_DPOP_NONCE` is on), and with
/// `MCP_DPOP_REQUIRED` no Bearer token is taken. The proof is not spent here.
fn check_binding(
    state: &McpState,
    req: &Request,
    token: &str,
    scheme: Scheme,
    claims: &AccessTokenClaims,
) -> Result<Binding, Refusal> {
    let presented = Presented {
        scheme,
        token,
        bound: claims.cnf.as_ref().map(|c| c.jkt.as_str()),
        method: req.method().as_str(),
        uri: &state.config.resource_url,
    };
    let proofs = req
        .headers()
        .get_all(shared::dpop::DPOP_HEADER)
        .iter()
        .map(|v| v.as_bytes());
    match state
        .dpop
        .check_presented(&presented, proofs, true, state.now())
    {
        Ok(Binding::Bearer) if state.config.dpop_required => Err(Refusal::InvalidToken(
            "this server accepts only DPoP-bound tokens (RFC 9449)".into(),
        )),
        Ok(binding) => Ok(binding),
        Err(shared::dpop::Refusal::Token(m)) => Err(Refusal::InvalidToken(m.into())),
        Err(shared::dpop::Refusal::Proof(e)) => Err(e.into()),
    }
}

/// Per-client-IP request limit on the MCP endpoint, before any token work (so floods of bad
/// tokens are limited too): 429 with `Retry-After`.
pub async fn rate_limit(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Result<Response, AuthError> {
    if let Some(limiter) = &state.limiter {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let xff = shared::ratelimit::forwarded_for(req.headers());
        let ip = shared::ratelimit::client_ip(peer, xff, &state.config.trusted_proxies);
        if let Err(retry_after) = limiter.check_ip(ip, state.now()).await {
            state.metrics.rate_limited(limiter.name());
            return Err(state.refuse(Refusal::TooMany { retry_after }, None));
        }
    }
    Ok(next.run(req).await)
}

/// For a JSON-RPC `tools/call` or `resources/read`, the action name and the scope it needs.
/// Reads only `method` and `params.name`/`params.uri`, borrowing from the body.
/// What the HTTP layer reads of a JSON-RPC request: its method, id and the name it targets.
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    method: std::borrow::Cow<'a, str>,
    #[serde(default)]
    id: Value,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[derive(serde::Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<std::borrow::Cow<'a, str>>,
}

impl Peek<'_> {
    /// The name `Mcp-Name` stands for: a tool's or prompt's name, a resource's URI.
    fn target(&self) -> Option<&str> {
        let p = self.params.as_ref()?;
        match self.method.as_ref() {
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => p.uri.as_deref(),
            _ => p.name.as_deref(),
        }
    }
}

/// The scope the request needs (tools and resources), decided from the body only.
fn required_scope(msg: &Peek<'_>) -> Option<(String, &'static str)> {
    let target = msg.target()?;
    match msg.method.as_ref() {
        "tools/call" => rbac::tool_scope(target).map(|s| (format!("tool:{target}"), s)),
        "resources/read" => rbac::resource_scope(target).map(|s| (format!("resource:{target}"), s)),
        _ => None,
    }
}

/// Streamable HTTP (MCP 2026-07-28): `Mcp-Method` and `Mcp-Name`, when sent, must say what the
/// body says; a mismatch is 400 with a JSON-RPC error (intermediaries route on the headers, so
/// a disagreement is a request that means two things).
fn header_mismatch(headers: &axum::http::HeaderMap, msg: &Peek<'_>) -> Option<String> {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    // Echoed in the error: clipped, like tool names in the audit log.
    let shown = |v: &str| v.chars().take(64).collect::<String>();
    if let Some(m) = header("mcp-method")
        && m != msg.method
    {
        return Some(format!(
            "the Mcp-Method header ({:?}) does not match the body's method",
            shown(m)
        ));
    }
    if let Some(n) = header("mcp-name")
        && Some(n) != msg.target()
    {
        return Some(format!(
            "the Mcp-Name header ({:?}) does not match the body",
            shown(n)
        ));
    }
    None
}

fn json_rpc_error(status: StatusCode, id: Value, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": -32600, "message": message },
    });
    (status, axum::Json(body)).into_response()
}

impl McpState {
    /// Record an allowed or denied call (never tokens or note contents).
    pub async fn audit(
        &self,
        caller: Option<&Caller>,
        action: &str,
        outcome: &'static str,
        reason: Option<String>,
    ) {
        let row = AuditRow {
            ts: self.now(),
            subject: caller.map(|c| c.claims.sub.clone()),
            client_id: caller.map(|c| c.claims.client_id.clone()),
            action: action.to_owned(),
            outcome,
            reason,
        };
        // Allowed calls are the high-volume case: enqueue only. Denials wait for the commit.
        if outcome == "allowed" {
            self.audit_log.record_async(row).await;
        } else {
            self.audit_log.record(row).await;
        }
    }
}

/// The middleware (outermost on the MCP endpoint).
pub async fn check_origin(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return next.run(req).await;
    };
    let allowed = origin.to_str().is_ok_and(|o| state.origins.allows(o));
    if allowed {
        return next.run(req).await;
    }
    tracing::warn!(origin = ?origin, "refused a request from a disallowed Origin");
    json_rpc_error(
        StatusCode::FORBIDDEN,
        Value::Null,
        "Forbidden: this Origin may not call the MCP server",
    )
}
