//! Counts over time for the admin dashboard's charts (issue 17).

use async_trait::async_trait;

use crate::error::Result;

/// How many audit events of one kind and outcome fell into one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCount {
    pub kind: String,
    pub outcome: String,
    /// 0-based index of the bucket from the window's start.
    pub bucket: i64,
    pub count: i64,
}

#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// Audit events whose kind is one of `kinds`, with `since <= ts < since + buckets *
    /// bucket_secs`, counted per kind, outcome and bucket (`(ts - since) / bucket_secs`).
    /// Empty buckets are absent.
    async fn audit_buckets(
        &self,
        kinds: &[&str],
        since: i64,
        bucket_secs: i64,
        buckets: i64,
    ) -> Result<Vec<BucketCount>>;
}
