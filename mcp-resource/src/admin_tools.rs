//! The administrative tools: API keys, logout, the audit log and the security summary. Each
//! one exchanges the caller's token at the authorization server for a short-lived
//! management-API token (`authz_client`) and calls `/api/v1` with it; the caller's own token is
//! never passed on. Scopes are enforced here too (the RBAC table), and the management API
//! checks them again against the exchanged token.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData as McpError, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::ScopeSet;

use crate::auth::Caller;
use crate::authz_client::AuthzError;
use crate::server::{McpServer, failed, json_result, tool_error};

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct NewApiKey {
    /// A name to recognise the key by (1–100 characters).
    pub name: String,
    /// Space-separated scopes for the key; only scopes you hold (e.g. "notes:read").
    pub scope: String,
    /// Days until the key expires (1–365, default 90).
    pub expires_in_days: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct KeyId {
    /// The key's id (`client_id`), as returned by create_api_key or list_api_keys.
    pub key_id: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct AuditFilter {
    /// Only events at or after this Unix time.
    pub from: Option<i64>,
    /// Only events at or before this Unix time.
    pub to: Option<i64>,
    /// Event type, e.g. "login.failed", "token.issued"; "mcp.call" for this server's own.
    pub kind: Option<String>,
    /// The acting username (authorization-server events).
    pub actor: Option<String>,
    /// "success" or "failure".
    pub outcome: Option<String>,
    /// Page size (1–200, default 50).
    pub limit: Option<i64>,
    /// Paging: the `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub(crate) struct Window {
    /// The window to count over, in seconds (60 – 31 622 400, default a day).
    pub window_secs: Option<i64>,
}

/// A management-API answer as the tool's result (its JSON, or the refusal as a tool error).
fn answer(r: Result<Value, CallToolResult>) -> CallToolResult {
    r.map(json_result).unwrap_or_else(|e| e)
}

pub(crate) fn refused(e: AuthzError) -> CallToolResult {
    match e {
        AuthzError::Refused {
            code, description, ..
        } => tool_error(format!(
            "refused by the authorization server ({code}): {description}"
        )),
        other => tool_error(other.to_string()),
    }
}

/// One management-API request (`GET` with no query or body unless said otherwise).
#[derive(Debug, Default)]
pub(crate) struct ApiCall<'a> {
    pub method: reqwest::Method,
    pub path: &'a str,
    pub query: &'a [(&'a str, String)],
    pub body: Option<&'a Value>,
}

impl McpServer {
    /// Exchange the caller's token for one carrying the scope `tool` declares (`rbac`), plus
    /// `extra`, then call the management API with it.
    pub(crate) async fn admin(
        &self,
        caller: &Caller,
        tool: &str,
        extra: &ScopeSet,
        call: ApiCall<'_>,
    ) -> Result<Value, CallToolResult> {
        let scope = self.state.rbac.exchange_scope(tool, extra);
        let authz = &self.state.authz;
        let token = authz
            .exchange(caller.token.expose(), scope.as_deref())
            .await
            .map_err(refused)?;
        authz
            .api(call.method, call.path, &token, call.query, call.body)
            .await
            .map_err(refused)
    }

    /// The security summary: the authorization server's counts plus this server's denials.
    pub(crate) async fn security_summary(
        &self,
        caller: &Caller,
        window_secs: Option<i64>,
    ) -> Result<Value, CallToolResult> {
        let window = window_secs.unwrap_or(86_400);
        let query = [("window_secs", window.to_string())];
        let mut summary = self
            .admin(
                caller,
                "get_security_summary",
                &ScopeSet::default(),
                ApiCall {
                    path: "/security/summary",
                    query: &query,
                    ..ApiCall::default()
                },
            )
            .await?;
        let denied = self
            .state
            .store
            .count_denied(self.state.now() - window)
            .await
            .map_err(|e| failed("reading this server's audit log", e))?;
        summary["counts"]["denied_tool_calls"] = json!(denied);
        summary["reported_by"] = json!(["authz", "mcp-resource"]);
        Ok(summary)
    }
}

