//! `KeyStore` on SQL. A key is `next` (published, not signing) until its `activate_at`, then
//! `active`, then `retired` (published until every token it signed has expired); `withdrawn`
//! (`authz keys revoke`) at any time but while active: unpublished at once, for good.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Error, Result};
use crate::store::sql::{SqlStore, conflict};
use crate::store::{KeyPurpose, KeyStatus, KeyStore, StoredKey};

macro_rules! columns {
    () => {
        "kid, alg, purpose, private_key_enc, public_jwk, status, created_at, retired_at, \
         publish_until, activate_at"
    };
}

fn key(row: &AnyRow) -> Result<StoredKey> {
    let status: String = row.try_get("status")?;
    Ok(StoredKey {
        kid: row.try_get("kid")?,
        alg: row.try_get("alg")?,
        purpose: crate::store::sql::parse_col(row, "purpose")?,
        private_key_enc: row.try_get("private_key_enc")?,
        public_jwk: row.try_get("public_jwk")?,
        status: match status.as_str() {
            "next" => KeyStatus::Next,
            "active" => KeyStatus::Active,
            "retired" => KeyStatus::Retired,
            "withdrawn" => KeyStatus::Withdrawn,
            other => return Err(Error::internal(format!("corrupt key status {other:?}"))),
        },
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
        publish_until: row.try_get("publish_until")?,
        activate_at: row.try_get("activate_at")?,
    })
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn insert_key(&self, k: &StoredKey) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO signing_keys (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(k.purpose.as_str())
        .bind(&k.private_key_enc)
        .bind(&k.public_jwk)
        .bind(k.status.as_str())
        .bind(k.created_at)
        .bind(k.retired_at)
        .bind(k.publish_until)
        .bind(k.activate_at)
        .execute(&self.pool)
        .await
        // One pending key per purpose (partial unique index): a scheduled rotation racing
        // another replica's loses here.
        .map_err(|e| conflict(e, "a concurrent rotation's pending key"))?;
        Ok(())
    }

    async fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM signing_keys \
             WHERE status IN ('active', 'next') OR publish_until > $1 \
             ORDER BY created_at DESC, kid"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key).collect()
    }

    async fn all_keys(&self) -> Result<Vec<StoredKey>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM signing_keys ORDER BY created_at DESC, kid"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key).collect()
    }

    async fn activate_key(&self, new_key: &StoredKey, publish_until: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1, publish_until = $2 \
             WHERE status = 'active' AND purpose = $3",
        )
        .bind(new_key.created_at)
        .bind(publish_until)
        .bind(new_key.purpose.as_str())
        .execute(&mut *tx)
        .await?;
        // A key still waiting would take over later: it never signed (its time has not come;
        // due ones are promoted before a rotation), so it goes.
        sqlx::query(
            "DELETE FROM signing_keys WHERE status = 'next' AND purpose = $1 AND activate_at > $2",
        )
        .bind(new_key.purpose.as_str())
        .bind(new_key.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(concat!(
            "INSERT INTO signing_keys (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, 'active', $6, NULL, NULL, NULL)"
        ))
        .bind(&new_key.kid)
        .bind(&new_key.alg)
        .bind(new_key.purpose.as_str())
        .bind(&new_key.private_key_enc)
        .bind(&new_key.public_jwk)
        .bind(new_key.created_at)
        .execute(&mut *tx)
        .await
        // The partial unique index keeps one active key per purpose: a rotation racing
        // another (on another replica) loses here, and changes nothing.
        .map_err(|e| conflict(e, "a concurrent key rotation's active key"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn promote_due_keys(&self, now: i64, publish_until: i64) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        // Retire the active key of each purpose that has a due successor, then promote it. A
        // concurrent caller finds nothing due any more (the rows are locked, then changed).
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1, publish_until = $2 \
             WHERE status = 'active' AND purpose IN (SELECT purpose FROM signing_keys \
                 WHERE status = 'next' AND activate_at <= $1)",
        )
        .bind(now)
        .bind(publish_until)
        .execute(&mut *tx)
        .await?;
        let promoted = sqlx::query(
            "UPDATE signing_keys SET status = 'active' WHERE status = 'next' AND activate_at <= $1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(promoted)
    }

    async fn retire_keys(&self, purpose: KeyPurpose, now: i64, publish_until: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1, publish_until = $2 \
             WHERE status = 'active' AND purpose = $3",
        )
        .bind(now)
        .bind(publish_until)
        .bind(purpose.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn withdraw_key(&self, kid: &str, now: i64) -> Result<bool> {
        // The private half goes (an empty value): a withdrawn key never signs again, and a
        // copy of the database no longer holds it. The row stays, as the record.
        let r = sqlx::query(
            "UPDATE signing_keys SET status = 'withdrawn', private_key_enc = $1, \
             retired_at = COALESCE(retired_at, $2), publish_until = NULL, activate_at = NULL \
             WHERE kid = $3 AND status IN ('next', 'retired')",
        )
        .bind(Vec::<u8>::new())
        .bind(now)
        .bind(kid)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn prune_keys(&self, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM signing_keys WHERE status = 'retired' AND publish_until <= $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }
}
