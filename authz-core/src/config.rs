//! Server configuration: one struct of sections, read from an optional TOML file and then
//! overridden by `AUTHZ_*` environment variables (the environment wins). Loaded once in `main`,
//! passed in state. Every section is one declarative table (`table.rs`): each variable is
//! written once, and its environment name is its TOML path (`browser.code_ttl_secs` ↔
//! `AUTHZ_BROWSER_CODE_TTL_SECS`); the reference is `docs/configuration.md`.

pub mod alerts;
pub mod browser;
pub mod cimd;
pub mod console;
pub mod dpop;
pub mod flows;
pub mod host;
pub mod id_jag;
pub mod kinds;
pub mod ldap;
pub mod limits;
pub mod passwords;
pub mod reference;
pub mod ssf;
pub mod table;
#[cfg(test)]
mod tests;
pub mod types;
pub mod upstream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use shared::ScopeSet;
pub use shared::config::ConfigError;
use shared::config::{self};
use shared::secret::{DatabaseUrl, KeyText};

use crate::config::types::SigningAlg;
pub use alerts::{AlertsConfig, Webhook};
pub use browser::BrowserConfig;
pub use limits::RateLimitConfig;
pub use passwords::{Argon2Config, PasswordPolicyConfig};
use table::{Lookup, Section, invalid, section};

