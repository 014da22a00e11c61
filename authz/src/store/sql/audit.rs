//! `AuditStore` on SQL.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlStore;
use crate::error::{Error, Result};
use crate::store::{AuditEvent, AuditStore, Outcome};

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

#[async_trait]
impl AuditStore for SqlStore {
    async fn append(&self, e: &AuditEvent) -> Result<()> {
        insert(e).execute(&self.pool).await?;
        Ok(())
    }

    async fn append_all(&self, events: &[AuditEvent]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
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
