//! `get_upstream_profile` (issue 26): the token vault shown end to end. Present only when an
//! upstream provider is configured (`MCP_UPSTREAM_PROVIDER`, `MCP_UPSTREAM_USERINFO_URL`) and
//! callable with its scope `upstream:<id>` (`rbac::Rbac`). It exchanges the caller's token at
//! the authorization server for the user's token of that provider (RFC 8693, `audience` = the
//! provider's id: released only to this server's client, for a user who allowed it) and calls
//! the provider's user-info endpoint with it. The caller's own token never leaves for the
//! provider, and the provider's token is never returned to the caller.

use rmcp::model::CallToolResult;
use rmcp::{ErrorData as McpError, tool, tool_router};

use crate::admin_tools::refused;
use crate::auth::Caller;
use crate::server::{McpServer, json_result, tool_error};

#[tool_router(router = upstream_router, vis = "pub(crate)")]
impl McpServer {
    #[tool(
        description = "Your profile at the identity provider you sign in with, read with your provider account (through this server's token vault)"
    )]
    async fn get_upstream_profile(&self, c: Caller) -> Result<CallToolResult, McpError> {
        let config = &self.state.config;
        let (Some(provider), Some(url)) = (
            config.upstream_provider.as_deref(),
            config.upstream_userinfo_url.as_deref(),
        ) else {
            return Ok(tool_error(
                "no upstream provider is configured on this server",
            ));
        };
        let authz = &self.state.authz;
        let token = match authz.exchange_upstream(c.token.expose(), provider).await {
            Ok(t) => t,
            Err(e) => return Ok(refused(e)),
        };
        match authz.upstream_userinfo(url, &token).await {
            Ok(profile) => Ok(json_result(
                serde_json::json!({ "provider": provider, "profile": profile }),
            )),
            Err(e) => Ok(refused(e)),
        }
    }
}
