//! Passkeys (WebAuthn credentials) of users, and WebAuthn ceremonies in progress (issue 18).

use async_trait::async_trait;

use crate::error::Result;

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// base64url of the credential id.
    pub credential_id: String,
    pub user_id: String,
    /// The WebAuthn user handle (a UUID), as text.
    pub user_handle: String,
    pub name: String,
    /// webauthn-rs `Passkey` as JSON (public key, counter; no secret).
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Store a passkey registered from the browser session `sid`, only while that session is
    /// live (its row is taken first, as a remedy's transaction takes it to end the session):
    /// `false`, and nothing stored, once it has ended.
    async fn add_passkey(&self, p: &StoredPasskey, sid: &str) -> Result<bool>;
    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<StoredPasskey>>;
    async fn passkeys_of_handle(&self, user_handle: &str) -> Result<Vec<StoredPasskey>>;
    /// Record a use: the updated credential (counter) and when.
    /// `false` when the passkey is gone (removed since it was read).
    async fn touch_passkey(&self, credential_id: &str, passkey: &str, now: i64) -> Result<bool>;
    /// Remove one of the user's passkeys and, in the same transaction, end every session and
    /// refresh token of the user but those of `keep` (the user's own session making the
    /// change): a session signed in with the removed passkey must not outlive it. `None` when
    /// the user has no such passkey (nothing ended).
    async fn delete_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        now: i64,
        keep: Option<&str>,
    ) -> Result<Option<crate::store::GrantsEnded>>;
    /// Keep a ceremony's state until `expires_at` (also forgets expired ones).
    async fn put_ceremony(
        &self,
        id_hash: &str,
        user_id: Option<&str>,
        kind: &str,
        state: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()>;
    /// Take a ceremony's state, once: deleted in the same statement, so of two uses one wins;
    /// `None` when unknown, of another kind, or expired. (user id, state)
    async fn take_ceremony(
        &self,
        id_hash: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<(Option<String>, String)>>;
}
