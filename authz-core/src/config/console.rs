//! Configuration of the second factor (`[mfa]`, `AUTHZ_MFA_*`) and of the web console
//! (`[console]`, `AUTHZ_CONSOLE_*`).

use shared::config::ConfigError;

use super::table::{Section, invalid, section};

pub use super::types::ACR_PASSWORD;

section! {
    /// TOTP two-factor sign-in.
    #[serde(default, deny_unknown_fields)]
    pub struct MfaConfig at "mfa" {
        /// Users holding any of these roles (comma-separated; empty: none) must sign in with a
        /// second factor; until they have set one up they can only reach their account page to
        /// do so.
        required_roles: Vec<String> = Vec::new();
        /// The `acr` of a multi-factor sign-in (OIDC Core §2); asking for it in `acr_values` on
        /// `/authorize` forces the second factor.
        acr_value: String = "mfa".to_owned();
    }
}

section! {
    /// The account page and the admin console.
    #[serde(default, deny_unknown_fields)]
    pub struct ConsoleConfig at "console" {
        /// Users may delete their own account from `/account` (off: they are told to ask an
        /// administrator).
        account_deletion: bool = true;
        /// Changes that need a fresh re-authentication — every administrator's change, and
        /// every user's adding or removing a passkey, starting TOTP enrolment and creating an
        /// API key — need a sign-in this recent made with every factor the user has; older
        /// sessions are asked to sign in again.
        reauth_secs: i64 = 600, range 30..=86_400;
    }
}

impl MfaConfig {
    pub fn validate(
        &self,
        roles: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<(), ConfigError> {
        let ok = |v: &str| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        };
        if !ok(&self.acr_value) || self.acr_value == ACR_PASSWORD {
            return Err(invalid(
                Self::PATH,
                "acr_value",
                &format!(
                    "{:?} must be a short printable token other than {ACR_PASSWORD:?}",
                    self.acr_value
                ),
            ));
        }
        if let Some(r) = self.required_roles.iter().find(|r| !roles.contains_key(*r)) {
            return Err(invalid(
                Self::PATH,
                "required_roles",
                &format!("no role {r:?}"),
            ));
        }
        Ok(())
    }

    /// Must this user sign in with a second factor?
    pub fn required_for(&self, roles: &[String]) -> bool {
        roles.iter().any(|r| self.required_roles.contains(r))
    }
}