section! {
    /// Everything the server and CLI need to know (the top level of the TOML file).
    #[serde(default, deny_unknown_fields)]
    pub struct Config at "" {
        /// Address to listen on.
        bind: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
        /// The issuer URL, published byte-for-byte in metadata and tokens (RFC 8414 §2, §3.3):
        /// https, or http on loopback only.
        issuer: String = "http://127.0.0.1:8080".to_owned();
        /// The SQLite file, the master key file and the demo credentials live here.
        data_dir: PathBuf = PathBuf::from("./data");
        /// `sqlite://…` or `postgres://user:pass@host/db`; default:
        /// `sqlite://<data_dir>/authz.db`.
        database_url: Option<DatabaseUrl> = None, was ["DATABASE_URL"];
        /// The most database connections of this process.
        db_max_connections: u32 = 16;
        /// base64 (standard or url-safe) of 32 random bytes (`openssl rand -base64 32`):
        /// encrypts signing keys at rest. Default: `<data_dir>/master.key`, created with mode
        /// 0600 on first start.
        master_key: Option<KeyText> = None;
        /// `RS256`, `ES256` or `EdDSA`. Changing it rotates to a new key of that algorithm on
        /// start.
        signing_alg: SigningAlg = SigningAlg::Rs256;
        /// How often a running server re-reads signing keys (also on SIGHUP), so an `authz keys
        /// rotate` by another process is picked up.
        key_reload_secs: u64 = 30;
        /// A key made by `authz keys rotate` is published this long before it signs: at least
        /// the JWKS `max-age` (60 s); with replicas or a CLI rotation also add
        /// `key_reload_secs`, after which running servers have loaded it. `--now` skips it.
        key_prepublish_secs: i64 = 120, range (crate::config::types::JWKS_MAX_AGE_SECS)..=2_592_000;
        /// Signing keys rotate on this schedule (the next key is published
        /// `key_prepublish_secs` before it signs, the old one stays published until its tokens
        /// have expired); 0 = only by `authz keys rotate`.
        key_rotation_days: i64 = 30, range 0..=3650;
        /// Keep rate-limit counters in Redis, shared by every replica
        /// (`redis://[:password@]host:6379[/db]`). Unset: in-process counters. Redis down:
        /// limits fail open, loudly.
        redis_url: Option<DatabaseUrl> = None;
        /// The start of every Redis key, so deployments can share one Redis.
        redis_prefix: String = "authz".to_owned();
        /// A refresh token presented again by the same client this soon after it was rotated
        /// gets the same successor instead of revoking the family (two processes sharing a
        /// token, a lost response); 0 = off, every reuse revokes.
        refresh_retry_grace_secs: i64 = 10, range 0..=60;
        /// How long client registrations are cached in memory; changes made by another process
        /// take effect within this time. 0 disables the cache.
        client_cache_secs: i64 = 5, range 0..=300;
        /// Access token lifetime.
        access_token_ttl_secs: i64 = 600, range 30..=86_400;
        /// Idle lifetime of each refresh token.
        refresh_token_ttl_secs: i64 = 14 * 24 * 3600;
        /// A refresh family never outlives this.
        refresh_token_absolute_ttl_secs: i64 = 30 * 24 * 3600;
        /// Audience when a token request has no `resource` parameter (RFC 8707).
        default_resource: String = "http://127.0.0.1:8081/mcp".to_owned();
        /// The resource URI of the management API (`/api/v1`); default `<issuer>/api`. Only
        /// tokens for this audience are accepted there.
        management_audience: Option<String> = None;
        /// Audit events older than this are deleted on start.
        audit_retention_days: i64 = 90;
        /// The tracing filter, e.g. `info,authz=debug` (`access=warn` silences the per-request
        /// lines; `RUST_LOG` wins when set).
        log: String = "info".to_owned();
        /// `text` or `json` (one object per line, with the request id).
        log_format: shared::observe::LogFormat = shared::observe::LogFormat::Text;
        /// Serve `/metrics` (Prometheus) on this address, apart from the public one (e.g.
        /// `127.0.0.1:9464`). Unset: no metrics endpoint.
        metrics_bind: Option<SocketAddr> = None;
        /// Serve https natively with this PEM certificate chain (with `tls_key`; or `serve
        /// --tls-cert/--tls-key`), reloaded on SIGHUP. Unset: plain http (behind a
        /// TLS-terminating proxy, or on loopback).
        tls_cert: Option<PathBuf> = None;
        /// The PEM private key of `tls_cert`.
        tls_key: Option<PathBuf> = None;
        /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated IPs). Empty: the
        /// TCP peer is the client.
        trusted_proxies: Vec<std::net::IpAddr> = Vec::new();
        /// Browser origins granted CORS on the cookie-less endpoints (metadata, JWKS,
        /// `/register`, `/token`, `/revoke`, `/userinfo`): `*` or comma-separated
        /// `scheme://host[:port]`. Never on the login, consent and logout pages or the
        /// management API.
        cors_origins: Vec<String> = vec!["*".to_owned()];
        /// Also grant CORS on `/introspect` (off: introspection is for resource servers, not
        /// browsers).
        cors_introspect: bool = false;
    }
    toml {
        /// `[argon2]`: password hashing.
        argon2: Argon2Config = Argon2Config::default();
        /// `[password_policy]`: password length bounds.
        password_policy: PasswordPolicyConfig = PasswordPolicyConfig::default();
        /// `[roles]`: role name → scopes; TOML only.
        roles: BTreeMap<String, Vec<String>> = default_roles();
        /// `[browser]`: browser sessions, authorization codes, login throttling, dynamic
        /// registration.
        browser: BrowserConfig = BrowserConfig::default();
        /// `[rate_limits]`: per-client-IP request limits.
        rate_limits: RateLimitConfig = RateLimitConfig::default();
        /// `[cimd]`: Client ID Metadata Documents.
        cimd: cimd::CimdConfig = cimd::CimdConfig::default();
        /// `[id_jag]`: enterprise-managed authorization, the trusted ID-JAG issuers; none: the
        /// jwt-bearer grant is off.
        id_jag: id_jag::IdJagConfig = id_jag::IdJagConfig::default();
        /// `[ssf]`: the Shared Signals transmitter.
        ssf: ssf::SsfConfig = ssf::SsfConfig::default();
        /// `[alerts]`: security alerts to webhooks.
        alerts: AlertsConfig = AlertsConfig::default();
        /// `[mfa]`: two-factor sign-in.
        mfa: console::MfaConfig = console::MfaConfig::default();
        /// `[console]`: the account page and admin console.
        console: console::ConsoleConfig = console::ConsoleConfig::default();
        /// `[dpop]`: DPoP, RFC 9449.
        dpop: crate::config::dpop::DpopConfig = Default::default();
        /// `[device]`: the device authorization grant (RFC 8628).
        device: flows::DeviceConfig = flows::DeviceConfig::default();
        /// `[par]`: pushed authorization requests (RFC 9126).
        par: flows::ParConfig = flows::ParConfig::default();
        /// `[federation]`: the policy over the upstream identity providers.
        federation: upstream::FederationConfig = upstream::FederationConfig::default();
        /// `[[upstream]]`: the identity providers people sign in through (OIDC, OAuth 2.0);
        /// TOML only, their secrets also from `AUTHZ_UPSTREAM_<ID>_CLIENT_SECRET`.
        upstream: Vec<upstream::Upstream> = Vec::new();
        /// `[ldap]`: the LDAP directory or Active Directory people sign in with.
        ldap: ldap::LdapConfig = ldap::LdapConfig::default();
        /// The old environment names the configuration was read with (`warn_deprecated`).
        #[serde(skip)]
        deprecated_env: Vec<String> = Vec::new();
    }
}

