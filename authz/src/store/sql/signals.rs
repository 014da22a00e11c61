//! `SignalStore` on SQL: security events queued per receiver until acknowledged.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use crate::error::Result;
use crate::store::{QueuedSet, SignalStore};

#[async_trait]
impl SignalStore for SqlStore {
    async fn queue_sets(&self, sets: &[QueuedSet]) -> Result<()> {
        if sets.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for s in sets {
            sqlx::query(
                "INSERT INTO ssf_events (receiver, jti, set_jwt, created_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&s.receiver)
            .bind(&s.jti)
            .bind(&s.jwt)
            .bind(s.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ack_sets(&self, receiver: &str, jtis: &[String], now: i64) -> Result<u64> {
        let mut acked = 0;
        for jti in jtis {
            acked += sqlx::query(
                "UPDATE ssf_events SET acked_at = $1 \
                 WHERE receiver = $2 AND jti = $3 AND acked_at IS NULL",
            )
            .bind(now)
            .bind(receiver)
            .bind(jti)
            .execute(&self.pool)
            .await?
            .rows_affected();
        }
        Ok(acked)
    }

    async fn pending_sets(&self, receiver: &str, limit: u32) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT jti, set_jwt FROM ssf_events WHERE receiver = $1 AND acked_at IS NULL \
             ORDER BY id LIMIT $2",
        )
        .bind(receiver)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("jti")?, r.try_get("set_jwt")?)))
            .collect()
    }

    async fn delete_sets_before(&self, acked_before: i64, queued_before: i64) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM ssf_events WHERE (acked_at IS NOT NULL AND acked_at < $1) \
             OR created_at < $2",
        )
        .bind(acked_before)
        .bind(queued_before)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
