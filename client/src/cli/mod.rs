//! The `mcp-auth-client` commands: `demo`, `interactive`, `validate`, `login-device`.

pub mod demo;
pub mod device;
pub mod interactive;
pub mod ui;
pub mod validate;

/// The demo accounts of the local system (demo only: publicly known passwords).
pub const DEMO_USERS: [(&str, &str, &str); 4] = [
    ("admin", "admin123", "admin"),
    ("testuser", "TestPass123!", "user"),
    ("readonly", "ReadOnly123!", "readonly"),
    ("service_bot", "ServiceBot123!", "service"),
];

pub fn password_of(user: &str) -> &'static str {
    DEMO_USERS
        .iter()
        .find(|(u, _, _)| *u == user)
        .map(|(_, p, _)| *p)
        .unwrap_or("")
}
