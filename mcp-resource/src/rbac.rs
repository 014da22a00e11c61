//! Which scope each tool and resource needs (the RBAC table of `README.md`). An empty scope
//! means any valid token (`logout`).

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

/// Resource URI → required scope.
pub const RESOURCES: &[(&str, &str)] = &[
    ("user://profile", "profile:read"),
    ("security://summary", "security:read"),
];

pub fn tool_scope(name: &str) -> Option<&'static str> {
    TOOLS.iter().find(|(t, _)| *t == name).map(|(_, s)| *s)
}

pub fn resource_scope(uri: &str) -> Option<&'static str> {
    RESOURCES.iter().find(|(r, _)| *r == uri).map(|(_, s)| *s)
}

/// Does a token with `scopes` satisfy `needed` (empty: any valid token)?
pub fn allows(scopes: &ScopeSet, needed: &str) -> bool {
    needed.is_empty() || scopes.contains(needed)
}

/// Every scope this server understands (for RFC 9728 `scopes_supported`).
pub fn scopes_supported() -> ScopeSet {
    ScopeSet::from_tokens(
        TOOLS
            .iter()
            .chain(RESOURCES)
            .map(|(_, s)| *s)
            .filter(|s| !s.is_empty()),
    )
    .unwrap_or_default()
}
