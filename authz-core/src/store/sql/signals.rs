//! `SignalStore` on SQL: security events queued per receiver until acknowledged. A refusal
//! is one `UPDATE … RETURNING` whose `SET` expressions read the row as it was, so concurrent
//! refusals (receivers on several replicas) each count once and exactly one of them drops it.

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{DroppedSet, QueuedSet, SetRefusal, SignalStore};

#[async_trait]
impl SignalStore for SqlStore {
    async fn queue_sets(&self, sets: &[QueuedSet]) -> Result<()> {
        if sets.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
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

    async fn refuse_sets(
        &self,
        receiver: &str,
        refusals: &[SetRefusal],
        now: i64,
        pause_step: i64,
        max_refusals: i64,
    ) -> Result<Vec<DroppedSet>> {
        let mut dropped = Vec::new();
        for r in refusals {
            let row = sqlx::query(
                "UPDATE ssf_events SET failures = failures + 1, last_error = $1, \
                 retry_at = $2 + $3 * (failures + 1), \
                 acked_at = CASE WHEN failures + 1 >= $4 THEN $2 ELSE NULL END \
                 WHERE receiver = $5 AND jti = $6 AND acked_at IS NULL \
                 RETURNING failures",
            )
            .bind(&r.err)
            .bind(now)
            .bind(pause_step)
            .bind(max_refusals)
            .bind(receiver)
            .bind(&r.jti)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else { continue };
            let refusals: i64 = row.try_get("failures")?;
            if refusals >= max_refusals {
                dropped.push(DroppedSet {
                    jti: r.jti.clone(),
                    err: r.err.clone(),
                    refusals,
                });
            }
        }
        Ok(dropped)
    }

    async fn pending_sets(
        &self,
        receiver: &str,
        limit: u32,
        now: i64,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT jti, set_jwt FROM ssf_events WHERE receiver = $1 AND acked_at IS NULL \
             AND (retry_at IS NULL OR retry_at <= $2) ORDER BY id LIMIT $3",
        )
        .bind(receiver)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("jti")?, r.try_get("set_jwt")?)))
            .collect()
    }

    async fn replace_set(&self, receiver: &str, jti: &str, jwt: &str) -> Result<()> {
        sqlx::query(
            "UPDATE ssf_events SET set_jwt = $1 WHERE receiver = $2 AND jti = $3 \
             AND acked_at IS NULL",
        )
        .bind(jwt)
        .bind(receiver)
        .bind(jti)
        .execute(&self.pool)
        .await?;
        Ok(())
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
