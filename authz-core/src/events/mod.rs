//! What happened, for operators and for other parties: the audit writer, alerts, Shared
//! Signals (RFC 8935/8936) and resource servers' reports.
//!
//! [`Events`] is the one handle the domain records through: an audit event (counted in the
//! metrics, queued for the alert webhooks that want its kind, written by the audit log) or a
//! Shared Signals event (signed and queued for every receiver). `AppState` holds one; the
//! domain functions that need nothing more of the state take it alone.

pub mod alerts;
pub mod audit;
pub mod resource_reports;
pub mod ssf;

/// The catalogue of audit kinds lives with the configuration, which names kinds too (alerts).
pub use crate::config::kinds;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{AuditEvent, Store};
use audit::AuditLog;
use ssf::{SetSigner, Signal};

/// Where events go: the audit log (with metrics and alerts) and the Shared Signals queue.
/// Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Events {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    audit_log: AuditLog,
    /// Signs security events (the token issuer, with the access-token key).
    signer: Arc<dyn SetSigner>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

impl Events {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        audit_log: AuditLog,
        signer: Arc<dyn SetSigner>,
    ) -> Self {
        Self {
            config,
            store,
            clock,
            metrics,
            audit_log,
            signer,
        }
    }

    /// Append an audit event and wait until it is committed.
    pub async fn audit(&self, event: AuditEvent) {
        self.metrics.audited(&event.kind, event.outcome.as_str());
        alerts::enqueue(&self.config, &*self.store, &event).await;
        self.audit_log.record(event).await;
    }

    /// Append a high-volume audit event without waiting for the commit.
    pub async fn audit_async(&self, event: AuditEvent) {
        self.metrics.audited(&event.kind, event.outcome.as_str());
        alerts::enqueue(&self.config, &*self.store, &event).await;
        self.audit_log.record_async(event).await;
    }

    /// Wait until every audit event recorded so far is committed (before reading the log).
    pub async fn flush(&self) {
        self.audit_log.flush().await;
    }

    /// Queue `signal` for every Shared Signals receiver, as one signed SET each.
    pub async fn signal(&self, signal: Signal<'_>) {
        ssf::emit(self, signal).await;
    }

    /// The time, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
