//! `mcp-resource`'s own database: notes (title and content AES-256-GCM encrypted, bound to their
//! id and owner as associated data) and the audit table. SQLite or PostgreSQL via sqlx `Any`.

use shared::crypto::{MasterKey, random_id};
use shared::db::Backend;
use sqlx::{AnyPool, Row};

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/mcp/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/mcp/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] shared::db::DbError),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored note cannot be decrypted (wrong notes key?)")]
    Decrypt,
}

/// A decrypted note.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Note {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub created_at: i64,
}

/// One audit row: who did what and how it ended; never note contents or tokens.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub ts: i64,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub action: String,
    pub outcome: &'static str,
    pub reason: Option<String>,
}

#[async_trait::async_trait]
impl shared::batch::BatchSink<AuditRow> for Store {
    async fn write_batch(&self, items: &[AuditRow]) -> Result<(), String> {
        self.audit_all(items).await.map_err(|e| e.to_string())
    }
}

#[derive(Debug)]
pub struct Store {
    pool: AnyPool,
    key: MasterKey,
}

fn aad(id: &str, owner: &str, field: &str) -> Vec<u8> {
    format!("{id}|{owner}|{field}").into_bytes()
}

impl Store {
    pub async fn open(url: &str, key: MasterKey) -> Result<Self, StoreError> {
        let (pool, backend) = shared::db::connect(url, 16).await?;
        match backend {
            Backend::Sqlite => SQLITE.run(&pool).await?,
            Backend::Postgres => POSTGRES.run(&pool).await?,
        }
        Ok(Self { pool, key })
    }

