//! Pushed authorization requests (RFC 9126): stored by the hash of their `request_uri`,
//! spent once.

use async_trait::async_trait;

use crate::error::Result;

/// A pushed request, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    /// SHA-256 hex of the `request_uri` value.
    pub uri_hash: String,
    pub client_id: String,
    /// The validated parameters, form-encoded.
    pub params: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait ParStore: Send + Sync {
    async fn create_pushed_request(&self, req: &PushedRequest) -> Result<()>;
    /// Spend the pushed request `uri_hash` of `client_id` if it has not expired at `now`: one
    /// `DELETE … RETURNING`, so of two concurrent redemptions exactly one gets it. `None`:
    /// unknown, already spent, expired, or another client's (nothing is spent then).
    async fn take_pushed_request(
        &self,
        uri_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<PushedRequest>>;
    /// Forget pushed requests that expired before `ts` (housekeeping).
    async fn delete_pushed_requests_before(&self, ts: i64) -> Result<u64>;
}
