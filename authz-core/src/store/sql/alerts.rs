//! `AlertStore` on SQL: the persisted, bounded queue of security alerts.

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{AlertStore, QueuedAlert, WaitingAlert};

#[async_trait]
impl AlertStore for SqlStore {
    async fn queue_alert(&self, alert: &QueuedAlert, max_queued: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO alert_queue (id, webhook, body, created_at, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, 0, $4)",
        )
        .bind(&alert.id)
        .bind(alert.webhook)
        .bind(&alert.body)
        .bind(alert.created_at)
        .execute(&mut *tx)
        .await?;
        // Bounded: beyond the cap the oldest go.
        let dropped = sqlx::query(
            "DELETE FROM alert_queue WHERE id NOT IN (SELECT id FROM alert_queue \
             ORDER BY created_at DESC, id DESC LIMIT $1)",
        )
        .bind(max_queued)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if dropped > 0 {
            tracing::error!(
                dropped,
                "the alert queue is full: the oldest alerts were dropped"
            );
        }
        Ok(())
    }

    async fn due_alerts(&self, now: i64, limit: u32) -> Result<Vec<WaitingAlert>> {
        let rows = sqlx::query(
            "SELECT id, webhook, body, attempts FROM alert_queue WHERE next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WaitingAlert {
                    id: r.try_get("id")?,
                    webhook: r.try_get("webhook")?,
                    body: r.try_get("body")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    async fn claim_alert(&self, id: &str, now: i64, lease_until: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE alert_queue SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at <= $3",
        )
        .bind(lease_until)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn retry_alert(&self, id: &str, attempts: i64, next_attempt_at: i64) -> Result<()> {
        sqlx::query("UPDATE alert_queue SET attempts = $1, next_attempt_at = $2 WHERE id = $3")
            .bind(attempts)
            .bind(next_attempt_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_alert(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM alert_queue WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
