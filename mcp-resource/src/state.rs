//! Application state shared by the HTTP layer and the MCP handlers, and every `impl McpState`:
//! the clock, refusals (their challenge details and count), the audit trail and revocations.

use std::sync::Arc;

use shared::verifier::Verifier;

use crate::auth::caller::Caller;
use crate::auth::refusal::{AuthError, Refusal};
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
    /// What must be refused although it verifies: ended sessions, revoked grants, accounts
    /// (from Shared Signals events and the logout tool; persisted).
    pub revocations: crate::revocations::Revocations,
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
    /// DPoP proofs (RFC 9449 §7): the verifier, its replay store (Redis with `MCP_REDIS_URL`)
    /// and, with `MCP_DPOP_NONCE`, its nonces.
    pub dpop: shared::dpop::DpopVerifier,
    /// What each tool and resource needs (`rbac`), as configured.
    pub rbac: crate::rbac::Rbac,
}

impl McpState {
    /// Unix seconds, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Refuse what `rule` covers from now on, until `until` (persisted first, so a restart
    /// keeps refusing it): the one way both the logout tool and Shared Signals events revoke.
    pub async fn revoke(
        &self,
        rule: crate::revocations::Rule,
        now: i64,
        until: i64,
    ) -> Result<(), crate::store::StoreError> {
        let stored = crate::revocations::Stored::new(rule, until);
        self.store.save_revocation(&stored).await?;
        self.revocations.insert(stored, now);
        Ok(())
    }

    /// Refuse the session's tokens from now on, for as long as any token of it could still be
    /// valid: the issuer's longest access-token lifetime from now (not just the lifetime of the
    /// token that asked: the session may have newer ones).
    pub async fn mark_logged_out(&self, sid: &str) -> Result<(), crate::store::StoreError> {
        let now = self.now();
        let until = now + self.config.max_token_lifetime_secs + 60;
        let rule = crate::revocations::Rule::Session {
            sid: sid.to_owned(),
        };
        self.revoke(rule, now, until).await
    }

    /// A refusal carrying this server's challenge details (RFC 9728 `resource_metadata`, RFC
    /// 6750 `scope`, a fresh DPoP nonce for `use_dpop_nonce`, RFC 9449 §9), counted in the
    /// metrics; `scope` defaults to the configured challenge scope.
    pub fn refuse(&self, kind: Refusal, scope: Option<String>) -> AuthError {
        self.metrics.refused(kind.name());
        let nonce = match kind {
            Refusal::UseDpopNonce(_) => self.dpop.current_nonce(self.now()),
            _ => None,
        };
        AuthError::new(
            kind,
            self.config.metadata_url(),
            scope.unwrap_or_else(|| self.config.challenge_scope.clone()),
            self.config.dpop_required,
            nonce,
        )
    }

    /// Record an allowed or denied call (never tokens or note contents).
    pub async fn audit(
        &self,
        caller: Option<&Caller>,
        action: &str,
        outcome: &'static str,
        reason: Option<String>,
    ) {
        let row = AuditRow {
            ts: self.now(),
            subject: caller.map(|c| c.claims.sub.clone()),
            client_id: caller.map(|c| c.claims.client_id.clone()),
            action: action.to_owned(),
            outcome,
            reason,
        };
        // Allowed calls are the high-volume case: enqueue only. Denials wait for the commit.
        if outcome == "allowed" {
            self.audit_log.record_async(row).await;
        } else {
            self.audit_log.record(row).await;
        }
    }
}
