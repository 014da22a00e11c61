//! `DeviceStore` on SQL. A poll is one `UPDATE … RETURNING` whose `SET` expressions all read
//! the row as it was: the answer (`last_result`), the raised interval and the `approved` →
//! `issued` step are decided together, under the row's lock, so two concurrent polls of an
//! approved code cannot both be told to issue.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::{SqlStore, conflict, parse_col};
use crate::store::{DeviceAuthorization, DeviceStore, PollOutcome};

fn record(r: &AnyRow) -> Result<DeviceAuthorization> {
    Ok(DeviceAuthorization {
        device_hash: r.try_get("device_hash")?,
        user_code_hash: r.try_get("user_code_hash")?,
        client_id: r.try_get("client_id")?,
        scope: r.try_get("scope")?,
        resource: r.try_get("resource")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        interval_secs: r.try_get("interval_secs")?,
        last_poll_at: r.try_get("last_poll_at")?,
        status: parse_col(r, "status")?,
        user_id: r.try_get("user_id")?,
        decided_at: r.try_get("decided_at")?,
        amr: r
            .try_get::<Option<String>, _>("amr")?
            .map(|a| crate::store::sql::words(&a))
            .unwrap_or_default(),
        approving_sid: r.try_get("approving_sid")?,
    })
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn create_device_authorization(&self, d: &DeviceAuthorization) -> Result<()> {
        sqlx::query(
            "INSERT INTO device_codes (device_hash, user_code_hash, client_id, scope, resource, \
             created_at, expires_at, interval_secs, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&d.device_hash)
        .bind(&d.user_code_hash)
        .bind(&d.client_id)
        .bind(&d.scope)
        .bind(&d.resource)
        .bind(d.created_at)
        .bind(d.expires_at)
        .bind(d.interval_secs)
        .bind(d.status.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, "user code"))?;
        Ok(())
    }

    async fn device_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>> {
        let row = sqlx::query("SELECT * FROM device_codes WHERE user_code_hash = $1")
            .bind(user_code_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn decide_device(
        &self,
        user_code_hash: &str,
        approve: bool,
        user_id: &str,
        sid: &str,
        amr: &[String],
        now: i64,
    ) -> Result<bool> {
        let status = if approve { "approved" } else { "denied" };
        let r = sqlx::query(
            "UPDATE device_codes SET status = $1, user_id = $2, decided_at = $3, amr = $5, \
             approving_sid = $6 \
             WHERE user_code_hash = $4 AND status = 'pending' AND expires_at > $3",
        )
        .bind(status)
        .bind(user_id)
        .bind(now)
        .bind(user_code_hash)
        .bind(amr.join(" "))
        .bind(sid)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn poll_device(
        &self,
        device_hash: &str,
        client_id: &str,
        now: i64,
        slow_down_secs: i64,
    ) -> Result<PollOutcome> {
        // RFC 8628 §3.5: `slow_down` only while pending; a decided code is answered at once.
        let row = sqlx::query(
            "UPDATE device_codes SET \
             last_result = CASE \
               WHEN expires_at <= $3 THEN 'expired' \
               WHEN status = 'approved' THEN 'issue' \
               WHEN status = 'issued' THEN 'issued' \
               WHEN status = 'denied' THEN 'denied' \
               WHEN last_poll_at IS NOT NULL AND $3 - last_poll_at < interval_secs \
                 THEN 'slow_down' \
               ELSE 'pending' END, \
             interval_secs = CASE \
               WHEN expires_at > $3 AND status = 'pending' AND last_poll_at IS NOT NULL \
                 AND $3 - last_poll_at < interval_secs THEN interval_secs + $4 \
               ELSE interval_secs END, \
             status = CASE WHEN expires_at > $3 AND status = 'approved' THEN 'issued' \
               ELSE status END, \
             last_poll_at = $3 \
             WHERE device_hash = $1 AND client_id = $2 \
             RETURNING *",
        )
        .bind(device_hash)
        .bind(client_id)
        .bind(now)
        .bind(slow_down_secs)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(PollOutcome::NotFound);
        };
        let result: Option<String> = row.try_get("last_result")?;
        Ok(match result.as_deref() {
            Some("expired") => PollOutcome::Expired,
            Some("issue") => PollOutcome::Issue(Box::new(record(&row)?)),
            Some("issued") => PollOutcome::AlreadyIssued,
            Some("denied") => PollOutcome::Denied,
            Some("slow_down") => PollOutcome::SlowDown {
                interval_secs: row.try_get("interval_secs")?,
            },
            _ => PollOutcome::Pending,
        })
    }

    async fn delete_device_authorizations_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM device_codes WHERE expires_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
