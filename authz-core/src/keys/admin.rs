//! Key administration: rotating the signing key, withdrawing one, and re-reading the keys
//! (after a rotation by another process, when a pre-published key's time has come, or on the
//! rotation schedule). Audited; the CLI, the console and the background reload use it through
//! `AppState::key_admin`.

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::error::Result;
use crate::events::{Events, kinds};
use crate::keys::{Activation, KeyRing, SigningAlg, Withdrawal};
use crate::store::{AuditEvent, KeyStore, Outcome};

/// When a rotated key starts signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySwitch {
    /// After the pre-publication delay (the default of `authz keys rotate`).
    AfterPrepublication,
    /// At once (`authz keys rotate --now`): for a compromised key.
    Now,
}

/// What key administration works with: the key table, the master key that encrypts it, this
/// process's key ring, the configuration (algorithm, pre-publication, rotation schedule,
/// token lifetimes) and where events go.
#[derive(Clone, Copy)]
pub struct KeyAdmin<'a> {
    pub store: &'a dyn KeyStore,
    pub master: &'a MasterKey,
    pub ring: &'a KeyRing,
    pub config: &'a Config,
    pub events: &'a Events,
}

impl std::fmt::Debug for KeyAdmin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyAdmin")
    }
}

impl KeyAdmin<'_> {
    async fn audit(&self, ts: i64, kind: &str, actor: &str, details: serde_json::Value) {
        let ev = AuditEvent::new(ts, kind, Outcome::Success)
            .actor(actor)
            .details(details);
        self.events.audit(ev).await;
    }

    /// Rotate the signing key. By default the new key is published now and signs only after
    /// `key_prepublish_secs` (every resource server has refetched the JWKS by then); with
    /// `KeySwitch::Now` it signs at once. Either way the previous key stays published until
    /// every token it signed has expired. Returns the new kid and when it starts signing.
    pub async fn rotate_keys(
        &self,
        actor: &str,
        alg: SigningAlg,
        now_or_later: KeySwitch,
    ) -> Result<(String, i64)> {
        let now = self.events.now();
        let activate_at = match now_or_later {
            KeySwitch::Now => now,
            KeySwitch::AfterPrepublication => now + self.config.key_prepublish_secs,
        };
        let publish_until = activate_at + self.config.max_signed_token_ttl() + 60;
        let when = match now_or_later {
            KeySwitch::Now => Activation::Now,
            KeySwitch::AfterPrepublication => Activation::At(activate_at),
        };
        let previous = self.ring.current().active.kid().to_owned();
        let kid =
            crate::keys::rotate(self.store, self.master, alg, now, publish_until, when).await?;
        let details = serde_json::json!({
            "kid": kid, "alg": alg.as_str(), "previous": previous,
            "activate_at": activate_at, "immediate": now_or_later == KeySwitch::Now,
            "previous_published_until": publish_until,
        });
        self.audit(self.events.now(), kinds::KEY_ROTATED, actor, details)
            .await;
        self.reload().await?;
        Ok((kid, activate_at))
    }

    /// Withdraw a signing key at once (`authz keys revoke <kid>`, the console's "Withdraw";
    /// see `keys::withdraw`): unpublished from the JWKS, the key ring reloaded here and,
    /// through the database's change notification, on every replica. The active key is
    /// replaced first by a new key of the configured algorithm, signing from now on. Tokens
    /// the key signed stop verifying (here at once; at resource servers at their next JWKS
    /// fetch); refresh tokens are not signed and keep working, yielding tokens under the new
    /// key.
    pub async fn withdraw_key(&self, actor: &str, kid: &str) -> Result<Withdrawal> {
        let now = self.events.now();
        let publish_until = now + self.config.max_signed_token_ttl() + 60;
        let w = crate::keys::withdraw(
            self.store,
            self.master,
            kid,
            self.config.signing_alg,
            now,
            publish_until,
        )
        .await?;
        let details = serde_json::json!({
            "kid": w.kid, "purpose": w.purpose.as_str(), "replaced_by": w.replaced_by,
        });
        self.audit(self.events.now(), kinds::KEY_WITHDRAWN, actor, details)
            .await;
        self.reload().await?;
        Ok(w)
    }

    /// Schedule the next key when the rotation period says so, promote pending keys that are
    /// due, then re-read keys from storage (after a rotation by another process, or when a
    /// pre-published key's time has come).
    pub async fn reload(&self) -> Result<()> {
        // Taken before anything is read, so a reload overtaken by a newer one is dropped.
        let ticket = self.ring.begin_reload();
        let now = self.events.now();
        let config = self.config;
        let publish_until = now + config.max_signed_token_ttl() + 60;
        if config.key_rotation_days > 0
            && let Some((kid, activate_at)) = crate::keys::rotate_on_schedule(
                self.store,
                self.master,
                config.signing_alg,
                now,
                publish_until,
                config.key_rotation_days * 86_400,
                config.key_prepublish_secs,
            )
            .await?
        {
            tracing::info!(%kid, activate_at, "scheduled key rotation: next key published");
            let details = serde_json::json!({
                "kid": kid, "alg": config.signing_alg.as_str(), "activate_at": activate_at,
                "immediate": false, "scheduled": true,
            });
            self.audit(now, kinds::KEY_ROTATED, "system", details).await;
        }
        crate::keys::promote_due(self.store, self.master, now, publish_until).await?;
        let set = crate::keys::load_key_set(self.store, self.master, now).await?;
        let changed = set.kids != self.ring.current().kids;
        if !self.ring.replace(ticket, set) {
            tracing::debug!("a newer key reload finished first; this one's keys are dropped");
            return Ok(());
        }
        if changed {
            tracing::info!(kid = %self.ring.current().active.kid(), "signing keys reloaded");
        }
        Ok(())
    }
}
