//! A group-commit writer: items go over a channel to one background task that hands them to a
//! sink in batches (one transaction per batch), so a burst of requests costs one database write
//! per batch rather than one per request. Used for both servers' audit logs.
//!
//! `record` waits until the item is committed (security events, admin actions); `record_async`
//! only enqueues, so up to `LINGER` of such items can be lost if the process is killed. A full
//! queue applies backpressure: items are never dropped. `flush` waits for everything enqueued.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

const QUEUE: usize = 8192;
const MAX_BATCH: usize = 512;
/// When a batch starts with a fire-and-forget item, wait this long for more before committing:
/// under load that turns thousands of commits per second into about a hundred.
const LINGER: Duration = Duration::from_millis(10);

/// Where batches go.
#[async_trait::async_trait]
pub trait BatchSink<T>: Send + Sync + 'static {
    /// Store all items (one transaction). An error is logged; the items are not retried.
    async fn write_batch(&self, items: &[T]) -> Result<(), String>;
}

enum Msg<T> {
    Item(T, Option<oneshot::Sender<()>>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer task; cheap to clone.
pub struct BatchWriter<T> {
    tx: mpsc::Sender<Msg<T>>,
}

impl<T> Clone for BatchWriter<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T> std::fmt::Debug for BatchWriter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchWriter")
    }
}

impl<T: Send + 'static> BatchWriter<T> {
    /// Start the writer task on the current runtime.
    pub fn start(sink: Arc<dyn BatchSink<T>>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(sink, rx));
        Self { tx }
    }

    /// Enqueue and wait until the item is committed (or the write failed and was logged).
    pub async fn record(&self, item: T) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Item(item, Some(ack))).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Enqueue without waiting for the commit.
    pub async fn record_async(&self, item: T) {
        let _ = self.tx.send(Msg::Item(item, None)).await;
    }

    /// Wait until every item enqueued before this call is committed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

async fn writer<T: Send + 'static>(sink: Arc<dyn BatchSink<T>>, mut rx: mpsc::Receiver<Msg<T>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::new();
    while let Some(first) = rx.recv().await {
        if matches!(first, Msg::Item(_, None)) {
            tokio::time::sleep(LINGER).await;
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Item(item, ack) => {
                    batch.push(item);
                    acks.extend(ack);
                }
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if let Err(e) = sink.write_batch(&batch).await {
                tracing::error!(error = %e, items = batch.len(), "batch could not be stored");
            }
            batch.clear();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Collect(Mutex<Vec<Vec<u32>>>);

    #[async_trait::async_trait]
    impl BatchSink<u32> for Collect {
        async fn write_batch(&self, items: &[u32]) -> Result<(), String> {
            self.0.lock().unwrap().push(items.to_vec());
            Ok(())
        }
    }

    #[tokio::test]
    async fn groups_async_items_and_flushes() {
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let w = BatchWriter::start(sink.clone());
        for i in 0..100 {
            w.record_async(i).await;
        }
        w.record(100).await;
        w.flush().await;
        let batches = sink.0.lock().unwrap().clone();
        let all: Vec<u32> = batches.iter().flatten().copied().collect();
        assert_eq!(
            all,
            (0..=100).collect::<Vec<_>>(),
            "nothing lost, order kept"
        );
        assert!(
            batches.len() < 10,
            "grouped into few batches: {}",
            batches.len()
        );
    }
}
