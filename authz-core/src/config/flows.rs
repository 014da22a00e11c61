//! Configuration of the device authorization grant (`[device]`, RFC 8628) and of pushed
//! authorization requests (`[par]`, RFC 9126). Field docs name the environment variable.

use serde::Deserialize;
use shared::config::{ConfigError, Env};

/// The device authorization grant (RFC 8628).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    /// `AUTHZ_DEVICE_FLOW`: serve `/device_authorization`, `/device` and the grant at
    /// `/token` (default on; clients still need the grant in their `grant_types`).
    pub enabled: bool,
    /// `AUTHZ_DEVICE_CODE_TTL_SECS`: how long a device code and its user code live
    /// (RFC 8628 §3.2 `expires_in`; default 600).
    pub code_ttl_secs: i64,
    /// `AUTHZ_DEVICE_INTERVAL_SECS`: the minimum polling interval (§3.2 `interval`; default 5).
    pub interval_secs: i64,
    /// `AUTHZ_DEVICE_RATE`: device authorization requests per minute per client IP (0: none;
    /// default 30).
    pub rate_per_minute: u32,
    /// `AUTHZ_DEVICE_USER_CODE_ATTEMPTS`: user codes a signed-in session may enter per minute
    /// (RFC 8628 §5.1 brute-force protection; default 5).
    pub user_code_attempts_per_minute: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            code_ttl_secs: 600,
            interval_secs: 5,
            rate_per_minute: 30,
            user_code_attempts_per_minute: 5,
        }
    }
}

impl DeviceConfig {
    pub fn apply_env(
        &mut self,
        env: &Env<impl Fn(&str) -> Option<String>>,
    ) -> Result<(), ConfigError> {
        env.set("AUTHZ_DEVICE_FLOW", &mut self.enabled)?;
        env.set("AUTHZ_DEVICE_CODE_TTL_SECS", &mut self.code_ttl_secs)?;
        env.set("AUTHZ_DEVICE_INTERVAL_SECS", &mut self.interval_secs)?;
        env.set("AUTHZ_DEVICE_RATE", &mut self.rate_per_minute)?;
        env.set(
            "AUTHZ_DEVICE_USER_CODE_ATTEMPTS",
            &mut self.user_code_attempts_per_minute,
        )?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(60..=3600).contains(&self.code_ttl_secs) {
            return Err(ConfigError(
                "device.code_ttl_secs must be within 60..=3600".into(),
            ));
        }
        if !(1..=60).contains(&self.interval_secs) {
            return Err(ConfigError(
                "device.interval_secs must be within 1..=60".into(),
            ));
        }
        if self.user_code_attempts_per_minute == 0 || self.user_code_attempts_per_minute > 60 {
            return Err(ConfigError(
                "device.user_code_attempts_per_minute must be within 1..=60".into(),
            ));
        }
        Ok(())
    }
}

/// Pushed authorization requests (RFC 9126).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParConfig {
    /// `AUTHZ_REQUIRE_PAR`: every authorization request must be pushed first (RFC 9126 §5
    /// `require_pushed_authorization_requests`; default off — clients may still be required
    /// one by one).
    pub required: bool,
    /// `AUTHZ_PAR_TTL_SECS`: how long a `request_uri` lives (§2.2 `expires_in`; default 60).
    pub request_uri_ttl_secs: i64,
    /// `AUTHZ_PAR_FLOW_SECS`: how long the sign-in and consent steps after a spent
    /// `request_uri` may take (default 900).
    pub flow_secs: i64,
}

impl Default for ParConfig {
    fn default() -> Self {
        Self {
            required: false,
            request_uri_ttl_secs: 60,
            flow_secs: 900,
        }
    }
}

impl ParConfig {
    pub fn apply_env(
        &mut self,
        env: &Env<impl Fn(&str) -> Option<String>>,
    ) -> Result<(), ConfigError> {
        env.set("AUTHZ_REQUIRE_PAR", &mut self.required)?;
        env.set("AUTHZ_PAR_TTL_SECS", &mut self.request_uri_ttl_secs)?;
        env.set("AUTHZ_PAR_FLOW_SECS", &mut self.flow_secs)?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        // RFC 9126 §2.2: short-lived; "between 5 and 600 seconds" is the RFC's guidance.
        if !(5..=600).contains(&self.request_uri_ttl_secs) {
            return Err(ConfigError(
                "par.request_uri_ttl_secs must be within 5..=600".into(),
            ));
        }
        if !(60..=3600).contains(&self.flow_secs) {
            return Err(ConfigError("par.flow_secs must be within 60..=3600".into()));
        }
        Ok(())
    }
}
