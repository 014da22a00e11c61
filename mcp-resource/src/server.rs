//! The MCP server: tools and resources, each gated by its scope (the HTTP layer already refused
//! calls without it; this checks again so the handlers are safe on their own). `tools/list`
//! shows only what the caller may call. Tool failures are MCP tool errors with a helpful
//! message, never a panic or an HTTP 500.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{Extension, ToolCallContext};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    Implementation, ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::auth::Caller;
use crate::rbac;
use crate::state::McpState;

pub const PROFILE_URI: &str = "user://profile";
pub const SUMMARY_URI: &str = "security://summary";
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_CONTENT_CHARS: usize = 20_000;

#[derive(Clone)]
pub struct McpServer {
    pub(crate) state: Arc<McpState>,
    tool_router: Arc<ToolRouter<Self>>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpServer")
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateNote {
    /// Title, 1–200 characters, one line.
    pub title: String,
    /// Content, 1–20000 characters.
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoteId {
    /// The note's id, as returned by create_secure_note or list_secure_notes.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListNotes {
    /// How many notes to return, newest first (1–100, default 50).
    pub limit: Option<i64>,
}

pub(crate) fn caller_of(parts: &http::request::Parts) -> Result<Caller, McpError> {
    parts
        .extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| McpError::internal_error("unauthenticated request", None))
}

fn caller_ctx(ctx: &RequestContext<RoleServer>) -> Option<Caller> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Caller>())
        .cloned()
}

/// The caller, which the token middleware always sets; its absence is a server fault.
fn require_caller(ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    caller_ctx(ctx).ok_or_else(|| McpError::internal_error("unauthenticated request", None))
}

/// Longest tool name or resource URI kept in an audit row or echoed in an error (the body
/// limit is 1 MiB; names are never that long, attackers' are).
pub const MAX_NAME_CHARS: usize = 64;

/// At most `MAX_NAME_CHARS` characters of a caller-chosen name, marked when cut.
pub(crate) fn clip(name: &str) -> String {
    match name.char_indices().nth(MAX_NAME_CHARS) {
        None => name.to_owned(),
        Some((i, _)) => format!("{}…", &name[..i]),
    }
}

/// The audit action for a call: `kind:name`, the name clipped.
pub(crate) fn audit_action(kind: &str, name: &str) -> String {
    format!("{kind}:{}", clip(name))
}

pub(crate) fn json_result(value: serde_json::Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(value.to_string())])
}

pub(crate) fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn profile(c: &Caller) -> serde_json::Value {
    serde_json::json!({
        "subject": c.claims.sub,
        "username": c.claims.preferred_username,
        "roles": c.claims.roles,
        "scopes": c.scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        "client_id": c.claims.client_id,
        "token_expires_at": c.claims.exp,
    })
}

