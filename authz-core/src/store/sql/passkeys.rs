//! `PasskeyStore` on SQL. A ceremony is taken with one `DELETE … RETURNING`: single use. The
//! remedies (`users`, `two_factor`) delete a user's passkeys inside their own transaction;
//! removing one passkey ends the user's other sessions and refresh tokens in its own.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{GrantsEnded, PasskeyStore, StoredPasskey};

fn passkey(r: &AnyRow) -> Result<StoredPasskey> {
    Ok(StoredPasskey {
        credential_id: r.try_get("credential_id")?,
        user_id: r.try_get("user_id")?,
        user_handle: r.try_get("user_handle")?,
        name: r.try_get("name")?,
        passkey: r.try_get("passkey")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

#[async_trait]
impl PasskeyStore for SqlStore {
    async fn add_passkey(&self, p: &StoredPasskey, sid: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        // The session's row first (the lock a password reset or disabling takes to end it):
        // either the remedy sees this passkey and deletes it, or this sees the session ended.
        let live = sqlx::query(
            "UPDATE sessions SET last_seen_at = last_seen_at \
             WHERE sid = $1 AND user_id = $2 AND ended_at IS NULL",
        )
        .bind(sid)
        .bind(&p.user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if live != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO passkeys (credential_id, user_id, user_handle, name, passkey, \
             created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&p.credential_id)
        .bind(&p.user_id)
        .bind(&p.user_handle)
        .bind(&p.name)
        .bind(&p.passkey)
        .bind(p.created_at)
        .bind(p.last_used_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| crate::store::sql::conflict(e, "passkey".to_owned()))?;
        tx.commit().await?;
        Ok(true)
    }

    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query("SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(passkey).collect()
    }

    async fn passkeys_of_handle(&self, user_handle: &str) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query("SELECT * FROM passkeys WHERE user_handle = $1")
            .bind(user_handle)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(passkey).collect()
    }

    async fn touch_passkey(&self, credential_id: &str, passkey: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE credential_id = $3",
        )
        .bind(passkey)
        .bind(now)
        .bind(credential_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        now: i64,
        keep: Option<&str>,
    ) -> Result<Option<GrantsEnded>> {
        let mut tx = self.write_tx().await?;
        // The user row first (see `remove_totp`): a sign-in under way with this passkey then
        // gets no session.
        super::factors::bump_factors_epoch(&mut tx, user_id).await?;
        let r = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND credential_id = $2")
            .bind(user_id)
            .bind(credential_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let ended = crate::store::sql::users::end_sessions_in(&mut tx, user_id, now, keep).await?;
        tx.commit().await?;
        Ok(Some(ended))
    }

    async fn put_ceremony(
        &self,
        id_hash: &str,
        user_id: Option<&str>,
        kind: &str,
        state: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id_hash, user_id, kind, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(kind)
        .bind(state)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id_hash: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<(Option<String>, String)>> {
        let row = sqlx::query(
            "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 AND kind = $2 AND expires_at > $3 \
             RETURNING user_id, state",
        )
        .bind(id_hash)
        .bind(kind)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("user_id")?, r.try_get("state")?)),
            None => None,
        })
    }
}
