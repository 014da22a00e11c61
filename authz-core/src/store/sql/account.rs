//! `AccountStore` on SQL.

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{AccountStore, ConsentRecord, RefreshTokenRecord, Session};

#[async_trait]
impl AccountStore for SqlStore {
    async fn user_sessions(&self, user_id: &str) -> Result<Vec<Session>> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE user_id = $1 AND ended_at IS NULL \
             ORDER BY created_at DESC, sid",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(crate::store::sql::sessions::session)
            .collect()
    }

    async fn user_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>> {
        let rows = sqlx::query(
            "SELECT client_id, resource, scope, created_at, updated_at FROM consents \
             WHERE user_id = $1 ORDER BY client_id, resource",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentRecord {
                    client_id: r.try_get("client_id")?,
                    resource: r.try_get("resource")?,
                    scope: r.try_get("scope")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn user_refresh_tokens(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<RefreshTokenRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             AND family_expires_at > $2 ORDER BY created_at",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(crate::store::sql::refresh::record)
            .collect()
    }

    async fn forget_consents(&self, user_id: &str, client_id: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn delete_user(&self, user_id: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        // Children first (explicitly, not only by cascade): the user's API keys and what
        // was issued to them, then everything keyed by the user.
        for sql in [
            "DELETE FROM refresh_tokens WHERE client_id IN \
             (SELECT id FROM clients WHERE owner_id = $1)",
            "DELETE FROM clients WHERE owner_id = $1",
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM auth_codes WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM user_totp WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM pending_signins WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        let r = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }
}
