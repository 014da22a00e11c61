//! `RefreshTokenStore` on SQL: rotation is one conditional UPDATE plus an INSERT in a
//! transaction, so of two concurrent rotations exactly one sees `rows_affected == 1`.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, lines};
use crate::error::Result;
use crate::store::{RefreshTokenRecord, RefreshTokenStore, RotateOutcome};

macro_rules! columns {
    () => {
        "token_hash, family_id, client_id, user_id, scope, resources, auth_time, sid, \
                       created_at, expires_at, family_expires_at, used_at, revoked_at"
    };
}

fn record(row: &AnyRow) -> Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: row.try_get("token_hash")?,
        family_id: row.try_get("family_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: row.try_get("scope")?,
        resources: lines(&row.try_get::<String, _>("resources")?),
        auth_time: row.try_get("auth_time")?,
        sid: row.try_get("sid")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        family_expires_at: row.try_get("family_expires_at")?,
        used_at: row.try_get("used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const INSERT: &str = concat!(
    "INSERT INTO refresh_tokens (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

macro_rules! bind_record {
    ($q:expr, $r:expr) => {
        $q.bind(&$r.token_hash)
            .bind(&$r.family_id)
            .bind(&$r.client_id)
            .bind(&$r.user_id)
            .bind(&$r.scope)
            .bind($r.resources.join("\n"))
            .bind($r.auth_time)
            .bind($r.sid.as_deref())
            .bind($r.created_at)
            .bind($r.expires_at)
            .bind($r.family_expires_at)
            .bind($r.used_at)
            .bind($r.revoked_at)
    };
}

#[async_trait]
impl RefreshTokenStore for SqlStore {
    async fn create_refresh_token(&self, r: &RefreshTokenRecord) -> Result<()> {
        bind_record!(sqlx::query(INSERT), r)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        successor: &RefreshTokenRecord,
        now: i64,
    ) -> Result<RotateOutcome> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(old_hash)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 1 {
            bind_record!(sqlx::query(INSERT), successor)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RotateOutcome::Rotated);
        }
        tx.rollback().await?;
        match self.get_refresh_token(old_hash).await? {
            None => Ok(RotateOutcome::NotFound),
            Some(old) => {
                self.revoke_refresh_family(&old.family_id, now).await?;
                Ok(RotateOutcome::Reused(Box::new(old)))
            }
        }
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn revoke_user_refresh_tokens(&self, user_id: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn revoke_session_refresh_tokens(&self, sid: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(sid)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn delete_refresh_tokens_ended_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM refresh_tokens WHERE family_expires_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
