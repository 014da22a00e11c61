//! Configuration of the second factor (`[mfa]`) and of the web console (`[console]`).

use serde::Deserialize;
use shared::config::{ConfigError, Env};

pub use super::types::ACR_PASSWORD;

/// TOTP two-factor sign-in. Field docs name the environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaConfig {
    /// `AUTHZ_MFA_REQUIRED_ROLES` (comma-separated): users holding any of these roles must
    /// sign in with a second factor; until they have set one up they can only reach their
    /// account page to do so.
    pub required_roles: Vec<String>,
    /// `AUTHZ_MFA_ACR_VALUE`: the `acr` of a multi-factor sign-in (OIDC Core §2); asking for
    /// it in `acr_values` on `/authorize` forces the second factor. Default `mfa`.
    pub acr_value: String,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            required_roles: Vec::new(),
            acr_value: "mfa".to_owned(),
        }
    }
}

/// The account page and the admin console.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `AUTHZ_CONSOLE_ACCOUNT_DELETION`: users may delete their own account from `/account`
    /// (default on; off: they are told to ask an administrator).
    pub account_deletion: bool,
    /// `AUTHZ_CONSOLE_REAUTH_SECS`: changes that need a fresh re-authentication — every
    /// administrator's change, and every user's adding or removing a passkey, starting TOTP
    /// enrolment and creating an API key — need a sign-in this recent (default 600) made with
    /// every factor the user has; older sessions are asked to sign in again.
    pub reauth_secs: i64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            account_deletion: true,
            reauth_secs: 600,
        }
    }
}

impl MfaConfig {
    pub fn apply_env(
        &mut self,
        env: &Env<impl Fn(&str) -> Option<String>>,
    ) -> Result<(), ConfigError> {
        env.set_list("AUTHZ_MFA_REQUIRED_ROLES", &mut self.required_roles)?;
        env.set("AUTHZ_MFA_ACR_VALUE", &mut self.acr_value)?;
        Ok(())
    }

    pub fn validate(
        &self,
        roles: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<(), ConfigError> {
        let ok = |v: &str| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        };
        if !ok(&self.acr_value) || self.acr_value == ACR_PASSWORD {
            return Err(ConfigError(format!(
                "mfa.acr_value {:?} must be a short printable token other than {:?}",
                self.acr_value, ACR_PASSWORD
            )));
        }
        if let Some(r) = self.required_roles.iter().find(|r| !roles.contains_key(*r)) {
            return Err(ConfigError(format!("mfa.required_roles: no role {r:?}")));
        }
        Ok(())
    }

    /// Must this user sign in with a second factor?
    pub fn required_for(&self, roles: &[String]) -> bool {
        roles.iter().any(|r| self.required_roles.contains(r))
    }
}

impl ConsoleConfig {
    pub fn apply_env(
        &mut self,
        env: &Env<impl Fn(&str) -> Option<String>>,
    ) -> Result<(), ConfigError> {
        env.set("AUTHZ_CONSOLE_ACCOUNT_DELETION", &mut self.account_deletion)?;
        env.set("AUTHZ_CONSOLE_REAUTH_SECS", &mut self.reauth_secs)?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(30..=86_400).contains(&self.reauth_secs) {
            return Err(ConfigError(
                "console.reauth_secs must be within 30..=86400".into(),
            ));
        }
        Ok(())
    }
}
