//! The guarded fetch of a URL someone else named (a Client ID Metadata Document, a client's or
//! an identity provider's JWK Set): the fetch is built as the attack surface it is.
//!
//! - https only; no redirects followed (a 3xx is a failure); no proxy from the environment; no
//!   cookies and no credentials sent; connect and whole-request timeouts;
//! - the host is resolved here and **every** address checked against the SSRF guard
//!   (`guard.rs`) unless the host is allow-listed (`AUTHZ_CIMD_ALLOWED_PRIVATE_HOSTS`, matched
//!   on the normalized host: `host.rs`); the connection then goes to the address that was
//!   checked, with no second resolution, so a DNS answer that changes between check and
//!   connect (rebinding) cannot redirect it;
//! - `application/json` only (or `application/jwk-set+json`, RFC 7517 §8.5.1); the body is read incrementally and abandoned past the cap;
//! - [`Fetcher::fetch`], for URLs an anonymous request names, spends the fetch budgets
//!   (`budget.rs`: per requesting address, per host, in total); [`Fetcher::fetch_trusted`], for
//!   the key sets the operator configured (`key_sets.rs`), is the same guarded fetch outside
//!   those budgets.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::config::cimd::CimdConfig;
use crate::outbound::budget::Budgets;
pub use crate::outbound::fetch_error::FetchError;
use crate::outbound::{guard, host};

/// A fetched document and how long its server says it may be cached.
#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// From `Cache-Control: max-age` (0 for `no-store`/`no-cache`) or `Expires`, in seconds.
    pub max_age: Option<i64>,
}

/// The fetcher: configuration, trust anchors and the fetch budgets.
pub struct Fetcher {
    cfg: CimdConfig,
    roots: Vec<reqwest::Certificate>,
    budgets: Budgets,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("extra_roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

/// The https URL's normalized host and port.
struct Target {
    host: String,
    port: u16,
}

impl Target {
    fn of(url: &url::Url) -> Result<Self, FetchError> {
        if url.scheme() != "https" {
            return Err(FetchError::NotHttps);
        }
        url.host_str().ok_or(FetchError::NoHost)?;
        Ok(Self {
            host: host::of_url(url).ok_or(FetchError::BadHost)?,
            port: url.port_or_known_default().unwrap_or(443),
        })
    }
}

impl Fetcher {
    /// `roots` are the extra trust anchors (`AUTHZ_CIMD_EXTRA_ROOTS`), on top of the system's.
    pub fn new(cfg: CimdConfig, roots: Vec<reqwest::Certificate>) -> Self {
        Self {
            budgets: Budgets::new(&cfg),
            cfg,
            roots,
        }
    }

    /// Is the (normalized) `host` or `host:port` allow-listed past the SSRF guard?
    fn allow_listed(&self, target: &Target) -> bool {
        let with_port = format!("{}:{}", target.host, target.port);
        self.cfg
            .allowed_private_hosts
            .iter()
            .filter_map(|h| host::normalize_host_port(h))
            .any(|h| h == target.host || h == with_port)
    }

    /// The addresses to connect to for `host`, every one checked (or the host allow-listed).
    async fn checked_address(
        &self,
        host: &url::Host<&str>,
        port: u16,
        allowed: bool,
    ) -> Result<IpAddr, FetchError> {
        let addrs: Vec<IpAddr> = match host {
            url::Host::Ipv4(ip) => vec![IpAddr::V4(*ip)],
            url::Host::Ipv6(ip) => vec![IpAddr::V6(*ip)],
            url::Host::Domain(name) => {
                let lookup = tokio::net::lookup_host((*name, port));
                tokio::time::timeout(self.timeout(), lookup)
                    .await
                    .map_err(|_| FetchError::Timeout)?
                    .map_err(|e| {
                        tracing::info!(host = %name, cause = %e, "fetch refused: the host does not resolve");
                        FetchError::Resolve
                    })?
                    .map(|a| a.ip())
                    .collect()
            }
        };
        if !allowed {
            // One bad address taints the name: an attacker mixes addresses to win a race.
            if let Some(reason) = addrs.iter().find_map(|ip| guard::forbidden(*ip)) {
                tracing::info!(%host, address = reason, "fetch refused: not a public address");
                return Err(FetchError::Forbidden(reason));
            }
        }
        addrs.first().copied().ok_or(FetchError::Resolve)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.cfg.timeout_secs.max(1))
    }

    /// Fetch `url`, named by an anonymous request from `requester` (at `now`, the injected
    /// clock's time): the guarded fetch, within the budgets.
    pub async fn fetch(
        &self,
        url: &url::Url,
        now: i64,
        requester: Option<IpAddr>,
    ) -> Result<Fetched, FetchError> {
        let target = Target::of(url)?;
        let _slot = self.budgets.spend(&target.host, requester, now)?;
        self.get(url, &target, now).await
    }

    /// Fetch `url`, a key set the operator configured: the same guarded fetch, outside the
    /// budgets of anonymous requests (its callers bound how often they fetch: `key_sets.rs`).
    pub(crate) async fn fetch_trusted(
        &self,
        url: &url::Url,
        now: i64,
    ) -> Result<Fetched, FetchError> {
        let target = Target::of(url)?;
        self.get(url, &target, now).await
    }

    async fn get(&self, url: &url::Url, target: &Target, now: i64) -> Result<Fetched, FetchError> {
        let answer = self.send(url, target, &Call::Get, now).await?;
        if answer.status != 200 {
            return Err(FetchError::Status(answer.status));
        }
        Ok(answer.fetched)
    }

    /// Call an endpoint of an upstream identity provider the operator configured (its token
    /// and user-info endpoints): the same guarded connection, outside the anonymous budgets;
    /// any status is returned with its (JSON) body, so an OAuth error response can be read.
    pub(crate) async fn call_trusted(
        &self,
        url: &url::Url,
        call: &Call,
        now: i64,
    ) -> Result<Answer, FetchError> {
        let target = Target::of(url)?;
        self.send(url, &target, call, now).await
    }

    async fn send(
        &self,
        url: &url::Url,
        target: &Target,
        call: &Call,
        now: i64,
    ) -> Result<Answer, FetchError> {
        let host = url.host().ok_or(FetchError::NoHost)?;
        let port = target.port;
        let ip = self
            .checked_address(&host, port, self.allow_listed(target))
            .await?;

        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(self.timeout())
            .timeout(self.timeout())
            .user_agent(concat!("authz/", env!("CARGO_PKG_VERSION")));
        for root in &self.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if let url::Host::Domain(name) = host {
            // Connect to the address that was checked, never to a second resolution.
            builder = builder.resolve(name, SocketAddr::new(ip, port));
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let request = match call {
            Call::Get => client.get(url.clone()),
            Call::Bearer(token) => client.get(url.clone()).bearer_auth(token),
            Call::Form { fields, basic } => {
                let mut r = client.post(url.clone()).form(fields);
                if let Some((user, pass)) = basic {
                    r = r.basic_auth(user, Some(pass));
                }
                r
            }
        };
        let mut resp = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        let json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                // A JWK Set may come as its own media type (RFC 7517 §8.5.1).
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json")
                    || m.eq_ignore_ascii_case("application/jwk-set+json")
            });
        if !json {
            return Err(if status == reqwest::StatusCode::OK {
                FetchError::NotJson
            } else {
                FetchError::Status(status.as_u16())
            });
        }
        let cap = self.cfg.max_document_bytes;
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(FetchError::TooLarge(cap));
        }
        let max_age = max_age(resp.headers(), now);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport(&e))? {
            if body.len() + chunk.len() > cap {
                return Err(FetchError::TooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status: status.as_u16(),
            fetched: Fetched { body, max_age },
        })
    }
}

