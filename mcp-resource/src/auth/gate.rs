//! The JSON-RPC gate: what the HTTP layer reads of an MCP message before rmcp runs, for a caller
//! the token layer has verified.
//!
//! - **Body cap.** At most [`MAX_BODY`] bytes: a larger declared `Content-Length` is refused
//!   before a byte is read, a larger body once the cap is reached (413, connection closed).
//! - **Peek.** Only `method`, `id` and `params.name`/`params.uri` are parsed, borrowing from the
//!   body; anything that does not parse goes on to rmcp, which answers it as JSON-RPC.
//! - **Routing headers.** Streamable HTTP (MCP 2026-07-28): `Mcp-Method` and `Mcp-Name`, when
//!   sent, must say what the body says; a mismatch is 400 with a JSON-RPC error
//!   (intermediaries route on the headers, so a disagreement is a request that means two
//!   things).
//! - **Scope.** A `tools/call` or `resources/read` the token's scopes do not allow is 403
//!   `insufficient_scope` naming the scopes to ask for (RFC 6750 §3.1; MCP 2025-11-25, scope
//!   challenge handling), so clients can step up. The scope of each tool and resource is
//!   declared once, in `rbac`; the handlers check again (defence in depth).

use std::borrow::Cow;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::caller::Caller;
use super::refusal::{HEADER_MISMATCH, MAX_BODY, Refusal, json_rpc_error_coded};
use crate::rbac;
use crate::state::McpState;

/// Read the body (at most [`MAX_BODY`]) of the request whose head is `parts`, check that its
/// routing headers agree with it and that `caller` may make the call: the request rebuilt for
/// rmcp, or the refusal.
pub(super) async fn admit(
    state: &McpState,
    caller: &Caller,
    parts: Parts,
    body: Body,
) -> Result<Request, Response> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        // Refused before a byte of it is read.
        return Err(state.refuse(Refusal::TooLarge, None).into_response());
    }
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| state.refuse(Refusal::TooLarge, None).into_response())?;
    let peek: Option<Peek<'_>> = serde_json::from_slice(&bytes).ok();
    if let Some(msg) = &peek
        && let Some(mismatch) = header_mismatch(&parts.headers, msg)
    {
        return Err(json_rpc_error_coded(
            StatusCode::BAD_REQUEST,
            msg.id.clone(),
            HEADER_MISMATCH,
            &mismatch,
        ));
    }
    if let Some((action, needed)) = peek.as_ref().and_then(|m| required_scope(&state.rbac, m))
        && !rbac::allows(&caller.scopes, needed)
    {
        // The scopes this server knows that the token holds, plus the missing one: what a
        // client should ask for when it steps up (MCP 2025-11-25, scope challenge handling).
        let mut all = caller.scopes.intersection(&state.rbac.scopes_supported());
        if let Ok(s) = shared::Scope::new(needed) {
            all.insert(s);
        }
        state
            .audit(
                Some(caller),
                &action,
                "denied",
                Some(format!("missing scope {needed}")),
            )
            .await;
        let refusal = Refusal::InsufficientScope(format!("{action} requires scope {needed}"));
        return Err(state.refuse(refusal, Some(all.to_string())).into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// What the HTTP layer reads of a JSON-RPC request: its method, id and the name it targets,
/// borrowing from the body.
#[derive(serde::Deserialize)]
struct Peek<'a> {
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(default)]
    id: Value,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[derive(serde::Deserialize)]
struct Params<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uri: Option<Cow<'a, str>>,
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

/// For a `tools/call` or `resources/read`, the action name and the scope it needs, decided
/// from the body only.
fn required_scope<'a>(rbac: &'a rbac::Rbac, msg: &Peek<'_>) -> Option<(String, &'a str)> {
    let target = msg.target()?;
    match msg.method.as_ref() {
        "tools/call" => rbac
            .tool_scope(target)
            .map(|s| (format!("tool:{target}"), s)),
        "resources/read" => rbac::resource_scope(target).map(|s| (format!("resource:{target}"), s)),
        _ => None,
    }
}

/// `Mcp-Method` and `Mcp-Name` against the body: the mismatch, said for the JSON-RPC error.
fn header_mismatch(headers: &HeaderMap, msg: &Peek<'_>) -> Option<String> {
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