/// The four default roles of the design notes.
pub(crate) fn default_roles() -> BTreeMap<String, Vec<String>> {
    let role = |scopes: &str| scopes.split(' ').map(str::to_owned).collect::<Vec<_>>();
    BTreeMap::from([
        (
            "admin".to_owned(),
            role("profile:read notes:read notes:write keys:write audit:read security:read"),
        ),
        (
            "user".to_owned(),
            role("profile:read notes:read notes:write keys:write"),
        ),
        ("readonly".to_owned(), role("profile:read notes:read")),
        (
            "service".to_owned(),
            role("profile:read notes:read notes:write"),
        ),
    ])
}

impl Config {
    /// Read `file` (if given) and apply environment overrides from `env`, then validate.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = config::read_file(file)?;
        let lookup = Lookup::new(&env);
        config.apply_env(&lookup)?;
        config.deprecated_env = lookup.deprecated();
        config.validate()?;
        Ok(config)
    }

    /// Load from the process environment.
    pub fn from_process_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, config::process_env)
    }

    /// The defaults with test-sized settings: data in `data_dir`, argon2 at its cheapest
    /// useful cost, a small connection pool. The issuer and database stay the defaults.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            db_max_connections: 5,
            argon2: Argon2Config {
                m_cost: 256,
                t_cost: 1,
                p_cost: 1,
                ..Argon2Config::default()
            },
            ..Self::default()
        }
    }

    /// Log each old environment name the configuration was read with (once, after the logging
    /// is set up).
    pub fn warn_deprecated(&self) {
        for note in &self.deprecated_env {
            tracing::warn!("{note}");
        }
    }

    /// Every section's variables from the environment, then the one alert webhook and the
    /// one ID-JAG issuer the environment may add.
    fn apply_env(&mut self, env: &Lookup<'_>) -> Result<(), ConfigError> {
        self.apply_vars(env)?;
        self.argon2.apply_vars(env)?;
        self.password_policy.apply_vars(env)?;
        self.browser.apply_vars(env)?;
        self.rate_limits.apply_vars(env)?;
        self.cimd.apply_vars(env)?;
        self.id_jag.apply_env(env)?;
        self.ssf.apply_vars(env)?;
        self.alerts.apply_env(env)?;
        self.mfa.apply_vars(env)?;
        self.console.apply_vars(env)?;
        self.dpop.apply_vars(env)?;
        self.device.apply_vars(env)?;
        self.par.apply_vars(env)?;
        self.federation.apply_vars(env)?;
        upstream::apply_env(&mut self.upstream, env)?;
        self.ldap.apply_env(env)?;
        Ok(())
    }

    /// Refuse configurations that would make the server insecure or unusable: each section's
    /// checks, then those across sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_ranges()?;
        self.validate_issuer()?;
        crate::config::types::validate_resource_uri(&self.default_resource)
            .map_err(|e| invalid("", "default_resource", &e.to_string()))?;
        if self.refresh_token_ttl_secs < 60
            || self.refresh_token_absolute_ttl_secs < self.refresh_token_ttl_secs
        {
            return Err(invalid(
                "",
                "refresh_token_ttl_secs",
                "must be ≥ 60 and ≤ refresh_token_absolute_ttl_secs",
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid("", "tls_cert", "and tls_key go together"));
        }
        if let Some(url) = &self.redis_url {
            shared::limits::check_url(url.expose())
                .map_err(|e| invalid("", "redis_url", &e.to_string()))?;
        }
        for o in &self.cors_origins {
            let parsed = url::Url::parse(o).ok();
            let is_origin = parsed
                .as_ref()
                .is_some_and(|u| u.origin().ascii_serialization() == *o);
            if o != "*" && !is_origin {
                return Err(invalid(
                    "",
                    "cors_origins",
                    &format!("entry {o:?} is not * or an origin (scheme://host[:port])"),
                ));
            }
        }
        if self.db_max_connections == 0 {
            return Err(invalid("", "db_max_connections", "must be ≥ 1"));
        }
        for (role, scopes) in &self.roles {
            if role.is_empty() || !role.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ConfigError(format!(
                    "role name {role:?} must be [A-Za-z0-9_]+"
                )));
            }
            ScopeSet::from_tokens(scopes).map_err(|e| ConfigError(format!("roles.{role}: {e}")))?;
        }
        self.argon2.validate()?;
        self.password_policy.validate()?;
        self.browser.validate()?;
        self.rate_limits.check_ranges()?;
        self.cimd.validate()?;
        self.id_jag.validate(&self.roles)?;
        self.ssf.check_ranges()?;
        self.alerts.validate()?;
        self.mfa.validate(&self.roles)?;
        self.console.check_ranges()?;
        self.dpop.check_ranges()?;
        self.device.check_ranges()?;
        self.par.check_ranges()?;
        upstream::validate(&self.federation, &self.upstream, &self.roles)?;
        self.ldap
            .validate(&self.roles, self.federation.only.as_deref())?;
        Ok(())
    }

    /// RFC 8414 §2: https, no query or fragment. http is allowed for loopback development.
    fn validate_issuer(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(invalid("", "issuer", m));
        let Ok(issuer) = url::Url::parse(&self.issuer) else {
            return bad(&format!("{:?} is not a URL", self.issuer));
        };
        if !config::https_or_loopback(issuer.scheme(), issuer.host_str()) {
            return bad("must be https (http only on loopback)");
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return bad("must not have a query or fragment");
        }
        if self.issuer.ends_with('/') {
            return bad("must not end with '/'");
        }
        Ok(())
    }

    /// The database URL actually used.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}/authz.db", self.data_dir.display()),
        }
    }

    /// Scopes granted by a set of role names (unknown roles grant nothing).
    pub fn role_scopes<'a>(&self, roles: impl IntoIterator<Item = &'a str>) -> ScopeSet {
        let mut set = ScopeSet::new();
        for role in roles {
            if let Some(scopes) = self.roles.get(role) {
                // Validated in `validate`.
                set = set.union(&ScopeSet::from_tokens(scopes).unwrap_or_default());
            }
        }
        set
    }

    /// The management API's audience.
    pub fn management_audience(&self) -> String {
        self.management_audience
            .clone()
            .unwrap_or_else(|| format!("{}/api", self.issuer))
    }

    /// Whether cookies must be `Secure` (and `__Host-` prefixed): the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// Longest lifetime of any token signed with a key; a retired key stays published this long.
    pub fn max_signed_token_ttl(&self) -> i64 {
        self.access_token_ttl_secs
    }
}

/// An environment made of `pairs`, for the configuration tests.
#[cfg(test)]
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}
