//! The configuration of metadata-document clients (`AUTHZ_CIMD_*`), part of the one `Config`.

use std::path::PathBuf;

use serde::Deserialize;
use shared::config::ConfigError;

use super::table::{Section, invalid, section};

section! {
    /// Configuration of metadata-document clients: a `client_id` that is an https URL names
    /// the client's metadata, fetched by this server (https only, no redirects, SSRF-guarded,
    /// size- and time-bounded).
    #[serde(default, deny_unknown_fields)]
    pub struct CimdConfig at "cimd" {
        /// Accept metadata-document clients (advertised in metadata).
        enabled: bool = true;
        /// `open` (any https host; shown as unverified unless allow-listed) or `allow-list`
        /// (only hosts in `allowed_hosts`).
        trust: Trust = Trust::Open;
        /// Hosts (or `*.example.com` for its subdomains), comma-separated, whose documents are
        /// trusted: shown as verified, and the only ones accepted under `allow-list`.
        allowed_hosts: Vec<String> = Vec::new();
        /// Hosts (or `*.` patterns) whose documents are always refused.
        denied_hosts: Vec<String> = Vec::new();
        /// `host[:port]` entries fetched even though they resolve to loopback or private
        /// addresses (tests, private deployments).
        allowed_private_hosts: Vec<String> = Vec::new();
        /// A PEM file of trust anchors added to the system's.
        extra_roots: Option<PathBuf> = None;
        /// Connect and whole-fetch timeout.
        timeout_secs: u64 = 5, range 1..=60;
        /// The largest document read (1 KiB..=1 MiB).
        max_document_bytes: usize = 16 * 1024, range 1024..=1_048_576,
            was ["AUTHZ_CIMD_MAX_BYTES"];
        /// The least time a fetched document is cached, whatever its caching headers say.
        min_cache_secs: i64 = 300;
        /// The longest time a fetched document is cached.
        max_cache_secs: i64 = 86_400;
        /// How long a failed fetch is remembered.
        negative_cache_secs: i64 = 60;
        /// Fetches per metadata host per minute, over all requesters (so this server cannot be
        /// made to flood a third party). Operator-configured key sets (ID-JAG issuers,
        /// administrators' clients' `jwks_uri`) are fetched outside these budgets.
        fetches_per_host_per_minute: u32 = 30;
        /// Fetches one requesting address (IPv6 by /64) may cause per minute, over all hosts
        /// (so one address cannot spend a host's budget, or the fetch slots, for everybody); 0
        /// = no per-address limit.
        fetches_per_ip_per_minute: u32 = 10;
        /// Fetches in flight at once, over all hosts.
        max_concurrent_fetches: usize = 8;
        /// Remote JWK Sets (ID-JAG issuers, `private_key_jwt` `jwks_uri`s) are fresh for their
        /// max-age (at most 300 s), then refreshed in the background; while their host fails to
        /// answer, the last set fetched is used for this long after its last successful fetch.
        key_set_max_stale_secs: i64 = 86_400;
    }
}

impl CimdConfig {
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        self.check_ranges()?;
        let bad = |key: &str, m: &str| Err(invalid(Self::PATH, key, m));
        if self.min_cache_secs < 0 || self.max_cache_secs < self.min_cache_secs {
            return bad("min_cache_secs", "must be ≥ 0 and ≤ max_cache_secs");
        }
        if self.negative_cache_secs < 0 {
            return bad("negative_cache_secs", "must be ≥ 0");
        }
        if self.max_concurrent_fetches == 0 {
            return bad("max_concurrent_fetches", "must be ≥ 1");
        }
        if self.key_set_max_stale_secs < 0 {
            return bad("key_set_max_stale_secs", "must be ≥ 0");
        }
        for (key, list) in [
            ("allowed_hosts", &self.allowed_hosts),
            ("denied_hosts", &self.denied_hosts),
        ] {
            for p in list {
                let bare = p.strip_prefix("*.").unwrap_or(p);
                if bare.is_empty() || bare.contains(['*', '/', ':', '@', ' ']) {
                    return bad(key, &format!("entry {p:?} is not a host or *.domain"));
                }
            }
        }
        if self.trust == Trust::AllowList && self.allowed_hosts.is_empty() {
            return bad("trust", "allow-list needs allowed_hosts");
        }
        for h in &self.allowed_private_hosts {
            if h.is_empty() || h.contains(['/', '@', ' ']) {
                return bad(
                    "allowed_private_hosts",
                    &format!("entry {h:?} is not host[:port]"),
                );
            }
        }
        Ok(())
    }

    /// The extra trust anchors, read once at start.
    pub(crate) fn load_roots(&self) -> std::result::Result<Vec<reqwest::Certificate>, ConfigError> {
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
    /// the patterns: `crate::config::host`; a name that is no host name is denied).
    pub fn verdict(&self, host: &str) -> HostVerdict {
        let Some(host) = crate::config::host::normalize(host) else {
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

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::AllowList => "allow-list",
        }
    }
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
    let Some(pattern) = crate::config::host::normalize_pattern(pattern) else {
        return false;
    };
    match pattern.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        None => pattern == host,
    }
}

// Read from the environment by its name (`Trust::as_str`).
super::table::scalars!(Trust => |v| v.as_str().to_owned());
super::table::plain!(Trust);

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
