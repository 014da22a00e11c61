//! `TwoFactorStore` on SQL. Spending a TOTP step or a recovery code is one conditional UPDATE,
//! so two concurrent sign-ins with the same code cannot both succeed. An administrator's reset
//! removes the user's passkeys, and ends every session and refresh token of the user, in the
//! same transaction as the TOTP enrolment.

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{GrantsEnded, SecondFactorsRemoved, StoredTotp, TwoFactorStore};

#[async_trait]
impl TwoFactorStore for SqlStore {
    async fn begin_totp(&self, user_id: &str, secret_enc: &[u8], now: i64) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO user_totp (user_id, secret_enc, created_at, confirmed_at, last_step) \
             VALUES ($1, $2, $3, NULL, NULL)",
        )
        .bind(user_id)
        .bind(secret_enc)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_totp(&self, user_id: &str) -> Result<Option<StoredTotp>> {
        let row = sqlx::query(
            "SELECT secret_enc, confirmed_at, last_step FROM user_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredTotp {
                secret_enc: r.try_get("secret_enc")?,
                confirmed_at: r.try_get("confirmed_at")?,
                last_step: r.try_get("last_step")?,
            })
        })
        .transpose()
    }

    async fn spend_totp_step(&self, user_id: &str, step: i64, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE user_totp SET last_step = $1, confirmed_at = COALESCE(confirmed_at, $2) \
             WHERE user_id = $3 AND (last_step IS NULL OR last_step < $1)",
        )
        .bind(step)
        .bind(now)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_recovery_codes(&self, user_id: &str, hashes: &[String]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for h in hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn spend_recovery_code(&self, user_id: &str, hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .bind(hash)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, user_id: &str) -> Result<i64> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        Ok(n)
    }

    async fn remove_totp(
        &self,
        user_id: &str,
        admin_reset_at: Option<i64>,
    ) -> Result<SecondFactorsRemoved> {
        let mut tx = self.write_tx().await?;
        // The user row first, as a password reset does: a sign-in under way with the removed
        // factor then gets no session (`create_session` compares the epoch).
        super::factors::bump_factors_epoch(&mut tx, user_id).await?;
        // An administrator's reset: the sessions next, as every remedy ends them.
        let ended = match admin_reset_at {
            Some(now) => {
                crate::store::sql::users::end_sessions_in(&mut tx, user_id, now, None).await?
            }
            None => GrantsEnded::default(),
        };
        let removed = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        // A sign-in waiting for a code of the removed enrolment ends (issue 24 item 2).
        crate::store::sql::signin::end_pending_in(&mut tx, user_id).await?;
        let passkeys = if admin_reset_at.is_some() {
            super::factors::delete_passkeys(&mut tx, user_id).await?
        } else {
            0
        };
        tx.commit().await?;
        Ok(SecondFactorsRemoved {
            totp: removed > 0,
            passkeys,
            ended,
        })
    }
}