/// Validate a title and content; the message says exactly what to fix.
fn validate_note(title: &str, content: &str) -> Result<(), String> {
    let t = title.trim();
    if t.is_empty() {
        return Err("title must not be empty".into());
    }
    if t.chars().count() > MAX_TITLE_CHARS {
        return Err(format!("title is longer than {MAX_TITLE_CHARS} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("title must be a single line without control characters".into());
    }
    if content.trim().is_empty() {
        return Err("content must not be empty".into());
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(format!(
            "content is longer than {MAX_CONTENT_CHARS} characters"
        ));
    }
    if content
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("content must not contain control characters".into());
    }
    Ok(())
}

#[tool_router]
impl McpServer {
    pub fn new(state: Arc<McpState>) -> Self {
        Self {
            state,
            tool_router: Arc::new(Self::tool_router() + Self::admin_router()),
        }
    }

    #[tool(
        description = "Who is calling: subject, username, roles, scopes, client and token expiry (needs profile:read)"
    )]
    async fn get_user_profile(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<CallToolResult, McpError> {
        let c = caller_of(&parts)?;
        Ok(json_result(profile(&c)))
    }

    #[tool(description = "Store a note only you can read, encrypted at rest (needs notes:write)")]
    async fn create_secure_note(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(CreateNote { title, content }): Parameters<CreateNote>,
    ) -> Result<CallToolResult, McpError> {
        let c = caller_of(&parts)?;
        if let Err(msg) = validate_note(&title, &content) {
            return Ok(tool_error(format!("invalid note: {msg}")));
        }
        match self
            .state
            .store
            .create_note(&c.claims.sub, title.trim(), &content, self.state.now())
            .await
        {
            Ok(n) => Ok(json_result(
                serde_json::json!({ "id": n.id, "title": n.title, "created_at": n.created_at }),
            )),
            Err(e) => {
                tracing::error!(error = %e, "create_secure_note failed");
                Ok(tool_error("the note could not be stored; try again later"))
            }
        }
    }

    #[tool(
        description = "List your notes, newest first: id, title, creation time (needs notes:read)"
    )]
    async fn list_secure_notes(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(ListNotes { limit }): Parameters<ListNotes>,
    ) -> Result<CallToolResult, McpError> {
        let c = caller_of(&parts)?;
        let limit = limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Ok(tool_error("limit must be between 1 and 100"));
        }
        match self.state.store.list_notes(&c.claims.sub, limit).await {
            Ok(notes) => Ok(json_result(serde_json::json!({ "notes": notes }))),
            Err(e) => {
                tracing::error!(error = %e, "list_secure_notes failed");
                Ok(tool_error("notes could not be read; try again later"))
            }
        }
    }

    #[tool(description = "Read one of your notes by id (needs notes:read)")]
    async fn get_secure_note(
        &self,
        Extension(parts): Extension<http::request::Parts>,
        Parameters(NoteId { id }): Parameters<NoteId>,
    ) -> Result<CallToolResult, McpError> {
        let c = caller_of(&parts)?;
        if id.len() > 64 {
            return Ok(tool_error("no such note"));
        }
        match self.state.store.get_note(&c.claims.sub, &id).await {
            // Someone else's note is reported exactly like a missing one.
            Ok(None) => Ok(tool_error(format!(
                "no note with id {id:?} among your notes"
            ))),
            Ok(Some(n)) => Ok(json_result(serde_json::to_value(n).unwrap_or_default())),
            Err(e) => {
                tracing::error!(error = %e, "get_secure_note failed");
                Ok(tool_error("the note could not be read; try again later"))
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("mcp-resource", env!("CARGO_PKG_VERSION")))
            .with_instructions("Secure notes. Each tool needs an OAuth scope; tools/list shows the ones your token allows.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = caller_ctx(&ctx);
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| {
                let needed = rbac::tool_scope(&t.name);
                caller
                    .as_ref()
                    .is_some_and(|c| needed.is_some_and(|s| rbac::allows(&c.scopes, s)))
            })
            .collect();
        let mut result = ListToolsResult::with_all_items(tools);
        if ctx
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
        {
            // The list depends on the caller: never share it between callers.
            result = result.with_ttl_ms(0).with_cache_scope(CacheScope::Private);
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = require_caller(&ctx)?;
        let action = audit_action("tool", &request.name);
        match rbac::tool_scope(&request.name) {
            Some(scope) if !rbac::allows(&caller.scopes, scope) => {
                self.state
                    .audit(
                        Some(&caller),
                        &action,
                        "denied",
                        Some(format!("missing scope {scope}")),
                    )
                    .await;
                return Ok(tool_error(format!("{} requires scope {scope}", request.name)).into());
            }
            None => {
                self.state
                    .audit(
                        Some(&caller),
                        &action,
                        "denied",
                        Some("unknown tool".into()),
                    )
                    .await;
                return Ok(tool_error(format!("unknown tool {:?}", clip(&request.name))).into());
            }
            Some(_) => {}
        }
        let response = self
            .tool_router
            .call(ToolCallContext::new(self, request, ctx))
            .await;
        let (outcome, reason) = match &response {
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                ("error", Some("tool error".to_owned()))
            }
            Ok(_) => ("allowed", None),
            Err(e) => ("error", Some(e.message.to_string())),
        };
        self.state
            .audit(Some(&caller), &action, outcome, reason)
            .await;
        response
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = caller_ctx(&ctx);
        let has = |s: &str| caller.as_ref().is_some_and(|c| c.scopes.contains(s));
        let mut resources = Vec::new();
        if has("profile:read") {
            resources.push(
                Resource::new(PROFILE_URI, "profile")
                    .with_description("The calling user's profile (needs profile:read)")
                    .with_mime_type("application/json"),
            );
        }
        if has("security:read") {
            resources.push(
                Resource::new(SUMMARY_URI, "security summary")
                    .with_description("Security counts over the last day (needs security:read)")
                    .with_mime_type("application/json"),
            );
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = require_caller(&ctx)?;
        let action = audit_action("resource", &request.uri);
        let Some(scope) = rbac::resource_scope(&request.uri) else {
            return Err(McpError::resource_not_found(
                format!("unknown resource {}", clip(&request.uri)),
                None,
            ));
        };
        if !caller.scopes.contains(scope) {
            self.state
                .audit(
                    Some(&caller),
                    &action,
                    "denied",
                    Some(format!("missing scope {scope}")),
                )
                .await;
            return Err(McpError::invalid_request(
                format!("{} requires scope {scope}", request.uri),
                None,
            ));
        }
        let body = if request.uri == SUMMARY_URI {
            match self.security_summary(&caller, None).await {
                Ok(v) => v,
                Err(e) => {
                    self.state
                        .audit(
                            Some(&caller),
                            &action,
                            "error",
                            Some("summary unavailable".into()),
                        )
                        .await;
                    let msg = e
                        .content
                        .iter()
                        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                        .collect::<String>();
                    return Err(McpError::internal_error(msg, None));
                }
            }
        } else {
            profile(&caller)
        };
        self.state
            .audit(Some(&caller), &action, "allowed", None)
            .await;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(body.to_string(), request.uri.clone())
                .with_mime_type("application/json"),
        ])
        .into())
    }
}