    /// Close the connection pool: every later query fails (shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_note(
        &self,
        owner: &str,
        title: &str,
        content: &str,
        now: i64,
    ) -> Result<Note, StoreError> {
        let id = random_id("note_");
        sqlx::query("INSERT INTO notes (id, owner_sub, title_enc, content_enc, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(owner)
            .bind(self.key.seal(&aad(&id, owner, "title"), title.as_bytes()))
            .bind(self.key.seal(&aad(&id, owner, "content"), content.as_bytes()))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(Note {
            id,
            title: title.to_owned(),
            content: None,
            created_at: now,
        })
    }

    fn open_field(
        &self,
        id: &str,
        owner: &str,
        field: &str,
        sealed: &[u8],
    ) -> Result<String, StoreError> {
        let plain = self
            .key
            .open(&aad(id, owner, field), sealed)
            .map_err(|_| StoreError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| StoreError::Decrypt)
    }

    /// The owner's notes, newest first (titles only).
    pub async fn list_notes(&self, owner: &str, limit: i64) -> Result<Vec<Note>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, title_enc, created_at FROM notes WHERE owner_sub = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(owner)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let title =
                    self.open_field(&id, owner, "title", &r.try_get::<Vec<u8>, _>("title_enc")?)?;
                Ok(Note {
                    id,
                    title,
                    content: None,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// A note, only if `owner` owns it.
    pub async fn get_note(&self, owner: &str, id: &str) -> Result<Option<Note>, StoreError> {
        let row = sqlx::query(
            "SELECT title_enc, content_enc, created_at FROM notes WHERE id = $1 AND owner_sub = $2",
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Note {
            id: id.to_owned(),
            title: self.open_field(id, owner, "title", &r.try_get::<Vec<u8>, _>("title_enc")?)?,
            content: Some(self.open_field(
                id,
                owner,
                "content",
                &r.try_get::<Vec<u8>, _>("content_enc")?,
            )?),
            created_at: r.try_get("created_at")?,
        }))
    }

    /// Append audit rows in one transaction.
    pub async fn audit_all(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // One multi-row INSERT per chunk: one round trip to the database per batch.
        for chunk in rows.chunks(shared::db::INSERT_CHUNK) {
            let sql = shared::db::multi_insert(
                "INSERT INTO audit_events (ts, subject, client_id, action, outcome, reason)",
                chunk.len(),
                6,
            );
            let mut q = sqlx::query(sql);
            for row in chunk {
                q = q
                    .bind(row.ts)
                    .bind(row.subject.clone())
                    .bind(row.client_id.clone())
                    .bind(row.action.clone())
                    .bind(row.outcome)
                    .bind(row.reason.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.query_audit(None, None, limit).await
    }

    /// Audit rows with `from <= ts < before`, newest first.
    pub async fn query_audit(
        &self,
        from: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts, subject, client_id, action, outcome, reason FROM audit_events \
             WHERE ($1 IS NULL OR ts >= $1) AND ($2 IS NULL OR ts < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(from)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let outcome: String = r.try_get("outcome")?;
                Ok(AuditRow {
                    ts: r.try_get("ts")?,
                    subject: r.try_get("subject")?,
                    client_id: r.try_get("client_id")?,
                    action: r.try_get("action")?,
                    outcome: match outcome.as_str() {
                        "allowed" => "allowed",
                        "denied" => "denied",
                        _ => "error",
                    },
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Denied calls since `since` (for the security summary).
    pub async fn count_denied(&self, since: i64) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM audit_events WHERE outcome = 'denied' AND ts >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(n)
    }

    /// The newest audit row's id (0 when there is none).
    pub async fn last_audit_id(&self) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM audit_events")
            .fetch_one(&self.pool)
            .await?
            .try_get("id")?;
        Ok(id)
    }

    /// Denied tool calls after audit row `last_id`, oldest first, at most `limit`: what
    /// `crate::denials` reports to the authorization server, with each row's id.
    pub async fn denied_after(
        &self,
        last_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AuditRow)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ts, subject, client_id, action, reason FROM audit_events \
             WHERE id > $1 AND outcome = 'denied' AND action LIKE 'tool:%' \
             ORDER BY id LIMIT $2",
        )
        .bind(last_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    AuditRow {
                        ts: r.try_get("ts")?,
                        subject: r.try_get("subject")?,
                        client_id: r.try_get("client_id")?,
                        action: r.try_get("action")?,
                        outcome: "denied",
                        reason: r.try_get("reason")?,
                    },
                ))
            })
            .collect()
    }

    /// The id of the last audit row reported to the authorization server.
    pub async fn denial_cursor(&self) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query("SELECT last_id FROM denial_report_cursor WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("last_id")?;
        Ok(id)
    }

    /// Move the reporting cursor forward to `id` (never back).
    pub async fn set_denial_cursor(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE denial_report_cursor SET last_id = $1 WHERE id = 1 AND last_id < $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Take or renew the reporting lease for `holder` until `until`: true when `holder` holds
    /// it (it was free, expired, or already its own), so one replica reports at a time.
    pub async fn claim_denial_lease(
        &self,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE denial_report_cursor SET leased_by = $1, leased_until = $3 \
             WHERE id = 1 AND (leased_by = $1 OR leased_by IS NULL OR leased_until < $2)",
        )
        .bind(holder)
        .bind(now)
        .bind(until)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Let the reporting lease go, if `holder` has it.
    pub async fn release_denial_lease(&self, holder: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE denial_report_cursor SET leased_by = NULL, leased_until = 0 \
             WHERE id = 1 AND leased_by = $1",
        )
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remember a revocation rule until `expires_at` (a later one for the same rule keeps the
    /// latest `before_iat` and expiry).
    pub async fn save_revocation(&self, r: &crate::revocations::Stored) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revocations (rule, sid, client_id, sub, before_iat, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (rule) DO UPDATE SET before_iat = $5, expires_at = $6",
        )
        .bind(&r.key)
        .bind(r.rule.sid())
        .bind(r.rule.client_id())
        .bind(r.rule.sub())
        .bind(r.rule.before_iat())
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revocations that may still matter; expired rows are deleted.
    pub async fn revocations(
        &self,
        now: i64,
    ) -> Result<Vec<crate::revocations::Stored>, StoreError> {
        sqlx::query("DELETE FROM revocations WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let rows =
            sqlx::query("SELECT sid, client_id, sub, before_iat, expires_at FROM revocations")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let rule = crate::revocations::Rule::from_columns(
                r.try_get("sid")?,
                r.try_get("client_id")?,
                r.try_get("sub")?,
                r.try_get("before_iat")?,
            );
            if let Some(rule) = rule {
                out.push(crate::revocations::Stored::new(
                    rule,
                    r.try_get("expires_at")?,
                ));
            }
        }
        Ok(out)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}
