//! What an operator reads, the same on both servers: log lines as text or JSON
//! (`AUTHZ_LOG_FORMAT` / `MCP_LOG_FORMAT`), and a request id on every request.
//!
//! - **Request ids.** [`request_id`] (middleware) takes the caller's `X-Request-Id` when it is
//!   a sane token (1–64 of `A-Z a-z 0-9 . _ -`: a balancer's or a client's id, so one id
//!   follows a request through every hop) and makes a random one otherwise, returns it as
//!   `X-Request-Id`, and runs the request inside a `request` span carrying it, so every line
//!   logged while serving the request names it. One access line per request (target `access`:
//!   method, route, status, milliseconds) closes it; `AUTHZ_LOG=info,access=warn` silences
//!   those.
//! - **Request metrics.** The same middleware counts each request by method, matched route and
//!   status, and observes its latency per route, in the server's [`HttpMetrics`] (a
//!   `prometheus-client` registry owned by the server's state: no global recorder).
//! - **Nothing secret.** The access line names the matched route (`/api/v1/users/{id}`), never
//!   the query string (authorization requests, callbacks) or header values.

use std::sync::Arc;
#[cfg(feature = "http")]
use std::time::Instant;

#[cfg(feature = "http")]
use axum::extract::{MatchedPath, Request, State};
#[cfg(feature = "http")]
use axum::http::HeaderValue;
#[cfg(feature = "http")]
use axum::middleware::Next;
#[cfg(feature = "http")]
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
#[cfg(feature = "http")]
use tracing::Instrument;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Requests and their latency, registered in a server's registry.
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let m = Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        };
        registry.register(
            "http_requests",
            "HTTP requests by method, matched route and status",
            m.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by matched route",
            m.latency.clone(),
        );
        Arc::new(m)
    }

    #[cfg(feature = "http")]
    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}

/// A counter family with fixed label names (`tokens_issued_total{grant}`), the one shape of
/// every event counter of both servers.
#[derive(Debug)]
pub struct CounterBy {
    labels: &'static [&'static str],
    family: Family<Vec<(&'static str, String)>, Counter>,
}

impl CounterBy {
    /// Register `name` (the `_total` suffix is added) with `help` and these label names.
    pub fn register(
        registry: &mut Registry,
        name: &str,
        help: &str,
        labels: &'static [&'static str],
    ) -> Self {
        let family = Family::default();
        registry.register(name, help, family.clone());
        Self { labels, family }
    }

    /// Add `n` for these label values (in the order of the names).
    pub fn inc_by(&self, values: &[&str], n: u64) {
        let set: Vec<(&'static str, String)> = self
            .labels
            .iter()
            .zip(values)
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        self.family.get_or_create(&set).inc_by(n);
    }

    pub fn inc(&self, values: &[&str]) {
        self.inc_by(values, 1);
    }
}

/// The registry in Prometheus text format (`/metrics`).
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

/// The header, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's json layer): fields, the current span
    /// (with the request id) and its parents.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?}: expected text or json")),
        }
    }
}

/// Install the global subscriber: `filter` (an `EnvFilter` directive string, overridden by
/// `RUST_LOG`) plus `extra` directives that always win, written to stderr in `format`.
pub fn init_logging(filter: &str, extra: &[&str], format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(filter));
    for directive in extra {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// A caller's id is kept when it is short and plain (it is echoed and logged).
#[cfg(feature = "http")]
fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The request id of `req`: the caller's when acceptable, else a fresh random one.
#[cfg(feature = "http")]
pub fn id_of(req: &Request) -> String {
    match req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()) {
        Some(id) if acceptable(id) => id.to_owned(),
        _ => crate::crypto::random_id(""),
    }
}

/// Middleware: the request id, its span, the access line, the request metrics and the
/// response header.
#[cfg(feature = "http")]
pub async fn request_id(
    State(metrics): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let id = id_of(&req);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    metrics.observe(method.as_str(), &route, status, seconds);
    span.in_scope(|| {
        tracing::info!(
            target: "access",
            %method,
            route,
            status,
            ms = seconds * 1000.0,
            "request"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "http")]
    #[test]
    fn only_plain_short_ids_are_kept() {
        assert!(acceptable("abc-123_x.y"));
        assert!(acceptable(&"a".repeat(64)));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("a\"}{"));
    }

    #[test]
    fn log_formats_parse() {
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("yaml".parse::<LogFormat>().is_err());
    }
}
