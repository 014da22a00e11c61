//! Shared application state: configuration, storage, clock, keys and the services built from
//! them. Constructed once by `build_state` (or `build_state_with_store`), cloned cheaply into
//! every handler.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::events::Events;
use crate::events::audit::AuditLog;
use crate::keys::issuer::TokenIssuer;
use crate::keys::{KeyAdmin, KeyRing};
use crate::policy::password::PasswordHasher;
use crate::policy::scope::ScopePolicy;
use crate::store::{AuditEvent, ClientCache, Store};
use shared::limits::{Counters, Limiter};

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
    /// Where rate-limit counters live: this process, or Redis (shared by every replica).
    pub counters: Counters,
    /// `/register` calls per client IP.
    pub registrations: Option<Arc<Limiter>>,
    /// `/token` requests per authenticated client.
    pub token_per_client: Option<Arc<Limiter>>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Client ID Metadata Documents: the guarded fetcher and its failure memory.
    pub cimd: Arc<crate::outbound::cimd::Cimd>,
    /// The upstream identity providers' cached metadata and standing (federation).
    pub providers: Arc<crate::federation::Providers>,
    /// The LDAP directory people sign in with (`[ldap]`), if configured.
    pub directory: Option<Arc<dyn crate::identity::directory::Directory>>,
    /// DPoP proofs (RFC 9449): verifier, replay cache, nonces.
    pub dpop: Arc<crate::policy::dpop::Dpop>,
    /// Where audit events and Shared Signals go (over the same store, metrics and audit log).
    pub events: Events,
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

    /// Append an audit event and wait until it is committed (`Events::audit`).
    pub async fn audit(&self, event: AuditEvent) {
        self.events.audit(event).await;
    }

    /// Append a high-volume audit event without waiting for the commit.
    pub async fn audit_async(&self, event: AuditEvent) {
        self.events.audit_async(event).await;
    }

    /// The values `/metrics` samples at scrape time.
    pub fn metric_samples(&self) -> crate::metrics::Samples {
        let (db_connections, db_idle) = self.store.pool_usage();
        crate::metrics::Samples {
            hash_waiting: self.passwords.waiting(),
            db_connections,
            db_idle,
            failed_open: self.counters.fail_open_count(),
        }
    }

    /// Key administration over this state's store, master key, key ring and events.
    pub fn key_admin(&self) -> KeyAdmin<'_> {
        KeyAdmin {
            store: &*self.store,
            master: &self.master,
            ring: &self.keys,
            config: &self.config,
            events: &self.events,
        }
    }

    /// What client code works with (`clients::ClientServices`).
    pub fn client_services(&self) -> crate::clients::ClientServices<'_> {
        crate::clients::ClientServices {
            store: &*self.store,
            clients: &self.clients,
            cimd: &self.cimd,
            config: &self.config,
            scopes: &self.scopes,
            events: &self.events,
        }
    }

    /// What federation code works with (`federation::FederationServices`).
    pub fn federation(&self) -> crate::federation::FederationServices<'_> {
        crate::federation::FederationServices {
            identity: self.identity(),
            cimd: &self.cimd,
            providers: &self.providers,
        }
    }

    /// What identity code works with (`identity::IdentityServices`).
    pub fn identity(&self) -> crate::identity::IdentityServices<'_> {
        crate::identity::IdentityServices {
            store: &*self.store,
            config: &self.config,
            passwords: &self.passwords,
            master: &self.master,
            clients: &self.clients,
            events: &self.events,
            directory: self.directory.as_deref(),
        }
    }

    /// Schedule the next key when the rotation period says so, promote pending keys that are
    /// due, then re-read keys from storage (`KeyAdmin::reload`).
    pub async fn reload_keys(&self) -> crate::error::Result<()> {
        self.key_admin().reload().await
    }
}
