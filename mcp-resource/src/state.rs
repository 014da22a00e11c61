//! Application state shared by the HTTP layer and the MCP handlers.

use std::sync::Arc;

use shared::verifier::Verifier;

use crate::config::Config;
use crate::store::{AuditRow, Store};

#[derive(Debug)]
pub struct McpState {
    pub config: Config,
    pub store: Arc<Store>,
    /// Group-committed audit rows (see `shared::batch`).
    pub audit_log: shared::batch::BatchWriter<AuditRow>,
    pub verifier: Arc<Verifier>,
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
