//! `ParStore` on SQL.

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{ParStore, PushedRequest};

#[async_trait]
impl ParStore for SqlStore {
    async fn create_pushed_request(&self, req: &PushedRequest) -> Result<()> {
        sqlx::query(
            "INSERT INTO par_requests (uri_hash, client_id, params, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&req.uri_hash)
        .bind(&req.client_id)
        .bind(&req.params)
        .bind(req.created_at)
        .bind(req.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        uri_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<PushedRequest>> {
        // RFC 9126 §4: one-time use. The read and the spending are one statement.
        let row = sqlx::query(
            "DELETE FROM par_requests WHERE uri_hash = $1 AND client_id = $2 AND expires_at > $3 \
             RETURNING uri_hash, client_id, params, created_at, expires_at",
        )
        .bind(uri_hash)
        .bind(client_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(PushedRequest {
                uri_hash: r.try_get("uri_hash")?,
                client_id: r.try_get("client_id")?,
                params: r.try_get("params")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_pushed_requests_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM par_requests WHERE expires_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
