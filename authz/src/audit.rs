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
