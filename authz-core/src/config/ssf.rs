//! Configuration of the Shared Signals transmitter (`[ssf]`, `AUTHZ_SSF_*`): who receives
//! security events, how long a poll may wait, and how often a receiver may refuse an event.

use serde::Deserialize;

/// Who receives security events (`crate::events::ssf`), and how long a poll may wait.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SsfConfig {
    /// `AUTHZ_SSF_RECEIVERS` (comma-separated client ids): confidential clients that poll for
    /// security events, one stream each (default: the demo MCP server's client,
    /// `mcp-resource`). Empty: no events are queued.
    pub receivers: Vec<String>,
    /// `AUTHZ_SSF_LONG_POLL_SECS`: the longest a poll without `returnImmediately` waits for an
    /// event (at most 30).
    pub long_poll_secs: u64,
    /// `AUTHZ_SSF_MAX_SET_ERRORS`: how many times a receiver may refuse an event (`setErrs`)
    /// before it is dropped and audited (`ssf.event_dropped`); delivered again after each.
    pub max_set_errors: u32,
}

impl Default for SsfConfig {
    fn default() -> Self {
        Self {
            // The demo MCP server's client (`seed::DEMO_MCP_CLIENT`).
            receivers: vec!["mcp-resource".to_owned()],
            long_poll_secs: 10,
            max_set_errors: 5,
        }
    }
}
