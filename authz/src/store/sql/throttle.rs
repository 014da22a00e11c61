//! `ThrottleStore` on SQL: failed-login counters, shared by every replica.

use async_trait::async_trait;
use sqlx::Row;

use super::SqlStore;
use crate::error::Result;
use crate::store::{LoginThrottle, ThrottleStore};

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn get_throttle(&self, key: &str) -> Result<Option<LoginThrottle>> {
        let row = sqlx::query(
            "SELECT failures, window_start, lockouts, locked_until FROM login_throttle \
             WHERE username_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(LoginThrottle {
            failures: r.try_get("failures")?,
            window_start: r.try_get("window_start")?,
            lockouts: r.try_get("lockouts")?,
            locked_until: r.try_get("locked_until")?,
        }))
    }

    async fn put_throttle(&self, key: &str, t: &LoginThrottle) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_throttle (username_key, failures, window_start, lockouts, \
             locked_until) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username_key) DO UPDATE \
             SET failures = $2, window_start = $3, lockouts = $4, locked_until = $5",
        )
        .bind(key)
        .bind(t.failures)
        .bind(t.window_start)
        .bind(t.lockouts)
        .bind(t.locked_until)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_throttle(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE username_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
