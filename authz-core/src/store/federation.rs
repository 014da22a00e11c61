//! Federation storage (issue 26): upstream identities linked to local users, and the round
//! trips to upstream providers in progress (single use, keyed by the SHA-256 of `state`).

use async_trait::async_trait;

use crate::error::Result;

/// An upstream identity linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FederatedIdentity {
    pub provider: String,
    pub subject: String,
    pub user_id: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// A round trip to an upstream provider in progress.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamLogin {
    pub provider: String,
    /// SHA-256 of the cookie value of the browser that began it.
    pub browser_hash: String,
    /// SHA-256 of the `nonce` sent.
    pub nonce_hash: String,
    /// The PKCE verifier, sealed under the master key (base64url).
    pub verifier_enc: String,
    /// Where the sign-in continues (JSON).
    pub target: String,
    /// An explicit link begun by this signed-in user.
    pub link_user_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for UpstreamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLogin")
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A provider's tokens for a user, sealed (the vault).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedUpstreamTokens {
    pub user_id: String,
    pub provider: String,
    /// The provider's subject (the linked identity) they were given to.
    pub subject: String,
    /// base64url of the sealed access token.
    pub access_enc: String,
    pub refresh_enc: Option<String>,
    pub expires_at: Option<i64>,
    pub scope: String,
    pub updated_at: i64,
}

impl std::fmt::Debug for SealedUpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedUpstreamTokens")
            .field("user_id", &self.user_id)
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait FederationStore: Send + Sync {
    /// Keep a round trip under `state_hash` (expired ones are swept first).
    async fn put_upstream_login(&self, state_hash: &str, l: &UpstreamLogin, now: i64)
    -> Result<()>;
    /// Spend the round trip of `state_hash`, if any and not expired (one `DELETE … RETURNING`:
    /// of two uses of one `state`, one wins).
    async fn take_upstream_login(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<UpstreamLogin>>;
    /// The link of (`provider`, `subject`).
    async fn federated_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<FederatedIdentity>>;
    /// Link (`provider`, `subject`) to a user; `Error::Conflict` when the pair is linked
    /// already (to anyone: a link never changes silently).
    async fn add_federated_identity(&self, id: &FederatedIdentity) -> Result<()>;
    /// A sign-in through the link: when, the address it asserted, the provider's session.
    async fn touch_federated_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        sid: Option<&str>,
        now: i64,
    ) -> Result<()>;
    /// The link whose last sign-in was in the provider's session `sid`.
    async fn federated_identity_by_sid(
        &self,
        provider: &str,
        sid: &str,
    ) -> Result<Option<FederatedIdentity>>;
    /// The links of one user, by provider then subject.
    async fn federated_identities_of(&self, user_id: &str) -> Result<Vec<FederatedIdentity>>;
    /// Remove a link of `user_id`; whether there was one.
    async fn remove_federated_identity(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
    ) -> Result<bool>;
    /// Spend a back-channel logout token (`jti_hash`) until `expires_at`: `false` when it was
    /// spent already (expired ones are swept first).
    async fn spend_logout_token(&self, jti_hash: &str, expires_at: i64, now: i64) -> Result<bool>;
    /// Keep a user's tokens of a provider, replacing those held, only while the identity
    /// (provider, subject) they were given to is linked to the user: `false` when it is not
    /// (an unlink came first).
    async fn put_upstream_tokens(&self, t: &SealedUpstreamTokens) -> Result<bool>;
    /// Replace the held tokens only if they are still the ones read (`access_enc`): a refresh
    /// whose answer comes back after a remedy discarded them writes nothing (`false`).
    async fn replace_upstream_tokens(
        &self,
        t: &SealedUpstreamTokens,
        read_access_enc: &str,
    ) -> Result<bool>;
    /// A user's tokens of a provider.
    async fn upstream_tokens(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<SealedUpstreamTokens>>;
    /// Delete a user's tokens (of one provider, or all): the rows deleted, for revoking them
    /// at the providers.
    async fn take_upstream_tokens(
        &self,
        user_id: &str,
        provider: Option<&str>,
    ) -> Result<Vec<SealedUpstreamTokens>>;
    /// How many users each provider has linked: (provider, count).
    async fn federated_user_counts(&self) -> Result<Vec<(String, i64)>>;
}
