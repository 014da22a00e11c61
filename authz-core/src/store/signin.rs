//! Browser sign-ins between their steps (issue 24), kept server-side: the browser holds a
//! random handle, the row is keyed by its SHA-256 and spent once per step.

use async_trait::async_trait;

use crate::error::Result;

/// A sign-in in progress, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    pub user_id: String,
    /// RFC 8176 methods done so far.
    pub amr: Vec<String>,
    /// The user's credential state when the sign-in started (`http::browser::pending`).
    pub stamp: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait PendingSignInStore: Send + Sync {
    /// Keep a sign-in under `id_hash` (also forgets the expired ones).
    async fn put_pending_signin(&self, id_hash: &str, p: &PendingSignIn, now: i64) -> Result<()>;
    /// Spend the sign-in `id_hash` if it has not expired at `now`: one `DELETE … RETURNING`,
    /// so of two uses of the same handle exactly one gets it.
    async fn take_pending_signin(&self, id_hash: &str, now: i64) -> Result<Option<PendingSignIn>>;
    /// Read the sign-in `id_hash` without spending it (the passkey options of the next step).
    async fn get_pending_signin(&self, id_hash: &str, now: i64) -> Result<Option<PendingSignIn>>;
    /// End every sign-in in progress of the user; how many there were.
    async fn end_pending_signins(&self, user_id: &str) -> Result<u64>;
}
