//! `ReportStore` on SQL: filtered audit reads and the security summary's counts. Optional
//! filters use `($n IS NULL OR …)`, so the SQL stays static for both backends.

use crate::config::kinds;
use async_trait::async_trait;
use sqlx::Row;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::sql::audit::event;
use crate::store::{AuditEvent, AuditQuery, GrantType, ReportStore, SecurityCounts};

#[async_trait]
impl ReportStore for SqlStore {
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, ts, kind, outcome, actor, subject, client_id, ip, details \
             FROM audit_events \
             WHERE ($1 IS NULL OR ts >= $1) AND ($2 IS NULL OR ts <= $2) \
               AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR actor = $4) \
               AND ($5 IS NULL OR outcome = $5) AND ($6 IS NULL OR id < $6) \
               AND ($8 IS NULL OR client_id = $8) AND ($9 IS NULL OR subject = $9) \
             ORDER BY id DESC LIMIT $7",
        )
        .bind(q.from)
        .bind(q.to)
        .bind(q.kind.as_deref())
        .bind(q.actor.as_deref())
        .bind(q.outcome.as_deref())
        .bind(q.before_id)
        .bind(q.limit)
        .bind(q.client.as_deref())
        .bind(q.subject.as_deref())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event).collect()
    }

    async fn security_counts(&self, since: i64, now: i64) -> Result<SecurityCounts> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM audit_events WHERE ts >= $1 GROUP BY kind",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut c = SecurityCounts::default();
        for r in &rows {
            let kind: String = r.try_get("kind")?;
            let n: i64 = r.try_get("n")?;
            match kind.as_str() {
                kinds::LOGIN_SUCCEEDED => c.logins_succeeded = n,
                kinds::LOGIN_FAILED => c.logins_failed = n,
                kinds::LOGIN_LOCKED => c.lockouts = n,
                kinds::REFRESH_REUSE_DETECTED => c.refresh_reuse_detected = n,
                kinds::CODE_REPLAYED => c.code_replays = n,
                kinds::GRANT_REVOKED => c.grants_revoked = n,
                _ => {}
            }
        }
        for g in GrantType::ALL {
            // Audit details are JSON text: `"grant_type":"<g>"` appears exactly as written.
            let pattern = format!("%\"grant_type\":\"{}\"%", g.as_str());
            let n: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM audit_events \
                 WHERE kind = 'token.issued' AND ts >= $1 AND details LIKE $2",
            )
            .bind(since)
            .bind(pattern)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
            c.tokens_by_grant.insert(g.as_str().to_owned(), n);
        }
        let count = |sql: &'static str| {
            let pool = &self.pool;
            async move {
                let n: i64 = sqlx::query(sql)
                    .bind(now)
                    .fetch_one(pool)
                    .await?
                    .try_get("n")?;
                Ok::<_, crate::error::Error>(n)
            }
        };
        c.active_sessions =
            count("SELECT COUNT(*) AS n FROM sessions WHERE ended_at IS NULL AND expires_at > $1")
                .await?;
        c.active_api_keys = count(
            "SELECT COUNT(*) AS n FROM clients WHERE owner_id IS NOT NULL AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1)",
        )
        .await?;
        c.published_signing_keys = count(
            "SELECT COUNT(*) AS n FROM signing_keys WHERE status = 'active' OR publish_until > $1",
        )
        .await?;
        Ok(c)
    }
}