/// What to send to a trusted endpoint.
pub(crate) enum Call {
    Get,
    /// A GET with `Authorization: Bearer` (RFC 6750 §2.1).
    Bearer(String),
    /// A form POST (RFC 6749 §4.1.3), with HTTP Basic client authentication when given
    /// (RFC 6749 §2.3.1: both halves form-urlencoded first).
    Form {
        fields: Vec<(String, String)>,
        basic: Option<(String, String)>,
    },
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Get => "Get",
            Self::Bearer(_) => "Bearer",
            Self::Form { .. } => "Form",
        })
    }
}

/// A trusted endpoint's answer: its status and (JSON) body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub fetched: Fetched,
}

fn transport(e: &reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    // The chain says what failed (certificate, refused connection), never a secret.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    FetchError::Transport(text.chars().take(200).collect())
}

/// Seconds the response may be cached (RFC 9111 §5.2.2.1 `max-age`, §5.3 `Expires`).
fn max_age(headers: &reqwest::header::HeaderMap, now: i64) -> Option<i64> {
    if let Some(cc) = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    {
        for directive in cc.split(',').map(str::trim) {
            let lower = directive.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(0);
            }
            if let Some(v) = lower.strip_prefix("max-age=") {
                return v.trim_matches('"').parse::<i64>().ok().map(|n| n.max(0));
            }
        }
    }
    let expires = headers
        .get(reqwest::header::EXPIRES)
        .and_then(|v| v.to_str().ok())?;
    // An invalid date means "already expired" (RFC 9111 §5.3).
    let at = httpdate::parse_http_date(expires).ok().map_or(0, |t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    });
    Some((at - now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn caching_headers() {
        let now = 1_700_000_000;
        assert_eq!(
            max_age(&headers(&[("cache-control", "public, max-age=600")]), now),
            Some(600)
        );
        assert_eq!(
            max_age(&headers(&[("cache-control", "no-store")]), now),
            Some(0)
        );
        assert_eq!(max_age(&headers(&[]), now), None);
        let later = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(now + 900).unwrap()),
        );
        assert_eq!(max_age(&headers(&[("expires", &later)]), now), Some(900));
        assert_eq!(max_age(&headers(&[("expires", "garbage")]), now), Some(0));
        // max-age wins over Expires.
        assert_eq!(
            max_age(
                &headers(&[("cache-control", "max-age=5"), ("expires", &later)]),
                now
            ),
            Some(5)
        );
    }
}
