//! What `/metrics` reports (Prometheus text format, on `AUTHZ_METRICS_BIND`): one
//! `prometheus-client` registry owned by the state (no global recorder, so every server in a
//! process, and every test, has its own).
//!
//! - `authz_http_requests_total{method,route,status}`, `authz_http_request_duration_seconds`
//!   (`shared::observe`);
//! - `authz_tokens_issued_total{grant}`;
//! - `authz_audit_events_total{kind,outcome}`: every audited event, so sign-in failures
//!   (`login.failed`), lockouts (`login.locked`), refresh reuse (`refresh.reuse_detected`),
//!   code replays (`code.replayed`), key and admin changes are all counted by the one rule
//!   that records them;
//! - `authz_rate_limited_total{limit}`: requests refused by a rate limit;
//! - `authz_security_events_queued_total{event}`: Shared Signals events queued;
//! - sampled when scraped: `authz_password_hash_waiting` (the hashing queue),
//!   `authz_db_connections` / `authz_db_connections_idle` (the pool) and
//!   `authz_rate_limit_checks_failed_open` (Redis unreachable).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use shared::observe::{CounterBy, HttpMetrics};

/// Values read from the running server at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct Samples {
    pub hash_waiting: usize,
    pub db_connections: u32,
    pub db_idle: usize,
    pub failed_open: u64,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http: Arc<HttpMetrics>,
    tokens: CounterBy,
    audit: CounterBy,
    rate_limited: CounterBy,
    security_events: CounterBy,
    hash_waiting: Gauge,
    db_connections: Gauge,
    db_idle: Gauge,
    failed_open: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("authz");
        let http = HttpMetrics::register(&mut registry);
        let r = &mut registry;
        let tokens = CounterBy::register(r, "tokens_issued", "Tokens issued by grant", &["grant"]);
        let audit = CounterBy::register(
            r,
            "audit_events",
            "Audited events by kind and outcome (sign-in failures, lockouts, refresh reuse, …)",
            &["kind", "outcome"],
        );
        let rate_limited = CounterBy::register(
            r,
            "rate_limited",
            "Requests refused by a rate limit",
            &["limit"],
        );
        let security_events = CounterBy::register(
            r,
            "security_events_queued",
            "Security events queued for receivers (one per receiver), by event type",
            &["event"],
        );
        let (hash_waiting, db_connections, db_idle) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let failed_open = Gauge::<u64, AtomicU64>::default();
        r.register(
            "password_hash_waiting",
            "Password hashes being computed or queued",
            hash_waiting.clone(),
        );
        r.register(
            "db_connections",
            "Database connections open in the pool",
            db_connections.clone(),
        );
        r.register(
            "db_connections_idle",
            "Idle database connections in the pool",
            db_idle.clone(),
        );
        r.register(
            "rate_limit_checks_failed_open",
            "Rate-limit checks let through because Redis did not answer (since start)",
            failed_open.clone(),
        );
        Self {
            registry,
            http,
            tokens,
            audit,
            rate_limited,
            security_events,
            hash_waiting,
            db_connections,
            db_idle,
            failed_open,
        }
    }

    pub fn token_issued(&self, grant: &str) {
        self.tokens.inc(&[grant]);
    }

    pub fn audited(&self, kind: &str, outcome: &str) {
        self.audit.inc(&[kind, outcome]);
    }

    pub(crate) fn security_events(&self, event: &str, receivers: u64) {
        self.security_events
            .inc_by(&[event.rsplit('/').next().unwrap_or(event)], receivers);
    }

    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.inc(&[limit]);
    }

    /// The text exposition, with the sampled values as they are now.
    pub fn render(&self, s: Samples) -> String {
        self.hash_waiting
            .set(i64::try_from(s.hash_waiting).unwrap_or(i64::MAX));
        self.db_connections.set(i64::from(s.db_connections));
        self.db_idle
            .set(i64::try_from(s.db_idle).unwrap_or(i64::MAX));
        self.failed_open.set(s.failed_open);
        shared::observe::render(&self.registry)
    }
}
