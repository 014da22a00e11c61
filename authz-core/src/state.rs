//! Shared application state: configuration, storage, clock, keys and the services built from
//! them. Constructed once by `build_state` (or `build_state_with_store`), cloned cheaply into
//! every handler.

use crate::events::kinds;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::events::audit::AuditLog;
use crate::keys::KeyRing;
use crate::keys::issuer::TokenIssuer;
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
    pub cimd: Arc<crate::clients::cimd::resolver::Cimd>,
    /// DPoP proofs (RFC 9449): verifier, replay cache, nonces.
    pub dpop: Arc<crate::policy::dpop::Dpop>,
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
        self.metrics.audited(&event.kind, event.outcome.as_str());
        crate::events::alerts::enqueue(&self.config, &*self.store, &event).await;
        self.audit_log.record(event).await;
    }

    /// Append a high-volume audit event without waiting for the commit.
    pub async fn audit_async(&self, event: AuditEvent) {
        self.metrics.audited(&event.kind, event.outcome.as_str());
        crate::events::alerts::enqueue(&self.config, &*self.store, &event).await;
        self.audit_log.record_async(event).await;
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

    /// Schedule the next key when the rotation period says so, promote pending keys that are
    /// due, then re-read keys from storage (after a rotation by
    /// another process, or when a pre-published key's time has come).
    pub async fn reload_keys(&self) -> crate::error::Result<()> {
        // Taken before anything is read, so a reload overtaken by a newer one is dropped.
        let ticket = self.keys.begin_reload();
        let now = self.now();
        let publish_until = now + self.config.max_signed_token_ttl() + 60;
        if self.config.key_rotation_days > 0
            && let Some((kid, activate_at)) = crate::keys::rotate_on_schedule(
                &*self.store,
                &self.master,
                self.config.signing_alg,
                now,
                publish_until,
                self.config.key_rotation_days * 86_400,
                self.config.key_prepublish_secs,
            )
            .await?
        {
            tracing::info!(%kid, activate_at, "scheduled key rotation: next key published");
            let alg = self.config.signing_alg.as_str();
            self.audit(
                AuditEvent::new(now, kinds::KEY_ROTATED, crate::store::Outcome::Success)
                    .actor("system")
                    .details(serde_json::json!({
                        "kid": kid, "alg": alg, "activate_at": activate_at,
                        "immediate": false, "scheduled": true,
                    })),
            )
            .await;
        }
        crate::keys::promote_due(&*self.store, &self.master, now, publish_until).await?;
        let set = crate::keys::load_key_set(&*self.store, &self.master, now).await?;
        let changed = set.kids != self.keys.current().kids;
        if !self.keys.replace(ticket, set) {
            tracing::debug!("a newer key reload finished first; this one's keys are dropped");
            return Ok(());
        }
        if changed {
            tracing::info!(kid = %self.keys.current().active.kid(), "signing keys reloaded");
        }
        Ok(())
    }
}
