//! `ThrottleStore` on SQL: sign-in attempt counters, shared by every replica. Each attempt is
//! one upsert with `RETURNING` (SQLite ≥ 3.35 and PostgreSQL alike), so the count a caller
//! decides on already includes every concurrent attempt before it.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{LoginThrottle, ThrottleStore};

fn throttle(r: &AnyRow) -> Result<LoginThrottle> {
    Ok(LoginThrottle {
        failures: r.try_get("failures")?,
        window_start: r.try_get("window_start")?,
        lockouts: r.try_get("lockouts")?,
        locked_until: r.try_get("locked_until")?,
    })
}

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
        row.as_ref().map(throttle).transpose()
    }

    async fn count_attempt(&self, key: &str, now: i64, window_secs: i64) -> Result<LoginThrottle> {
        // $2 = now, $3 = the start of the current window (older windows start over).
        let row = sqlx::query(
            "INSERT INTO login_throttle (username_key, failures, window_start, lockouts, \
             locked_until) VALUES ($1, 1, $2, 0, NULL) \
             ON CONFLICT (username_key) DO UPDATE SET \
               failures = CASE \
                 WHEN login_throttle.locked_until IS NOT NULL AND login_throttle.locked_until > $2 \
                   THEN login_throttle.failures \
                 WHEN login_throttle.window_start <= $3 THEN 1 \
                 ELSE login_throttle.failures + 1 END, \
               window_start = CASE \
                 WHEN login_throttle.locked_until IS NOT NULL AND login_throttle.locked_until > $2 \
                   THEN login_throttle.window_start \
                 WHEN login_throttle.window_start <= $3 THEN $2 \
                 ELSE login_throttle.window_start END \
             RETURNING failures, window_start, lockouts, locked_until",
        )
        .bind(key)
        .bind(now)
        .bind(now - window_secs)
        .fetch_one(&self.pool)
        .await?;
        throttle(&row)
    }

    async fn lock_throttle(
        &self,
        key: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<LoginThrottle>> {
        let row = sqlx::query(
            "UPDATE login_throttle SET locked_until = $1, lockouts = lockouts + 1, failures = 0, \
             window_start = $2 \
             WHERE username_key = $3 AND (locked_until IS NULL OR locked_until <= $2) \
             RETURNING failures, window_start, lockouts, locked_until",
        )
        .bind(until)
        .bind(now)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(throttle).transpose()
    }

    async fn clear_throttle(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_throttle WHERE username_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