#[tool_router(router = admin_router, vis = "pub(crate)")]
impl McpServer {
    #[tool(
        description = "Create an API key for your bots: a client_id and client_secret (shown once) for the client_credentials grant, carrying only the scopes you give it"
    )]
    async fn create_api_key(
        &self,
        c: Caller,
        Parameters(k): Parameters<NewApiKey>,
    ) -> Result<CallToolResult, McpError> {
        // The exchanged token carries the tool's scope plus the scopes the key asks for: the
        // authorization server grants those only if the caller's own token holds them, and
        // a key never gets more than the token that created it.
        let key_scope = match ScopeSet::parse(&k.scope) {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => return Ok(tool_error("give the key at least one scope")),
            Err(e) => return Ok(tool_error(format!("malformed scope: {e}"))),
        };
        let body = json!({ "name": k.name, "scope": key_scope.to_string(),
                           "expires_in_days": k.expires_in_days });
        Ok(answer(
            self.admin(
                &c,
                "create_api_key",
                &key_scope,
                ApiCall {
                    method: reqwest::Method::POST,
                    path: "/api-keys",
                    body: Some(&body),
                    ..ApiCall::default()
                },
            )
            .await,
        ))
    }

    #[tool(description = "List your API keys (never their secrets)")]
    async fn list_api_keys(&self, c: Caller) -> Result<CallToolResult, McpError> {
        Ok(answer(
            self.admin(
                &c,
                "list_api_keys",
                &ScopeSet::default(),
                ApiCall {
                    path: "/api-keys",
                    ..ApiCall::default()
                },
            )
            .await,
        ))
    }

    #[tool(description = "Revoke one of your API keys: it can get no new tokens")]
    async fn revoke_api_key(
        &self,
        c: Caller,
        Parameters(KeyId { key_id }): Parameters<KeyId>,
    ) -> Result<CallToolResult, McpError> {
        if key_id.is_empty()
            || key_id.len() > 64
            || !key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Ok(tool_error("no such API key"));
        }
        let path = format!("/api-keys/{key_id}");
        Ok(answer(
            self.admin(
                &c,
                "revoke_api_key",
                &ScopeSet::default(),
                ApiCall {
                    method: reqwest::Method::DELETE,
                    path: &path,
                    ..ApiCall::default()
                },
            )
            .await,
        ))
    }

    #[tool(
        description = "Sign out: ends this sign-in at the authorization server (refresh tokens stop working) and this server refuses its access tokens from now on"
    )]
    async fn logout(&self, c: Caller) -> Result<CallToolResult, McpError> {
        let Some(sid) = c.claims.sid.clone() else {
            return Ok(tool_error(
                "this token is not tied to a sign-in session (API keys and service tokens are revoked instead)",
            ));
        };
        let v = match self
            .admin(
                &c,
                "logout",
                &ScopeSet::default(),
                ApiCall {
                    method: reqwest::Method::DELETE,
                    path: "/sessions/current",
                    ..ApiCall::default()
                },
            )
            .await
        {
            Ok(v) => v,
            Err(e) => return Ok(e),
        };
        if let Err(e) = self.state.mark_logged_out(&sid).await {
            tracing::error!(error = %e, "recording a logout failed");
            return Ok(tool_error(
                "signed out at the authorization server, but this server could not record it; try again",
            ));
        }
        Ok(json_result(
            json!({ "logged_out": true, "session_ended": v["ended"] }),
        ))
    }

    #[tool(
        description = "Read the audit log: the authorization server's events and this server's tool calls, newest first, with filters and paging"
    )]
    async fn list_audit_events(
        &self,
        c: Caller,
        Parameters(f): Parameters<AuditFilter>,
    ) -> Result<CallToolResult, McpError> {
        let limit = f.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Ok(tool_error("limit must be between 1 and 200"));
        }
        // Both sources page by time: events strictly older than the cursor.
        let upper = match (f.to, f.cursor) {
            (Some(t), Some(c)) => Some(t.min(c - 1)),
            (t, c) => t.or(c.map(|c| c - 1)),
        };
        let mut query = vec![("limit", limit.to_string())];
        for (k, v) in [
            ("kind", &f.kind),
            ("actor", &f.actor),
            ("outcome", &f.outcome),
        ] {
            if let Some(v) = v.as_ref().filter(|v| v.as_str() != "mcp.call") {
                query.push((k, v.clone()));
            }
        }
        if let Some(from) = f.from {
            query.push(("from", from.to_string()));
        }
        if let Some(to) = upper {
            query.push(("to", to.to_string()));
        }
        let mut events: Vec<Value> = Vec::new();
        if f.kind.as_deref() != Some("mcp.call") {
            let remote = match self
                .admin(
                    &c,
                    "list_audit_events",
                    &ScopeSet::default(),
                    ApiCall {
                        path: "/audit",
                        query: &query,
                        ..ApiCall::default()
                    },
                )
                .await
            {
                Ok(v) => v,
                Err(e) => return Ok(e),
            };
            for mut e in remote["events"].as_array().cloned().unwrap_or_default() {
                e["source"] = json!("authz");
                events.push(e);
            }
        }
        let local_wanted = f.actor.is_none() && f.kind.as_deref().is_none_or(|k| k == "mcp.call");
        if local_wanted {
            let rows = match self
                .state
                .store
                .query_audit(f.from, upper.map(|u| u + 1), limit)
                .await
            {
                Ok(r) => r,
                Err(e) => return Ok(failed("reading this server's audit log", e)),
            };
            for r in rows {
                let outcome = if r.outcome == "allowed" {
                    "success"
                } else {
                    "failure"
                };
                if f.outcome.as_deref().is_some_and(|o| o != outcome) {
                    continue;
                }
                events.push(json!({
                    "source": "mcp-resource", "ts": r.ts, "kind": "mcp.call", "outcome": outcome,
                    "subject": r.subject, "client_id": r.client_id,
                    "details": { "action": r.action, "result": r.outcome, "reason": r.reason },
                }));
            }
        }
        events.sort_by_key(|e| std::cmp::Reverse(e["ts"].as_i64().unwrap_or(0)));
        events.truncate(limit as usize);
        let next = (events.len() as i64 == limit)
            .then(|| events.last().and_then(|e| e["ts"].as_i64()))
            .flatten();
        Ok(json_result(
            json!({ "events": events, "next_cursor": next }),
        ))
    }

    #[tool(
        description = "Security summary over a window: sign-ins, failures, lockouts, tokens by grant, refresh-token reuse, active sessions and keys, denied tool calls"
    )]
    async fn get_security_summary(
        &self,
        c: Caller,
        Parameters(w): Parameters<Window>,
    ) -> Result<CallToolResult, McpError> {
        Ok(answer(self.security_summary(&c, w.window_secs).await))
    }
}
