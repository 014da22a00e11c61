//! `AuditStore` on SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Error, Result};
use crate::store::sql::SqlStore;
use crate::store::{AuditEvent, AuditStore, Outcome, Reported};

pub(super) fn event(row: &AnyRow) -> Result<AuditEvent> {
    let outcome: String = row.try_get("outcome")?;
    let details: String = row.try_get("details")?;
    Ok(AuditEvent {
        id: Some(row.try_get("id")?),
        ts: row.try_get("ts")?,
        kind: row.try_get("kind")?,
        outcome: if outcome == "success" {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        actor: row.try_get("actor")?,
        subject: row.try_get("subject")?,
        client_id: row.try_get("client_id")?,
        ip: row.try_get("ip")?,
        details: serde_json::from_str(&details).map_err(Error::internal)?,
    })
}

const INSERT_HEAD: &str =
    "INSERT INTO audit_events (ts, kind, outcome, actor, subject, client_id, ip, details)";

fn insert(e: &AuditEvent) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(concat!(
        "INSERT INTO audit_events (ts, kind, outcome, actor, subject, client_id, ip, details)",
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(e.ts)
    .bind(&e.kind)
    .bind(e.outcome.as_str())
    .bind(e.actor.as_deref())
    .bind(e.subject.as_deref())
    .bind(e.client_id.as_deref())
    .bind(e.ip.as_deref())
    .bind(e.details.to_string())
}

const KEY_HEAD: &str =
    "INSERT INTO resource_event_keys (reporter, event_id, reported_ts, received_at)";

/// Insert `events` in `tx`, a multi-row statement per chunk.
async fn insert_all<'a>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Result<()> {
    let events: Vec<&AuditEvent> = events.into_iter().collect();
    for chunk in events.chunks(shared::db::INSERT_CHUNK) {
        let sql = shared::db::multi_insert(INSERT_HEAD, chunk.len(), 8);
        let mut q = sqlx::query(sql);
        for e in chunk {
            q = q
                .bind(e.ts)
                .bind(e.kind.clone())
                .bind(e.outcome.as_str())
                .bind(e.actor.clone())
                .bind(e.subject.clone())
                .bind(e.client_id.clone())
                .bind(e.ip.clone())
                .bind(e.details.to_string());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append(&self, e: &AuditEvent) -> Result<()> {
        insert(e).execute(&self.pool).await?;
        Ok(())
    }

    async fn append_all(&self, events: &[AuditEvent]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        insert_all(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_reported(
        &self,
        reporter: &str,
        events: &[Reported],
        now: i64,
    ) -> Result<usize> {
        let mut keys: Vec<(i64, i64)> = events.iter().filter_map(|e| e.key).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut tx = self.write_tx().await?;
        // The keys not seen before: what the insert returns (ON CONFLICT DO NOTHING skips
        // the others; SQLite ≥ 3.35 and PostgreSQL both return only inserted rows).
        let mut fresh = std::collections::HashSet::new();
        for chunk in keys.chunks(shared::db::INSERT_CHUNK) {
            let mut sql = shared::db::multi_insert(KEY_HEAD, chunk.len(), 4);
            sql.0
                .push_str(" ON CONFLICT DO NOTHING RETURNING event_id, reported_ts");
            let mut q = sqlx::query(sql);
            for (id, ts) in chunk {
                q = q.bind(reporter).bind(*id).bind(*ts).bind(now);
            }
            for row in q.fetch_all(&mut *tx).await? {
                fresh.insert((row.try_get::<i64, _>(0)?, row.try_get::<i64, _>(1)?));
            }
        }
        // Unkeyed events always; a keyed one only the first time its key is new.
        let kept: Vec<&AuditEvent> = events
            .iter()
            .filter(|e| e.key.is_none_or(|k| fresh.remove(&k)))
            .map(|e| &e.event)
            .collect();
        insert_all(&mut tx, kept.iter().copied()).await?;
        tx.commit().await?;
        Ok(kept.len())
    }

    async fn delete_report_keys_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM resource_event_keys WHERE received_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn recent(&self, limit: i64) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, ts, kind, outcome, actor, subject, client_id, ip, details \
             FROM audit_events ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event).collect()
    }

    async fn delete_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM audit_events WHERE ts < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
