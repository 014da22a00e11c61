//! `PendingSignInStore` on SQL. A step spends its row with one `DELETE … RETURNING`: single
//! use. `end_pending_in` ends a user's sign-ins inside a caller's transaction (the remedies:
//! a password reset, disabling, a two-factor reset).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::{SqlStore, words};
use crate::store::{PendingSignIn, PendingSignInStore};

fn pending(r: &AnyRow) -> Result<PendingSignIn> {
    Ok(PendingSignIn {
        user_id: r.try_get("user_id")?,
        amr: words(&r.try_get::<String, _>("amr")?),
        stamp: r.try_get("stamp")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// End every sign-in in progress of `user_id`, within `tx`.
pub(super) async fn end_pending_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
) -> Result<u64> {
    let r = sqlx::query("DELETE FROM pending_signins WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected())
}

#[async_trait]
impl PendingSignInStore for SqlStore {
    async fn put_pending_signin(&self, id_hash: &str, p: &PendingSignIn, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM pending_signins WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO pending_signins (id_hash, user_id, amr, stamp, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(&p.user_id)
        .bind(p.amr.join(" "))
        .bind(&p.stamp)
        .bind(p.created_at)
        .bind(p.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_pending_signin(&self, id_hash: &str, now: i64) -> Result<Option<PendingSignIn>> {
        let row = sqlx::query(
            "DELETE FROM pending_signins WHERE id_hash = $1 AND expires_at > $2 \
             RETURNING user_id, amr, stamp, created_at, expires_at",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pending).transpose()
    }

    async fn get_pending_signin(&self, id_hash: &str, now: i64) -> Result<Option<PendingSignIn>> {
        let row = sqlx::query(
            "SELECT user_id, amr, stamp, created_at, expires_at FROM pending_signins \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(pending).transpose()
    }

    async fn end_pending_signins(&self, user_id: &str) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let n = end_pending_in(&mut tx, user_id).await?;
        tx.commit().await?;
        Ok(n)
    }
}
