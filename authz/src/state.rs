//! Shared application state: configuration, storage, clock, keys and the services built from
//! them. Constructed once by `build_state` (or `build_state_with_store`), cloned cheaply into
//! every handler.

use std::sync::Arc;

use crate::account::password::PasswordHasher;
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::keys::KeyRing;
use crate::oauth::issuer::TokenIssuer;
use crate::oauth::scope::ScopePolicy;
use crate::store::{AuditEvent, ClientCache, Store};
use shared::ratelimit::IpRateLimiter;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    pub master: Arc<MasterKey>,
    pub passwords: PasswordHasher,
    pub issuer: TokenIssuer,
    pub scopes: Arc<ScopePolicy>,
    pub clients: Arc<ClientCache>,
    pub audit_log: AuditLog,
    /// `/register` calls per client IP.
    pub registrations: Arc<IpRateLimiter>,
    /// Client ID Metadata Documents: the guarded fetcher and its failure memory.
    pub cimd: Arc<crate::cimd::resolver::Cimd>,
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Append an audit event and wait until it is committed.
    pub async fn audit(&self, event: AuditEvent) {
        self.audit_log.record(event).await;
    }

    /// Append a high-volume audit event without waiting for the commit.
    pub async fn audit_async(&self, event: AuditEvent) {
        self.audit_log.record_async(event).await;
    }

    /// Promote pending keys that are due, then re-read keys from storage (after a rotation by
    /// another process, or when a pre-published key's time has come).
    pub async fn reload_keys(&self) -> crate::error::Result<()> {
        let now = self.now();
        let publish_until = now + self.config.max_signed_token_ttl() + 60;
        crate::keys::promote_due(&*self.store, &self.master, now, publish_until).await?;
        let set = crate::keys::load_key_set(&*self.store, &self.master, now).await?;
        let changed = set.kids != self.keys.current().kids;
        self.keys.replace(set);
        if changed {
            tracing::info!(kid = %self.keys.current().active.kid(), "signing keys reloaded");
        }
        Ok(())
    }
}
