//! The audit log writer: events go over a channel to one background task that commits them in
//! batches (one transaction per batch, "group commit"), so a burst of token requests costs one
//! database write per batch rather than one per token.
//!
//! `record` waits until the event is committed (security events, admin actions); `record_async`
//! only enqueues (the high-volume `token.issued`), so up to `LINGER` of such events can be lost
//! if the process is killed. A full queue applies backpressure; events
//! are never dropped. `flush` waits for everything enqueued so far.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{AuditEvent, AuditStore};

const QUEUE: usize = 8192;
const MAX_BATCH: usize = 512;
/// When a batch starts with a fire-and-forget event, wait this long for more before committing:
/// under load that turns thousands of commits per second into about a hundred.
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

enum Msg {
    Event(AuditEvent, Option<oneshot::Sender<()>>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the audit writer; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    /// Start the writer task on the current runtime.
    pub fn start(store: Arc<dyn AuditStore>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, rx));
        Self { tx }
    }

    /// Enqueue and wait until the event is committed (or the write failed and was logged).
    pub async fn record(&self, event: AuditEvent) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Event(event, Some(ack))).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Enqueue without waiting for the commit.
    pub async fn record_async(&self, event: AuditEvent) {
        let _ = self.tx.send(Msg::Event(event, None)).await;
    }

    /// Wait until every event enqueued before this call is committed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn writer(store: Arc<dyn AuditStore>, mut rx: mpsc::Receiver<Msg>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    while let Some(first) = rx.recv().await {
        if matches!(first, Msg::Event(_, None)) {
            tokio::time::sleep(LINGER).await;
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(e, ack) => {
                    batch.push(e);
                    acks.extend(ack);
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.append_all(&batch).await {
                tracing::error!(error = %e, events = batch.len(), "audit events could not be stored");
            }
            batch.clear();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}
