//! RFC 9728 protected-resource metadata, at `/.well-known/oauth-protected-resource` and at the
//! path-suffixed form for the MCP endpoint (`…/oauth-protected-resource/mcp`). Public (CORS).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use shared::cors::Origins;

use crate::state::McpState;

pub(crate) fn router(state: &McpState) -> Router<Arc<McpState>> {
    let suffixed = format!(
        "/.well-known/oauth-protected-resource{}",
        state.config.mcp_path()
    );
    let routes = Router::new()
        .route("/.well-known/oauth-protected-resource", get(metadata))
        .route(&suffixed, get(metadata));
    // Public metadata: any origin may read it.
    crate::origin::cors(Origins::Any, &[Method::GET]).apply(routes)
}

async fn metadata(State(state): State<Arc<McpState>>) -> Response {
    let scopes: Vec<String> = state
        .rbac
        .scopes_supported()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let body = serde_json::json!({
        "resource": state.config.resource_url,
        // Byte-identical to the issuer this server trusts.
        "authorization_servers": [state.config.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        // RFC 9728 §2 / RFC 9449 §5.1: proofs this server verifies, and whether Bearer
        // tokens are refused (`MCP_DPOP_REQUIRED`).
        "dpop_signing_alg_values_supported": shared::dpop::SUPPORTED_ALGS,
        "dpop_bound_access_tokens_required": state.config.dpop_required,
        "resource_name": "Secure notes MCP server",
    });
    let mut r = Json(body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}
