//! Application state shared by the HTTP layer and the MCP handlers.

use std::sync::Arc;

use shared::verifier::Verifier;

use crate::config::Config;
use crate::store::{AuditRow, Store};

#[derive(Debug)]
pub struct McpState {
    pub config: Config,
    pub store: Arc<Store>,
    /// Group-committed audit rows (see `shared::batch`).
    pub audit_log: shared::batch::BatchWriter<AuditRow>,
    pub verifier: Arc<Verifier>,
    /// Back-channel to the authorization server (token exchange, management API).
    pub authz: crate::authz_client::AuthzClient,
    /// Sessions logged out through this server → until when their tokens could live.
    pub logged_out: std::sync::RwLock<std::collections::HashMap<String, i64>>,
    /// Where rate-limit counters live: this process, or Redis (shared by every replica).
    pub counters: shared::limits::Counters,
    /// Requests per client IP (`None`: unlimited).
    pub limiter: Option<shared::limits::Limiter>,
    /// Requests per authenticated caller, `sub` + `client_id` (`None`: unlimited).
    pub caller_limiter: Option<shared::limits::Limiter>,
    /// Browser origins allowed on the MCP endpoint.
    pub origins: crate::origin::OriginPolicy,
    /// What `/metrics` reports.
    pub metrics: crate::metrics::Metrics,
    /// Injected time (`shared::clock`): token expiry, logouts, audit rows, rate windows.
    pub clock: std::sync::Arc<dyn shared::clock::Clock>,
}

impl McpState {
    /// Unix seconds, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Was this session logged out (through this server or loaded from its database)?
    pub fn is_logged_out(&self, sid: &str) -> bool {
        let map = match self.logged_out.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.contains_key(sid)
    }

    /// Refuse the session's tokens from now on (persisted, so a restart keeps refusing them),
    /// for as long as any token of it could still be valid: the issuer's longest access-token
    /// lifetime from now (not just the lifetime of the token that asked: the session may have
    /// newer ones).
    pub async fn mark_logged_out(&self, sid: &str) -> Result<(), crate::store::StoreError> {
        let now = self.now();
        let until = now + self.config.max_token_lifetime_secs + 60;
        self.store.revoke_session(sid, now, until).await?;
        let mut map = match self.logged_out.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        map.retain(|_, exp| *exp >= now);
        map.insert(sid.to_owned(), until);
        Ok(())
    }
}
