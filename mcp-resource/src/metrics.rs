//! What `/metrics` reports (Prometheus text format, on `MCP_METRICS_BIND`), from a registry
//! owned by the state:
//!
//! - `mcp_http_requests_total{method,route,status}`, `mcp_http_request_duration_seconds`
//!   (`shared::observe`);
//! - `mcp_refusals_total{kind}`: requests refused before the MCP handler (`no_token`,
//!   `token_not_in_header`, `invalid_token`, `insufficient_scope`, `too_many`,
//!   `keys_unavailable`, `too_large`);
//! - `mcp_token_verification_failures_total{reason}`: why tokens failed verification
//!   (`expired`, `bad_signature`, `unknown_key`, `wrong_audience`, …, and `revoked`: refused by a revocation rule, `signals`);
//! - `mcp_rate_limited_total{limit}` (`ip`, `caller`);
//! - sampled when scraped: `mcp_jwks_fetches` (fetches of the issuer's keys since start) and
//!   `mcp_rate_limit_checks_failed_open`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use shared::observe::{CounterBy, HttpMetrics};

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http: Arc<HttpMetrics>,
    refusals: CounterBy,
    failures: CounterBy,
    rate_limited: CounterBy,
    jwks_fetches: Gauge<u64, AtomicU64>,
    failed_open: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mcp");
        let http = HttpMetrics::register(&mut registry);
        let r = &mut registry;
        let refusals = CounterBy::register(
            r,
            "refusals",
            "Requests refused before the MCP handler, by kind",
            &["kind"],
        );
        let failures = CounterBy::register(
            r,
            "token_verification_failures",
            "Tokens that failed verification, by reason",
            &["reason"],
        );
        let rate_limited = CounterBy::register(
            r,
            "rate_limited",
            "Requests refused by a rate limit",
            &["limit"],
        );
        let jwks_fetches = Gauge::<u64, AtomicU64>::default();
        let failed_open = Gauge::<u64, AtomicU64>::default();
        r.register(
            "jwks_fetches",
            "Fetches of the issuer's JWKS since start",
            jwks_fetches.clone(),
        );
        r.register(
            "rate_limit_checks_failed_open",
            "Rate-limit checks let through because Redis did not answer (since start)",
            failed_open.clone(),
        );
        Self {
            registry,
            http,
            refusals,
            failures,
            rate_limited,
            jwks_fetches,
            failed_open,
        }
    }

    pub fn refused(&self, kind: &str) {
        self.refusals.inc(&[kind]);
    }

    pub fn verification_failed(&self, reason: &str) {
        self.failures.inc(&[reason]);
    }

    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.inc(&[limit]);
    }

    /// The text exposition, with the sampled values as they are now.
    pub fn render(&self, jwks_fetches: u64, failed_open: u64) -> String {
        self.jwks_fetches.set(jwks_fetches);
        self.failed_open.set(failed_open);
        shared::observe::render(&self.registry)
    }
}
