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
    /// `AUTHZ_CIMD_TRUST`: `open` (any https host; unverified unless allow-listed) or
    /// `allow-list` (only hosts in `allowed_hosts`).
    pub trust: Trust,
    /// `AUTHZ_CIMD_ALLOWED_HOSTS`: hosts (or `*.example.com` for its subdomains) whose
    /// documents are trusted: shown as verified, and the only ones accepted under `allow-list`.
    pub allowed_hosts: Vec<String>,
    /// `AUTHZ_CIMD_DENIED_HOSTS`: hosts (or `*.` patterns) whose documents are always refused.
    pub denied_hosts: Vec<String>,
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
    /// `AUTHZ_CIMD_FETCHES_PER_HOST_PER_MINUTE`: fetches per metadata host per minute, over
    /// all requesters (so this server cannot be made to flood a third party).
    pub fetches_per_host_per_minute: u32,
    /// `AUTHZ_CIMD_FETCHES_PER_IP_PER_MINUTE`: fetches one requesting address (IPv6 by /64)
    /// may cause per minute, over all hosts (so one address cannot spend a host's budget, or
    /// the fetch slots, for everybody).
    pub fetches_per_ip_per_minute: u32,
    /// `AUTHZ_CIMD_MAX_CONCURRENT_FETCHES`: fetches in flight at once, over all hosts.
    pub max_concurrent_fetches: usize,
    /// `AUTHZ_CIMD_KEY_SET_MAX_STALE_SECS`: how long after its last successful fetch a remote
    /// JWK Set (ID-JAG issuers, `private_key_jwt` `jwks_uri`s) is still used while its host
    /// fails to answer.
    pub key_set_max_stale_secs: i64,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trust: Trust::Open,
            allowed_hosts: Vec::new(),
            denied_hosts: Vec::new(),
            allowed_private_hosts: Vec::new(),
            extra_roots: None,
            timeout_secs: 5,
            max_document_bytes: 16 * 1024,
            min_cache_secs: 300,
            max_cache_secs: 86_400,
            negative_cache_secs: 60,
            fetches_per_host_per_minute: 30,
            fetches_per_ip_per_minute: 10,
            max_concurrent_fetches: 8,
            key_set_max_stale_secs: 86_400,
        }
    }
}

impl CimdConfig {
    pub fn apply_env<F: Fn(&str) -> Option<String>>(
        &mut self,
        env: &Env<F>,
    ) -> std::result::Result<(), ConfigError> {
        env.set("AUTHZ_CIMD_ENABLED", &mut self.enabled)?;
        env.set("AUTHZ_CIMD_TRUST", &mut self.trust)?;
        env.set_list("AUTHZ_CIMD_ALLOWED_HOSTS", &mut self.allowed_hosts)?;
        env.set_list("AUTHZ_CIMD_DENIED_HOSTS", &mut self.denied_hosts)?;
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
            "AUTHZ_CIMD_FETCHES_PER_IP_PER_MINUTE",
            &mut self.fetches_per_ip_per_minute,
        )?;
        env.set(
            "AUTHZ_CIMD_MAX_CONCURRENT_FETCHES",
            &mut self.max_concurrent_fetches,
        )?;
        env.set(
            "AUTHZ_CIMD_KEY_SET_MAX_STALE_SECS",
            &mut self.key_set_max_stale_secs,
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
        if self.key_set_max_stale_secs < 0 {
            return bad("key_set_max_stale_secs >= 0");
        }
        for p in self.allowed_hosts.iter().chain(&self.denied_hosts) {
            let bare = p.strip_prefix("*.").unwrap_or(p);
            if bare.is_empty() || bare.contains(['*', '/', ':', '@', ' ']) {
                return bad(&format!("host pattern {p:?} is not a host or *.domain"));
            }
        }
        if self.trust == Trust::AllowList && self.allowed_hosts.is_empty() {
            return bad("trust = allow-list needs allowed_hosts");
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

    /// What this server thinks of documents published at `host` (compared normalized, as
    /// the patterns: `crate::outbound::host`; a name that is no host name is denied).
    pub fn verdict(&self, host: &str) -> HostVerdict {
        let Some(host) = crate::outbound::host::normalize(host) else {
            return HostVerdict::Denied;
        };
        if self.denied_hosts.iter().any(|p| host_matches(p, &host)) {
            HostVerdict::Denied
        } else if self.allowed_hosts.iter().any(|p| host_matches(p, &host)) {
            HostVerdict::Verified
        } else if self.trust == Trust::AllowList {
            HostVerdict::Denied
        } else {
            HostVerdict::Unverified
        }
    }
}

/// The trust policy for metadata-document hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    Open,
    AllowList,
}

impl std::str::FromStr for Trust {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Self::Open),
            "allow-list" => Ok(Self::AllowList),
            other => Err(format!("{other:?}: use open or allow-list")),
        }
    }
}

/// A host's standing under the trust policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVerdict {
    /// On the deny-list, or not on the allow-list under `allow-list`.
    Denied,
    /// On the allow-list: shown without the "unverified" badge.
    Verified,
    Unverified,
}

/// `example.com` matches itself only; `*.example.com` matches its subdomains (not itself).
/// `host` is normalized; the pattern is normalized here.
fn host_matches(pattern: &str, host: &str) -> bool {
    let Some(pattern) = crate::outbound::host::normalize_pattern(pattern) else {
        return false;
    };
    match pattern.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_and_verdicts() {
        assert!(host_matches("app.example.com", "app.example.com"));
        assert!(!host_matches("app.example.com", "evil-app.example.com"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "badexample.com"));
        assert!(!host_matches("*.example.com", "example.com.evil.net"));
        let mut c = CimdConfig {
            allowed_hosts: vec!["*.trusted.example".into()],
            denied_hosts: vec!["bad.trusted.example".into()],
            ..CimdConfig::default()
        };
        assert_eq!(c.verdict("app.trusted.example"), HostVerdict::Verified);
        assert_eq!(c.verdict("BAD.trusted.example"), HostVerdict::Denied);
        assert_eq!(c.verdict("other.example"), HostVerdict::Unverified);
        // A trailing dot and capitals are the same host to every rule (issue 24 item 16).
        assert_eq!(c.verdict("bad.trusted.example."), HostVerdict::Denied);
        assert_eq!(c.verdict("BAD.Trusted.Example."), HostVerdict::Denied);
        assert_eq!(c.verdict("app.trusted.example."), HostVerdict::Verified);
        assert_eq!(c.verdict("bad.trusted.example.."), HostVerdict::Denied);
        let dotted = CimdConfig {
            denied_hosts: vec!["Evil.Test.".into(), "*.evil.example.".into()],
            ..CimdConfig::default()
        };
        assert_eq!(dotted.verdict("evil.test"), HostVerdict::Denied);
        assert_eq!(dotted.verdict("a.evil.example."), HostVerdict::Denied);
        assert_eq!(dotted.verdict("evil.example"), HostVerdict::Unverified);
        c.trust = Trust::AllowList;
        assert_eq!(c.verdict("other.example"), HostVerdict::Denied);
        assert!(c.validate().is_ok());
        c.allowed_hosts.clear();
        assert!(c.validate().is_err(), "allow-list without hosts");
    }
}
