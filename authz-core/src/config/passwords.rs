//! `[argon2]` (password hashing, `AUTHZ_ARGON2_*`) and `[password_policy]` (length bounds,
//! `AUTHZ_PASSWORD_POLICY_*`).

use shared::config::ConfigError;

use super::table::{Section, invalid, section};

section! {
    /// argon2id parameters; the defaults are OWASP's (Password Storage Cheat Sheet: m=19 MiB,
    /// t=2, p=1). Tests use tiny values through these same settings (`Config::for_tests`).
    #[derive(Copy)]
    #[serde(default, deny_unknown_fields)]
    pub struct Argon2Config at "argon2" {
        /// Memory cost in KiB (at least 8).
        m_cost: u32 = 19_456;
        /// Iterations (at least 1).
        t_cost: u32 = 2;
        /// Parallelism (at least 1).
        p_cost: u32 = 1;
        /// Hashing threads, each owning one `m_cost` memory block (0 = one per core). Peak
        /// hashing memory is workers × m_cost.
        workers: usize = 0, range 0..=256;
        /// Sign-ins that may wait for a worker; beyond that they are shed with 503 +
        /// `Retry-After`.
        queue: usize = 32, range 0..=100_000;
    }
}

impl Argon2Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_ranges()?;
        for (key, value, least) in [
            ("m_cost", self.m_cost, 8),
            ("t_cost", self.t_cost, 1),
            ("p_cost", self.p_cost, 1),
        ] {
            if value < least {
                return Err(invalid(
                    Self::PATH,
                    key,
                    &format!("must be at least {least} (argon2's minimum)"),
                ));
            }
        }
        Ok(())
    }
}

section! {
    /// Password length bounds (NIST SP 800-63B-4 §3.1.1.2).
    #[derive(Copy)]
    #[serde(default, deny_unknown_fields)]
    pub struct PasswordPolicyConfig at "password_policy" {
        /// The shortest password accepted (NIST: at least 15 characters for a password used
        /// alone; 8 at the least).
        min_length: usize = 15, was ["AUTHZ_PASSWORD_MIN_LENGTH"];
        /// The longest password accepted (NIST asks for at least 64).
        max_length: usize = 128, was ["AUTHZ_PASSWORD_MAX_LENGTH"];
    }
}

impl PasswordPolicyConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_length < 8 || self.max_length < 64 || self.min_length > self.max_length {
            return Err(invalid(
                Self::PATH,
                "min_length",
                "must be ≥ 8, max_length ≥ 64 and ≥ min_length (NIST SP 800-63B)",
            ));
        }
        Ok(())
    }
}
