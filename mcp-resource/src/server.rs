//! The MCP server: tools and resources, each gated by its scope (the HTTP layer already refused
//! calls without it; this checks again so the handlers are safe on their own). `tools/list`
//! shows only what the caller may call. Tool failures are MCP tool errors with a helpful
//! message, never a panic or an HTTP 500.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
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
use crate::rbac::{self, PROFILE_URI, SUMMARY_URI};
use crate::state::McpState;

pub(crate) const MAX_TITLE_CHARS: usize = 200;
pub(crate) const MAX_CONTENT_CHARS: usize = 20_000;

#[derive(Clone)]
pub(crate) struct McpServer {
    pub(crate) state: Arc<McpState>,
    tool_router: Arc<ToolRouter<Self>>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpServer")
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CreateNote {
    /// Title, 1–200 characters, one line.
    pub title: String,
    /// Content, 1–20000 characters.
    pub content: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct NoteId {
    /// The note's id, as returned by create_secure_note or list_secure_notes.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct ListNotes {
    /// How many notes to return, newest first (1–100, default 50).
    pub limit: Option<i64>,
}

fn caller_ctx(ctx: &RequestContext<RoleServer>) -> Option<Caller> {
    Caller::of(&ctx.extensions)
}

/// The caller, which the token middleware always sets; its absence is a server fault.
fn require_caller(ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
    caller_ctx(ctx).ok_or_else(|| McpError::internal_error("unauthenticated request", None))
}

/// Longest tool name or resource URI kept in an audit row or echoed in an error (the body
/// limit is 1 MiB; names are never that long, attackers' are).
pub(crate) const MAX_NAME_CHARS: usize = 64;

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

/// A failed operation as the tool's answer: the cause logged, the caller told what failed.
pub(crate) fn failed(what: &str, cause: impl std::fmt::Display) -> CallToolResult {
    tracing::error!(error = %cause, "{what} failed");
    tool_error(format!("{what} failed; try again later"))
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
        let tools = Self::tool_router() + Self::admin_router();
        // The vault's tool only when a provider is configured (`rbac::Rbac` too).
        let tools = if state.config.upstream_provider.is_some() {
            tools + Self::upstream_router()
        } else {
            tools
        };
        Self {
            state,
            tool_router: Arc::new(tools),
        }
    }

    #[tool(
        description = "Who is calling: subject, username, roles, scopes, client and token expiry"
    )]
    async fn get_user_profile(&self, c: Caller) -> Result<CallToolResult, McpError> {
        Ok(json_result(profile(&c)))
    }

    #[tool(description = "Store a note only you can read, encrypted at rest")]
    async fn create_secure_note(
        &self,
        c: Caller,
        Parameters(CreateNote { title, content }): Parameters<CreateNote>,
    ) -> Result<CallToolResult, McpError> {
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
            Err(e) => Ok(failed("storing the note", e)),
        }
    }

    #[tool(description = "List your notes, newest first: id, title, creation time")]
    async fn list_secure_notes(
        &self,
        c: Caller,
        Parameters(ListNotes { limit }): Parameters<ListNotes>,
    ) -> Result<CallToolResult, McpError> {
        let limit = limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Ok(tool_error("limit must be between 1 and 100"));
        }
        match self.state.store.list_notes(&c.claims.sub, limit).await {
            Ok(notes) => Ok(json_result(serde_json::json!({ "notes": notes }))),
            Err(e) => Ok(failed("reading the notes", e)),
        }
    }

    #[tool(description = "Read one of your notes by id")]
    async fn get_secure_note(
        &self,
        c: Caller,
        Parameters(NoteId { id }): Parameters<NoteId>,
    ) -> Result<CallToolResult, McpError> {
        if id.len() > 64 {
            return Ok(tool_error("no such note"));
        }
        match self.state.store.get_note(&c.claims.sub, &id).await {
            // Someone else's note is reported exactly like a missing one.
            Ok(None) => Ok(tool_error(format!(
                "no note with id {id:?} among your notes"
            ))),
            Ok(Some(n)) => Ok(json_result(serde_json::to_value(n).unwrap_or_default())),
            Err(e) => Ok(failed("reading the note", e)),
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
            .filter_map(|mut t| {
                let needed = self.state.rbac.tool_scope(&t.name)?;
                let allowed = caller
                    .as_ref()
                    .is_some_and(|c| rbac::allows(&c.scopes, needed));
                // The scope is declared once (`rbac`); the description says it from there.
                let described = format!(
                    "{} {}",
                    t.description.as_deref().unwrap_or_default(),
                    rbac::needs(needed)
                );
                t.description = Some(described.into());
                allowed.then_some(t)
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
        match self.state.rbac.tool_scope(&request.name) {
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
        let resources = rbac::RESOURCES
            .iter()
            .filter(|r| {
                caller
                    .as_ref()
                    .is_some_and(|c| rbac::allows(&c.scopes, r.scope))
            })
            .map(|r| {
                Resource::new(r.uri, r.name)
                    .with_description(format!("{} {}", r.description, rbac::needs(r.scope)))
                    .with_mime_type("application/json")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = require_caller(&ctx)?;
        let action = audit_action("resource", &request.uri);
        let Some(decl) = rbac::resource(&request.uri) else {
            // SEP-2164: Invalid Params (not the legacy -32002), the URI asked for in `data`.
            return Err(McpError::invalid_params(
                format!("unknown resource {}", clip(&request.uri)),
                Some(serde_json::json!({ "uri": request.uri })),
            ));
        };
        let scope = decl.scope;
        if !rbac::allows(&caller.scopes, scope) {
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
        let body = match decl.uri {
            PROFILE_URI => profile(&caller),
            SUMMARY_URI => match self.security_summary(&caller, None).await {
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
            },
            other => {
                // Declared in `rbac::RESOURCES` but not served here: a server fault.
                return Err(McpError::internal_error(
                    format!("resource {other} has no handler"),
                    None,
                ));
            }
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
