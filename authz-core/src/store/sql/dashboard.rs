//! `DashboardStore` on SQL: one grouped query per chart window (the `audit_events_kind_ts`
//! index serves it).

use async_trait::async_trait;
use sqlx::Row;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{BucketCount, DashboardStore};

#[async_trait]
impl DashboardStore for SqlStore {
    async fn audit_buckets(
        &self,
        kinds: &[&str],
        since: i64,
        bucket_secs: i64,
        buckets: i64,
    ) -> Result<Vec<BucketCount>> {
        if kinds.is_empty() || bucket_secs <= 0 || buckets <= 0 {
            return Ok(Vec::new());
        }
        // `$4..` are the kinds; integer division is the same on both engines for ts >= since.
        let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "SELECT kind, outcome, (ts - $1) / $2 AS bucket, COUNT(*) AS n FROM audit_events \
             WHERE ts >= $1 AND ts < $3 AND kind IN ({}) \
             GROUP BY kind, outcome, (ts - $1) / $2",
            placeholders.join(", ")
        );
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(since)
            .bind(bucket_secs)
            .bind(since + buckets * bucket_secs);
        for k in kinds {
            q = q.bind(*k);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(BucketCount {
                    kind: r.try_get("kind")?,
                    outcome: r.try_get("outcome")?,
                    bucket: r.try_get("bucket")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }
}
