//! Which scope each tool and resource needs (the RBAC table of `docs/architecture.md`).

use shared::ScopeSet;

/// Tool name → required scope.
pub const TOOLS: &[(&str, &str)] = &[
    ("get_user_profile", "profile:read"),
    ("create_secure_note", "notes:write"),
    ("list_secure_notes", "notes:read"),
    ("get_secure_note", "notes:read"),
];

/// Resource URI → required scope.
pub const RESOURCES: &[(&str, &str)] = &[("user://profile", "profile:read")];

pub fn tool_scope(name: &str) -> Option<&'static str> {
    TOOLS.iter().find(|(t, _)| *t == name).map(|(_, s)| *s)
}

pub fn resource_scope(uri: &str) -> Option<&'static str> {
    RESOURCES.iter().find(|(r, _)| *r == uri).map(|(_, s)| *s)
}

/// Every scope this server understands (for RFC 9728 `scopes_supported`).
pub fn scopes_supported() -> ScopeSet {
    ScopeSet::from_tokens(TOOLS.iter().chain(RESOURCES).map(|(_, s)| *s)).unwrap_or_default()
}
