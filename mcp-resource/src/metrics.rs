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

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use shared::observe::HttpMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http: Arc<HttpMetrics>,
    refusals: Family<KindLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
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
        let refusals = Family::default();
        let failures = Family::default();
        let rate_limited = Family::default();
        let jwks_fetches = Gauge::<u64, AtomicU64>::default();
        let failed_open = Gauge::<u64, AtomicU64>::default();
        let r = &mut registry;
        r.register(
            "refusals",
            "Requests refused before the MCP handler, by kind",
            refusals.clone(),
        );
        r.register(
            "token_verification_failures",
            "Tokens that failed verification, by reason",
            failures.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
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
        self.refusals
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn verification_failed(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                limit: limit.to_owned(),
            })
            .inc();
    }

    /// The text exposition, with the sampled values as they are now.
    pub fn render(&self, jwks_fetches: u64, failed_open: u64) -> String {
        self.jwks_fetches.set(jwks_fetches);
        self.failed_open.set(failed_open);
        shared::observe::render(&self.registry)
    }
}
