//! The one declaration of what each tool and resource needs (the RBAC table of `README.md`).
//! Everything else is derived from it: the HTTP layer's pre-check, the handlers' re-check,
//! `tools/list` and `resources/list` filtering, the "(needs …)" in every description, the
//! scopes of the token exchanged for an administrative tool, and RFC 9728 `scopes_supported`.
//! An empty scope means any valid token (`logout`).

use shared::ScopeSet;

/// Tool name → required scope.
pub const TOOLS: &[(&str, &str)] = &[
    ("get_user_profile", "profile:read"),
    ("create_secure_note", "notes:write"),
    ("list_secure_notes", "notes:read"),
    ("get_secure_note", "notes:read"),
    ("create_api_key", "keys:write"),
    ("list_api_keys", "keys:write"),
    ("revoke_api_key", "keys:write"),
    ("logout", ""),
    ("list_audit_events", "audit:read"),
    ("get_security_summary", "security:read"),
];

/// A resource this server serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResourceDecl {
    pub uri: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub scope: &'static str,
}

pub(crate) const PROFILE_URI: &str = "user://profile";
pub(crate) const SUMMARY_URI: &str = "security://summary";

/// Every resource, with its scope.
pub(crate) const RESOURCES: &[ResourceDecl] = &[
    ResourceDecl {
        uri: PROFILE_URI,
        name: "profile",
        description: "The calling user's profile",
        scope: "profile:read",
    },
    ResourceDecl {
        uri: SUMMARY_URI,
        name: "security summary",
        description: "Security counts over the last day",
        scope: "security:read",
    },
];

/// The table in force: [`TOOLS`], plus `get_upstream_profile` needing `upstream:<id>` when an
/// upstream provider's token vault is configured (`MCP_UPSTREAM_PROVIDER`). Built once at
/// start (`McpState::rbac`); every check reads it.
#[derive(Debug, Clone)]
pub struct Rbac {
    tools: Vec<(&'static str, String)>,
}

/// The tool that shows the token vault end to end.
pub(crate) const UPSTREAM_TOOL: &str = "get_upstream_profile";

impl Rbac {
    pub fn new(upstream_provider: Option<&str>) -> Self {
        let mut tools: Vec<(&'static str, String)> =
            TOOLS.iter().map(|(t, s)| (*t, (*s).to_owned())).collect();
        if let Some(id) = upstream_provider {
            tools.push((UPSTREAM_TOOL, format!("upstream:{id}")));
        }
        Self { tools }
    }

    /// The scope `name` needs (empty: any valid token); `None` for no such tool.
    pub(crate) fn tool_scope(&self, name: &str) -> Option<&str> {
        self.tools
            .iter()
            .find(|(t, _)| *t == name)
            .map(|(_, s)| s.as_str())
    }

    /// The scope to ask for when exchanging the caller's token for `tool`: the tool's own
    /// scope plus `extra` (none for a tool any valid token may call: the exchange then keeps
    /// the subject token's scopes, RFC 8693 §2.1).
    pub(crate) fn exchange_scope(&self, tool: &str, extra: &ScopeSet) -> Option<String> {
        let mut scope = extra.clone();
        if let Some(s) = self
            .tool_scope(tool)
            .and_then(|s| shared::Scope::new(s).ok())
        {
            scope.insert(s);
        }
        (!scope.is_empty()).then(|| scope.to_string())
    }

    /// Every scope this server understands (for RFC 9728 `scopes_supported`).
    pub(crate) fn scopes_supported(&self) -> ScopeSet {
        ScopeSet::from_tokens(
            self.tools
                .iter()
                .map(|(_, s)| s.as_str())
                .chain(RESOURCES.iter().map(|r| r.scope))
                .filter(|s| !s.is_empty()),
        )
        .unwrap_or_default()
    }
}

pub(crate) fn resource(uri: &str) -> Option<&'static ResourceDecl> {
    RESOURCES.iter().find(|r| r.uri == uri)
}

pub(crate) fn resource_scope(uri: &str) -> Option<&'static str> {
    resource(uri).map(|r| r.scope)
}

/// Does a token with `scopes` satisfy `needed` (empty: any valid token)?
pub(crate) fn allows(scopes: &ScopeSet, needed: &str) -> bool {
    needed.is_empty() || scopes.contains(needed)
}

/// What a description says about its scope.
pub(crate) fn needs(scope: &str) -> String {
    if scope.is_empty() {
        "(any valid token)".to_owned()
    } else {
        format!("(needs {scope})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_asks_for_the_tools_own_scope() {
        let rbac = Rbac::new(None);
        let exchange_scope = |t: &str, e: &ScopeSet| rbac.exchange_scope(t, e);
        let none = ScopeSet::default();
        assert_eq!(
            exchange_scope("list_api_keys", &none).as_deref(),
            Some("keys:write")
        );
        assert_eq!(
            exchange_scope("list_audit_events", &none).as_deref(),
            Some("audit:read")
        );
        // Any-token tools keep the subject token's scopes; unknown tools ask for nothing extra.
        assert_eq!(exchange_scope("logout", &none), None);
        assert_eq!(exchange_scope("no_such_tool", &none), None);
        let key = ScopeSet::parse("notes:read").unwrap();
        assert_eq!(
            exchange_scope("create_api_key", &key).as_deref(),
            Some("keys:write notes:read")
        );
    }

    #[test]
    fn every_declared_scope_is_supported_and_every_resource_is_found() {
        let rbac = Rbac::new(None);
        let supported = rbac.scopes_supported();
        for (tool, scope) in TOOLS {
            assert!(scope.is_empty() || supported.contains(scope), "{tool}");
            assert_eq!(rbac.tool_scope(tool), Some(*scope));
        }
        // The vault's tool only with a provider, needing its scope.
        assert_eq!(rbac.tool_scope(UPSTREAM_TOOL), None);
        let with = Rbac::new(Some("corp"));
        assert_eq!(with.tool_scope(UPSTREAM_TOOL), Some("upstream:corp"));
        assert!(with.scopes_supported().contains("upstream:corp"));
        for r in RESOURCES {
            assert_eq!(resource(r.uri).map(|d| d.scope), Some(r.scope));
        }
        assert!(resource("user://other").is_none());
    }
}
