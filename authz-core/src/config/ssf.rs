//! Configuration of the Shared Signals transmitter (`[ssf]`, `AUTHZ_SSF_*`): who receives
//! security events, how long a poll may wait, and how often a receiver may refuse an event.

use super::table::section;

section! {
    /// Who receives security events (`crate::events::ssf`), and how long a poll may wait.
    #[serde(default, deny_unknown_fields)]
    pub struct SsfConfig at "ssf" {
        /// Confidential clients (comma-separated client ids) that poll `/ssf/poll` for security
        /// events (session revoked, account disabled, credential changed), one stream each
        /// (default: the demo MCP server's client, `seed::DEMO_MCP_CLIENT`). Empty: no events
        /// are queued.
        receivers: Vec<String> = vec!["mcp-resource".to_owned()];
        /// The longest a poll without `returnImmediately` waits for an event (at most 30).
        long_poll_secs: u64 = 10;
        /// How many times a receiver may refuse an event (`setErrs`) before it is dropped and
        /// audited (`ssf.event_dropped`); delivered again after each.
        max_set_errors: u32 = 5;
    }
}
