//! The audit log: `shared::batch::BatchWriter` over the `AuditStore`, so events are committed in
//! groups. `record` waits for the commit (security events, admin actions); `record_async` only
//! enqueues (the high-volume `token.issued`).

use std::sync::Arc;

use shared::batch::{BatchSink, BatchWriter};

use crate::store::{AuditEvent, AuditStore};

pub type AuditLog = BatchWriter<AuditEvent>;

struct Sink(Arc<dyn AuditStore>);

#[async_trait::async_trait]
impl BatchSink<AuditEvent> for Sink {
    async fn write_batch(&self, items: &[AuditEvent]) -> Result<(), String> {
        self.0.append_all(items).await.map_err(|e| e.to_string())
    }
}

/// Start the audit writer on the current runtime.
pub fn start(store: Arc<dyn AuditStore>) -> AuditLog {
    BatchWriter::start(Arc::new(Sink(store)))
}

/// What a request brings that audit events record and rules decide on, read once per request
/// (the extractor is in `http::context`): the client's address, by the trusted-proxy rule, and
/// the time, from the injected clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestContext {
    pub ip: Option<std::net::IpAddr>,
    pub now: i64,
    /// The key of the request's valid DPoP proof (RFC 9449), set by the token endpoint:
    /// tokens issued for this request are bound to it (`cnf.jkt`).
    pub dpop_jkt: Option<shared::dpop::Jkt>,
}

impl crate::store::AuditEvent {
    /// Record where the request came from.
    pub fn ctx(mut self, ctx: &RequestContext) -> Self {
        self.ip = ctx.ip.map(|ip| ip.to_string());
        self
    }
}
