//! `[dpop]` / `AUTHZ_DPOP_*`: DPoP at the authorization server (RFC 9449), the section read by
//! `policy::dpop` (which re-exports it from its old path).

use serde::Deserialize;
use shared::config::{ConfigError, Env};

/// `[dpop]` / `AUTHZ_DPOP_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpopConfig {
    /// `AUTHZ_DPOP` (default true): accept DPoP proofs and issue bound tokens.
    pub enabled: bool,
    /// `AUTHZ_DPOP_NONCE` (default false): proofs at `/token` must carry a server nonce.
    pub nonce: bool,
    /// `AUTHZ_DPOP_NONCE_SECS` (default 300): a nonce's window; the previous one is accepted
    /// too, so a nonce lives between one and two windows.
    pub nonce_secs: i64,
    /// `AUTHZ_DPOP_IAT_WINDOW_SECS` (default 60): how far a proof's `iat` may be from now.
    pub iat_window_secs: i64,
    /// `AUTHZ_DPOP_REPLAY_CACHE` (default 100000): the most live `jti`s remembered in this
    /// process (without Redis, or while Redis does not answer); when full, new proofs are
    /// refused until entries expire (at most `iat` window + 1 s after their `iat`).
    pub replay_cache: usize,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            nonce: false,
            nonce_secs: 300,
            iat_window_secs: 60,
            replay_cache: 100_000,
        }
    }
}

impl DpopConfig {
    pub fn apply_env(
        &mut self,
        env: &Env<impl Fn(&str) -> Option<String>>,
    ) -> Result<(), ConfigError> {
        env.set("AUTHZ_DPOP", &mut self.enabled)?;
        env.set("AUTHZ_DPOP_NONCE", &mut self.nonce)?;
        env.set("AUTHZ_DPOP_NONCE_SECS", &mut self.nonce_secs)?;
        env.set("AUTHZ_DPOP_IAT_WINDOW_SECS", &mut self.iat_window_secs)?;
        env.set("AUTHZ_DPOP_REPLAY_CACHE", &mut self.replay_cache)?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=600).contains(&self.iat_window_secs) {
            return Err(ConfigError(
                "dpop iat_window_secs must be within 5..=600".into(),
            ));
        }
        if !(30..=86_400).contains(&self.nonce_secs) {
            return Err(ConfigError(
                "dpop nonce_secs must be within 30..=86400".into(),
            ));
        }
        if self.replay_cache < 1_000 {
            return Err(ConfigError(
                "dpop replay_cache must be at least 1000".into(),
            ));
        }
        Ok(())
    }
}
