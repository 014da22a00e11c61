//! `[alerts]`: security alerts, chosen audit event kinds POSTed as HMAC-signed JSON to
//! webhooks (`crate::events::alerts`). Webhooks are `[[alerts.webhooks]]` tables in the TOML
//! file; the environment may add one (`AUTHZ_ALERTS_WEBHOOKS_URL`, `_SECRET`, `_KINDS`).

use serde::Deserialize;
use shared::config::{self, ConfigError};

use super::table::{Lookup, Section, invalid, is_set, section};
use crate::config::kinds;

/// Webhooks that receive chosen audit event kinds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub webhooks: Vec<Webhook>,
}

section! {
    /// One webhook: where, the HMAC key, and which event kinds (`key.*` matches a prefix).
    #[serde(deny_unknown_fields)]
    pub struct Webhook at "alerts.webhooks" {
        /// Where alerts are POSTed: https, or http on loopback only.
        url: String = String::new(), was ["AUTHZ_ALERT_WEBHOOK_URL"];
        /// The HMAC key the body is signed with (at least 16 characters).
        secret: shared::secret::SigningSecret = shared::secret::SigningSecret::new(""),
            was ["AUTHZ_ALERT_WEBHOOK_SECRET"];
        /// The event kinds sent, comma-separated (`key.*` matches a prefix).
        #[serde(default = "default_alert_kinds")]
        kinds: Vec<String> = default_alert_kinds(), was ["AUTHZ_ALERT_KINDS"];
    }
}

/// Lockouts, refresh reuse, code replays, signing-key and administrative changes.
pub(crate) fn default_alert_kinds() -> Vec<String> {
    [
        kinds::LOGIN_LOCKED,
        kinds::REFRESH_REUSE_DETECTED,
        kinds::CODE_REPLAYED,
        "key.*",
        "user.*",
        "client.*",
        "api_key.*",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

impl AlertsConfig {
    /// One webhook from the environment, added to those of the file.
    pub(crate) fn apply_env(&mut self, env: &Lookup<'_>) -> Result<(), ConfigError> {
        if !is_set::<Webhook>(env, "url") {
            return Ok(());
        }
        if !is_set::<Webhook>(env, "secret") {
            return Err(invalid(Webhook::PATH, "url", "needs a secret too"));
        }
        let mut hook = Webhook::default();
        hook.apply_vars(env)?;
        self.webhooks.push(hook);
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for hook in &self.webhooks {
            let bad = |m: &str| {
                Err(invalid(
                    Webhook::PATH,
                    "url",
                    &format!("{:?}: {m}", hook.url),
                ))
            };
            let Ok(url) = url::Url::parse(&hook.url) else {
                return bad("not a URL");
            };
            if !config::https_or_loopback(url.scheme(), url.host_str()) {
                return bad("must be https (http only on loopback)");
            }
            if hook.secret.expose().len() < 16 {
                return Err(invalid(
                    Webhook::PATH,
                    "secret",
                    "must be at least 16 characters",
                ));
            }
        }
        Ok(())
    }
}
