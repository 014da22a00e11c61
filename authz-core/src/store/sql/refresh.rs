//! `RefreshTokenStore` on SQL. Rotation is one transaction that first takes the grant's row
//! lock (a no-op UPDATE of the session row — or of the user row for families without a
//! session — which also tells whether the grant is still live), then claims the old token with
//! one conditional UPDATE and inserts the successor. Logout, revocation, disabling and password
//! resets update the same session rows before they revoke tokens, so on PostgreSQL (row locks)
//! and SQLite (one writer) alike a successor is either revoked with its family or never made.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::{SqlStore, json_list, uri_list};
use crate::store::{RefreshTokenRecord, RefreshTokenStore, RotateOutcome, Rotation};

macro_rules! refresh_columns {
    () => {
        "token_hash, family_id, client_id, user_id, scope, resources, auth_time, sid, \
                       created_at, expires_at, family_expires_at, used_at, revoked_at, dpop_jkt"
    };
}

pub(super) fn record(row: &AnyRow) -> Result<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: row.try_get("token_hash")?,
        family_id: row.try_get("family_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        scope: row.try_get("scope")?,
        resources: uri_list(row, "resources")?,
        auth_time: row.try_get("auth_time")?,
        sid: row.try_get("sid")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        family_expires_at: row.try_get("family_expires_at")?,
        used_at: row.try_get("used_at")?,
        revoked_at: row.try_get("revoked_at")?,
        dpop_jkt: row.try_get("dpop_jkt")?,
    })
}

const INSERT: &str = concat!(
    "INSERT INTO refresh_tokens (",
    refresh_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);

macro_rules! bind_record {
    ($q:expr, $r:expr) => {
        $q.bind(&$r.token_hash)
            .bind(&$r.family_id)
            .bind(&$r.client_id)
            .bind(&$r.user_id)
            .bind(&$r.scope)
            .bind(json_list(&$r.resources))
            .bind($r.auth_time)
            .bind($r.sid.as_deref())
            .bind($r.created_at)
            .bind($r.expires_at)
            .bind($r.family_expires_at)
            .bind($r.used_at)
            .bind($r.revoked_at)
            .bind($r.dpop_jkt.as_deref())
    };
}

/// Take the grant's lock inside `tx`; `false` when the grant has ended (session logged out,
/// or — for a family without a session — the user disabled).
async fn lock_grant(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sid: Option<&str>,
    user_id: &str,
) -> Result<bool> {
    let r =
        match sid {
            Some(sid) => {
                sqlx::query(
                    "UPDATE sessions SET last_seen_at = last_seen_at \
                 WHERE sid = $1 AND ended_at IS NULL",
                )
                .bind(sid)
                .execute(&mut **tx)
                .await?
            }
            None => sqlx::query(
                "UPDATE users SET updated_at = updated_at WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(user_id)
            .execute(&mut **tx)
            .await?,
        };
    Ok(r.rows_affected() == 1)
}

#[async_trait]
impl RefreshTokenStore for SqlStore {
    async fn create_refresh_token(&self, r: &RefreshTokenRecord) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        if !lock_grant(&mut tx, r.sid.as_deref(), &r.user_id).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        bind_record!(sqlx::query(INSERT), r)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            refresh_columns!(),
            " FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    async fn rotate_refresh_token(&self, rot: &Rotation<'_>) -> Result<RotateOutcome> {
        let old = rot.old;
        let now = rot.now;
        let mut tx = self.write_tx().await?;
        // 1. The grant's lock: serialised with logout and revocation of this grant.
        if !lock_grant(&mut tx, old.sid.as_deref(), &old.user_id).await? {
            tx.rollback().await?;
            return Ok(RotateOutcome::GrantEnded);
        }
        // 2. Claim the old token (of two concurrent claims one matches).
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1, successor_hash = $2, successor_enc = $3 \
             WHERE token_hash = $4 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(
            rot.sealed_successor
                .map(|_| rot.successor.token_hash.as_str()),
        )
        .bind(rot.sealed_successor.map(<[u8]>::to_vec))
        .bind(&old.token_hash)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 1 {
            bind_record!(sqlx::query(INSERT), rot.successor)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RotateOutcome::Rotated);
        }
        // 3. Not claimable: gone, revoked, a retry within the window, or reuse.
        let row = sqlx::query(concat!(
            "SELECT ",
            refresh_columns!(),
            ", successor_hash, successor_enc FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(&old.token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(RotateOutcome::NotFound);
        };
        let current = record(&row)?;
        if current.revoked_at.is_some() {
            tx.rollback().await?;
            return Ok(RotateOutcome::GrantEnded);
        }
        let in_window = match (rot.retry_since, current.used_at) {
            (Some(since), Some(used)) => used >= since,
            _ => false,
        };
        let successor_hash: Option<String> = row.try_get("successor_hash")?;
        let sealed: Option<Vec<u8>> = row.try_get("successor_enc")?;
        if let (true, Some(hash), Some(sealed)) = (in_window, successor_hash, sealed) {
            let live = sqlx::query(
                "SELECT 1 AS live FROM refresh_tokens \
                 WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if live {
                tx.commit().await?;
                return Ok(RotateOutcome::Retry {
                    sealed_successor: sealed,
                });
            }
        }
        // Reuse (RFC 9700 §4.14.2): the whole family goes, under the grant's lock.
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1, successor_enc = NULL \
             WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&current.family_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RotateOutcome::Reused(Box::new(current)))
    }

    async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        // The grant's lock first, as rotation takes it (a write: SQLite takes its write lock
        // here too, before reading anything).
        sqlx::query(
            "UPDATE sessions SET last_seen_at = last_seen_at WHERE sid = \
             (SELECT sid FROM refresh_tokens WHERE family_id = $1 LIMIT 1)",
        )
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1, successor_enc = NULL \
             WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    async fn delete_refresh_tokens_ended_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM refresh_tokens WHERE family_expires_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn erase_retry_successors(&self, used_before: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE refresh_tokens SET successor_enc = NULL \
             WHERE successor_enc IS NOT NULL AND used_at < $1",
        )
        .bind(used_before)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
