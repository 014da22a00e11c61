//! What the account page, the data export and account deletion read and change, keyed by
//! user (issue 17).

use async_trait::async_trait;

use crate::error::Result;
use crate::store::{RefreshTokenRecord, Session};

/// A remembered consent: the scopes a user approved for a client and resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentRecord {
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    pub created_at: Option<i64>,
    pub updated_at: i64,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The user's sessions that have not ended (browser and grant sessions), newest first —
    /// those past their idle or absolute lifetime too: a browser can no longer use one, but
    /// the grants signed in through it (refresh tokens, `sid`-bound access tokens) live until
    /// the session is ended, so every remedy that lists sessions must see it.
    async fn user_sessions(&self, user_id: &str) -> Result<Vec<Session>>;
    async fn user_consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>>;
    /// The user's refresh tokens of families that are neither revoked nor past their end
    /// (used ones included: they date the grant's first and last use).
    async fn user_refresh_tokens(&self, user_id: &str, now: i64)
    -> Result<Vec<RefreshTokenRecord>>;
    /// Forget what the user approved for `client_id` (every resource); how many were.
    async fn forget_consents(&self, user_id: &str, client_id: &str) -> Result<u64>;
    /// Delete the user and everything stored for them — sessions, refresh tokens, codes,
    /// consents, API keys, the second factor — in one transaction; the audit log keeps its
    /// records. `false` when there was no such user.
    async fn delete_user(&self, user_id: &str) -> Result<bool>;
}
