//! The configuration of metadata-document clients (`AUTHZ_CIMD_*`), part of the one `Config`.

use std::path::PathBuf;

use serde::Deserialize;
use shared::config::{ConfigError, Env};

/// Configuration of metadata-document clients. Field docs name the environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CimdConfig {
    /// `AUTHZ_CIMD_ENABLED`: accept metadata-document clients (advertised in metadata).
    pub enabled: bool,
    /// `AUTHZ_CIMD_ALLOWED_PRIVATE_HOSTS`: `host[:port]` entries fetched even though they
    /// resolve to loopback or private addresses (tests, private deployments).
    pub allowed_private_hosts: Vec<String>,
    /// `AUTHZ_CIMD_EXTRA_ROOTS`: a PEM file of trust anchors added to the system's.
    pub extra_roots: Option<PathBuf>,
    /// `AUTHZ_CIMD_TIMEOUT_SECS`: connect and whole-fetch timeout.
    pub timeout_secs: u64,
    /// `AUTHZ_CIMD_MAX_BYTES`: the largest document read.
    pub max_document_bytes: usize,
    /// `AUTHZ_CIMD_MIN_CACHE_SECS` / `AUTHZ_CIMD_MAX_CACHE_SECS`: the clamp on caching headers.
    pub min_cache_secs: i64,
    pub max_cache_secs: i64,
    /// `AUTHZ_CIMD_NEGATIVE_CACHE_SECS`: how long a failed fetch is remembered.
    pub negative_cache_secs: i64,
    /// `AUTHZ_CIMD_FETCHES_PER_HOST_PER_MINUTE`.
    pub fetches_per_host_per_minute: u32,
    /// `AUTHZ_CIMD_MAX_CONCURRENT_FETCHES`: fetches in flight at once, over all hosts.
    pub max_concurrent_fetches: usize,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_private_hosts: Vec::new(),
            extra_roots: None,
            timeout_secs: 5,
            max_document_bytes: 16 * 1024,
            min_cache_secs: 300,
            max_cache_secs: 86_400,
            negative_cache_secs: 60,
            fetches_per_host_per_minute: 30,
            max_concurrent_fetches: 8,
        }
    }
}

impl CimdConfig {
    pub fn apply_env<F: Fn(&str) -> Option<String>>(
        &mut self,
        env: &Env<F>,
    ) -> std::result::Result<(), ConfigError> {
        env.set("AUTHZ_CIMD_ENABLED", &mut self.enabled)?;
        env.set_list(
            "AUTHZ_CIMD_ALLOWED_PRIVATE_HOSTS",
            &mut self.allowed_private_hosts,
        )?;
        env.set_some("AUTHZ_CIMD_EXTRA_ROOTS", &mut self.extra_roots)?;
        env.set("AUTHZ_CIMD_TIMEOUT_SECS", &mut self.timeout_secs)?;
        env.set("AUTHZ_CIMD_MAX_BYTES", &mut self.max_document_bytes)?;
        env.set("AUTHZ_CIMD_MIN_CACHE_SECS", &mut self.min_cache_secs)?;
        env.set("AUTHZ_CIMD_MAX_CACHE_SECS", &mut self.max_cache_secs)?;
        env.set(
            "AUTHZ_CIMD_NEGATIVE_CACHE_SECS",
            &mut self.negative_cache_secs,
        )?;
        env.set(
            "AUTHZ_CIMD_FETCHES_PER_HOST_PER_MINUTE",
            &mut self.fetches_per_host_per_minute,
        )?;
        env.set(
            "AUTHZ_CIMD_MAX_CONCURRENT_FETCHES",
            &mut self.max_concurrent_fetches,
        )?;
        Ok(())
    }

    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(format!("cimd: {m}")));
        if !(1..=60).contains(&self.timeout_secs) {
            return bad("timeout_secs must be within 1..=60");
        }
        if !(1024..=1024 * 1024).contains(&self.max_document_bytes) {
            return bad("max_document_bytes must be within 1 KiB..=1 MiB");
        }
        if self.min_cache_secs < 0 || self.max_cache_secs < self.min_cache_secs {
            return bad("0 <= min_cache_secs <= max_cache_secs");
        }
        if self.negative_cache_secs < 0 || self.max_concurrent_fetches == 0 {
            return bad("negative_cache_secs >= 0 and max_concurrent_fetches >= 1");
        }
        for h in &self.allowed_private_hosts {
            if h.is_empty() || h.contains(['/', '@', ' ']) {
                return bad(&format!(
                    "allowed_private_hosts entry {h:?} is not host[:port]"
                ));
            }
        }
        Ok(())
    }

    /// The extra trust anchors, read once at start.
    pub fn load_roots(&self) -> std::result::Result<Vec<reqwest::Certificate>, ConfigError> {
        let Some(path) = &self.extra_roots else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(path)
            .map_err(|e| ConfigError(format!("cimd extra roots {}: {e}", path.display())))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ConfigError(format!("cimd extra roots {}: {e}", path.display())))?;
        if roots.is_empty() {
            return Err(ConfigError(format!(
                "cimd extra roots {}: no certificate in the file",
                path.display()
            )));
        }
        Ok(roots)
    }
}
