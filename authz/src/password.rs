//! Passwords: argon2id hashing on the blocking pool (bounded by a semaphore, so a burst of logins
//! cannot exhaust memory), verification with a dummy hash for unknown users, and the
//! NIST SP 800-63B policy (length bounds and a blocklist; no composition rules, §3.1.1.2).

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::{Argon2Config, PasswordPolicyConfig};
use crate::error::{Error, Result};

/// Common passwords refused by policy (compared case-insensitively).
const BLOCKLIST: &str = include_str!("common-passwords.txt");

/// Hashes and verifies passwords with fixed argon2id parameters.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password with the same parameters, verified against when the
    /// user does not exist so both paths cost the same.
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    pub fn new(cfg: &Argon2Config) -> Result<Self> {
        let params = Params::new(cfg.m_cost, cfg.t_cost, cfg.p_cost, None)
            .map_err(|e| Error::Invalid(format!("argon2 parameters: {e}")))?;
        let dummy = hash_with(&params, crate::crypto::random_secret().as_bytes())?;
        let parallel = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(parallel * 2)),
            dummy_hash: Arc::new(dummy),
        })
    }

    /// Hash a password (argon2id PHC string) off the async runtime.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&params, password.as_bytes()))
            .await
            .map_err(Error::internal)?
    }

    /// Verify against a stored hash; `None` (unknown user) verifies against the dummy hash and
    /// returns `false`, taking the same time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let known = stored.is_some();
        let hash = stored
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(Error::internal)?;
        Ok(ok && known)
    }
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// Check a new password against the policy; the error text is meant for the person choosing it.
pub fn check_policy(policy: &PasswordPolicyConfig, username: &str, password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < policy.min_length {
        return Err(Error::Invalid(format!(
            "password is too short: use at least {} characters (a passphrase of several words \
             works well)",
            policy.min_length
        )));
    }
    if len > policy.max_length {
        return Err(Error::Invalid(format!(
            "password is too long: at most {} characters",
            policy.max_length
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "password must not contain control characters".into(),
        ));
    }
    let lower = password.to_lowercase();
    if BLOCKLIST
        .lines()
        .map(str::trim)
        .any(|w| !w.is_empty() && w == lower)
    {
        return Err(Error::Invalid(
            "password is on the list of commonly used passwords; choose another".into(),
        ));
    }
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(Error::Invalid(
            "password must not contain the username".into(),
        ));
    }
    let first = lower.chars().next().unwrap_or_default();
    if lower.chars().all(|c| c == first) {
        return Err(Error::Invalid(
            "password must not be one repeated character".into(),
        ));
    }
    let bytes = lower.as_bytes();
    let sequential = bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
        || bytes.windows(2).all(|w| w[1].wrapping_add(1) == w[0]);
    if sequential {
        return Err(Error::Invalid(
            "password must not be a simple sequence".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicyConfig {
        PasswordPolicyConfig {
            min_length: 8,
            max_length: 64,
        }
    }

    #[test]
    fn policy_rules() {
        let p = policy();
        assert!(check_policy(&p, "alice", "correct horse battery").is_ok());
        assert!(check_policy(&p, "alice", "short").is_err());
        assert!(check_policy(&p, "alice", &"x".repeat(65)).is_err());
        assert!(
            check_policy(&p, "alice", "Password123").is_err(),
            "blocklisted"
        );
        assert!(
            check_policy(&p, "alice", "xx-Alice-2024-xx").is_err(),
            "contains username"
        );
        assert!(check_policy(&p, "alice", "aaaaaaaaaa").is_err());
        assert!(check_policy(&p, "alice", "abcdefghij").is_err());
        assert!(check_policy(&p, "alice", "tab\there-is-bad").is_err());
        // Unicode counts characters, not bytes.
        assert!(check_policy(&p, "bob", "ééééééé").is_err());
        assert!(check_policy(&p, "bob", "ñandú-río-grande").is_ok());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(&Argon2Config {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        })
        .unwrap();
        let hash = h.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!h.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!h.verify("correct horse", None).await.unwrap());
        assert!(!h.verify("x", Some("not a phc string")).await.unwrap());
    }
}
