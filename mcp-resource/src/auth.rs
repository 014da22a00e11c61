//! Bearer-token enforcement in front of the MCP endpoint (MCP authorization spec 2025-11-25,
//! RFC 6750, RFC 9728):
//!
//! * the token comes only from `Authorization: Bearer` (never the query string or body);
//! * no/invalid token → 401 with `WWW-Authenticate: Bearer resource_metadata=…, scope=…`
//!   (plus `error="invalid_token"` when a token was presented);
//! * a `tools/call` or `resources/read` the token's scopes do not allow → 403 with
//!   `error="insufficient_scope"` and the scopes needed, so clients can step up;
//! * every request is authorized on its own: the server is stateless (no MCP sessions), so
//!   there is no session id another user could reuse.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

fn quote(s: &str) -> String {
    s.replace(['"', '\\'], "")
}

/// Build a `WWW-Authenticate: Bearer …` value.
pub fn challenge(state: &McpState, error: Option<(&str, &str)>, scope: &str) -> HeaderValue {
    let mut v = String::from("Bearer ");
    if let Some((code, description)) = error {
        v.push_str(&format!(
            "error=\"{code}\", error_description=\"{}\", ",
            quote(description)
        ));
    }
    v.push_str(&format!(
        "scope=\"{}\", resource_metadata=\"{}\"",
        quote(scope),
        state.config.metadata_url()
    ));
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

fn deny(status: StatusCode, www: HeaderValue, code: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": code, "error_description": description });
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, www);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The middleware.
pub async fn require_token(
    State(state): State<Arc<McpState>>,
    req: Request,
    next: Next,
) -> Response {
    let base_scope = state.config.challenge_scope.clone();
    if req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("access_token=")))
    {
        let www = challenge(
            &state,
            Some((
                "invalid_request",
                "tokens are accepted only in the Authorization header",
            )),
            &base_scope,
        );
        return deny(
            StatusCode::BAD_REQUEST,
            www,
            "invalid_request",
            "tokens are accepted only in the Authorization header",
        );
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let Some(token) = token else {
        // RFC 6750 §3.1: no error code when no credentials were presented.
        return deny(
            StatusCode::UNAUTHORIZED,
            challenge(&state, None, &base_scope),
            "unauthorized",
            "a bearer token is required",
        );
    };
    let claims = match state.verifier.verify(&token).await {
        Ok(c) => c,
        Err(VerifyError::KeysUnavailable(cause)) => {
            tracing::error!(%cause, "cannot verify tokens: signing keys unavailable");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                "authorization server keys unavailable",
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return r;
        }
        Err(e) => {
            state
                .audit(None, "token", "denied", Some(e.to_string()))
                .await;
            let www = challenge(&state, Some(("invalid_token", &e.to_string())), &base_scope);
            return deny(
                StatusCode::UNAUTHORIZED,
                www,
                "invalid_token",
                &e.to_string(),
            );
        }
    };
    if claims
        .sid
        .as_deref()
        .is_some_and(|sid| state.is_logged_out(sid))
    {
        let msg = "the session this token belongs to was logged out";
        state
            .audit(None, "token", "denied", Some(msg.to_owned()))
            .await;
        let www = challenge(&state, Some(("invalid_token", msg)), &base_scope);
        return deny(StatusCode::UNAUTHORIZED, www, "invalid_token", msg);
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
        return too_large();
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    if let Some((action, needed)) = required_scope(&bytes)
        && !rbac::allows(&caller.scopes, needed)
    {
        // The scopes this server knows that the token holds, plus the missing one: what a
        // client should ask for when it steps up (MCP 2025-11-25, scope challenge handling).
        let mut all = caller.scopes.intersection(&rbac::scopes_supported());
        if let Ok(s) = shared::Scope::new(needed) {
            all.insert(s);
        }
        let description = format!("{action} requires scope {needed}");
        state
            .audit(
                Some(&caller),
                &action,
                "denied",
                Some(format!("missing scope {needed}")),
            )
            .await;
        let www = challenge(
            &state,
            Some(("insufficient_scope", &description)),
            &all.to_string(),
        );
        return deny(
            StatusCode::FORBIDDEN,
            www,
            "insufficient_scope",
            &description,
        );
    }
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// 413 for a body over `MAX_BODY`; the connection is closed (the rest of the body is not read,
/// so it cannot be reused).
fn too_large() -> Response {
    let mut r = (
        StatusCode::PAYLOAD_TOO_LARGE,
        axum::Json(serde_json::json!({
            "error": "invalid_request",
            "error_description": format!("the request body is larger than {MAX_BODY} bytes"),
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Per-client-IP request limit on the MCP endpoint, before any token work (so floods of bad
/// tokens are limited too): 429 with `Retry-After`.
pub async fn rate_limit(State(state): State<Arc<McpState>>, req: Request, next: Next) -> Response {
    if let Some(limiter) = &state.limiter {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
        let xff = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = shared::ratelimit::client_ip(peer, xff, &state.config.trusted_proxies);
        if let Err(retry) = limiter.check_ip(ip, crate::state::now()) {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({
                    "error": "too_many_requests",
                    "error_description":
                        format!("too many requests from this address; retry in {retry} s"),
                })),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    next.run(req).await
}

/// For a JSON-RPC `tools/call` or `resources/read`, the action name and the scope it needs.
/// Reads only `method` and `params.name`/`params.uri`, borrowing from the body.
fn required_scope(body: &[u8]) -> Option<(String, &'static str)> {
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        name: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        uri: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    struct Peek<'a> {
        #[serde(borrow)]
        method: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        params: Option<Params<'a>>,
    }
    let msg: Peek<'_> = serde_json::from_slice(body).ok()?;
    let params = msg.params?;
    match msg.method.as_ref() {
        "tools/call" => {
            let name = params.name?;
            rbac::tool_scope(&name).map(|s| (format!("tool:{name}"), s))
        }
        "resources/read" => {
            let uri = params.uri?;
            rbac::resource_scope(&uri).map(|s| (format!("resource:{uri}"), s))
        }
        _ => None,
    }
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
            ts: crate::state::now(),
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
