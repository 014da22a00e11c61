//! Application state shared by the HTTP layer and the MCP handlers.

use std::sync::Arc;

use shared::verifier::Verifier;

use crate::auth::SessionOwners;
use crate::config::Config;
use crate::store::Store;

#[derive(Debug)]
pub struct McpState {
    pub config: Config,
    pub store: Store,
    pub verifier: Arc<Verifier>,
    pub sessions: SessionOwners,
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
