//! Server configuration: one struct, read from an optional TOML file and then overridden by
//! `AUTHZ_*` environment variables (the environment wins). Loaded once in `main`, passed in state.

pub mod cimd;
pub mod console;
pub mod dpop;
pub mod flows;
pub mod host;
pub mod id_jag;
pub mod kinds;
pub mod ssf;
pub mod types;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::ScopeSet;
pub use shared::config::ConfigError;
use shared::config::{self, Env};
use shared::secret::{DatabaseUrl, KeyText};

use crate::config::types::SigningAlg;

/// Everything the server and CLI need to know. Field docs name the environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `AUTHZ_BIND`: address to listen on.
    pub bind: SocketAddr,
    /// `AUTHZ_ISSUER`: the issuer URL, published byte-for-byte (RFC 8414 §2, §3.3).
    pub issuer: String,
    /// `AUTHZ_DATA_DIR`: SQLite file and master key file live here.
    pub data_dir: PathBuf,
    /// `DATABASE_URL` (or `AUTHZ_DATABASE_URL`): `sqlite://…` or `postgres://…`;
    /// default: `sqlite://<data_dir>/authz.db`.
    pub database_url: Option<DatabaseUrl>,
    /// `AUTHZ_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `AUTHZ_MASTER_KEY`: base64 (standard or url-safe) of 32 bytes; encrypts signing keys at
    /// rest. Default: `<data_dir>/master.key`, created with mode 0600.
    pub master_key: Option<KeyText>,
    /// `AUTHZ_SIGNING_ALG`: `RS256` (default), `ES256` or `EdDSA`.
    pub signing_alg: SigningAlg,
    /// `AUTHZ_KEY_RELOAD_SECS`: how often a running server re-reads signing keys, so a
    /// `authz keys rotate` by another process is picked up.
    pub key_reload_secs: u64,
    /// `AUTHZ_KEY_PREPUBLISH_SECS`: a key made by `authz keys rotate` is published this long
    /// before it signs (≥ the JWKS `max-age`, 60 s; with replicas or a CLI rotation also add
    /// `key_reload_secs`, after which running servers have loaded it).
    pub key_prepublish_secs: i64,
    /// `AUTHZ_KEY_ROTATION_DAYS`: signing keys rotate on this schedule (the next key is
    /// published `key_prepublish_secs` before it signs, the old one stays published until its
    /// tokens have expired); 0 = only by `authz keys rotate`.
    pub key_rotation_days: i64,
    /// `AUTHZ_REDIS_URL`: keep rate-limit counters in Redis, shared by every replica
    /// (`redis://[:password@]host:6379[/db]`). Unset: in-process counters.
    pub redis_url: Option<DatabaseUrl>,
    /// `AUTHZ_REDIS_PREFIX`: the start of every Redis key (default `authz`), so deployments
    /// can share one Redis.
    pub redis_prefix: String,
    /// `AUTHZ_REFRESH_RETRY_GRACE_SECS`: a refresh token presented again by the same client this
    /// soon after it was rotated gets the same successor instead of revoking the family (two
    /// processes sharing a token, a lost response); 0 = off, every reuse revokes.
    pub refresh_retry_grace_secs: i64,
    /// `AUTHZ_CLIENT_CACHE_SECS`: how long client registrations are cached in memory; changes
    /// made by another process take effect within this time. 0 disables the cache.
    pub client_cache_secs: i64,
    /// `AUTHZ_ACCESS_TOKEN_TTL_SECS`.
    pub access_token_ttl_secs: i64,
    /// `AUTHZ_REFRESH_TOKEN_TTL_SECS`: idle lifetime of each refresh token.
    pub refresh_token_ttl_secs: i64,
    /// `AUTHZ_REFRESH_TOKEN_ABSOLUTE_TTL_SECS`: a refresh family never outlives this.
    pub refresh_token_absolute_ttl_secs: i64,
    /// `AUTHZ_DEFAULT_RESOURCE`: audience when a request has no `resource` (RFC 8707).
    pub default_resource: String,
    /// `AUTHZ_MANAGEMENT_AUDIENCE`: the resource URI of the management API (`/api/v1`);
    /// default `<issuer>/api`. Only tokens for this audience are accepted there.
    pub management_audience: Option<String>,
    /// `AUTHZ_ARGON2_M_COST` (KiB), `AUTHZ_ARGON2_T_COST`, `AUTHZ_ARGON2_P_COST`.
    pub argon2: Argon2Config,
    /// `AUTHZ_PASSWORD_MIN_LENGTH`, `AUTHZ_PASSWORD_MAX_LENGTH`.
    pub password_policy: PasswordPolicyConfig,
    /// Role name → scopes. TOML `[roles]`; not settable from the environment.
    pub roles: BTreeMap<String, Vec<String>>,
    /// `AUTHZ_AUDIT_RETENTION_DAYS`: audit events older than this are deleted on start.
    pub audit_retention_days: i64,
    /// `AUTHZ_LOG`: tracing filter, e.g. `info,authz=debug` (`access=warn` silences the
    /// per-request lines).
    pub log: String,
    /// `AUTHZ_TLS_CERT` / `AUTHZ_TLS_KEY` (or `serve --tls-cert/--tls-key`): serve https
    /// natively with this PEM certificate chain and key (reloaded on SIGHUP). Unset: plain
    /// http (behind a TLS-terminating proxy, or on loopback).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `AUTHZ_METRICS_BIND`: serve `/metrics` (Prometheus) on this address, apart from the
    /// public one (e.g. `127.0.0.1:9464`). Unset: no metrics endpoint.
    pub metrics_bind: Option<SocketAddr>,
    /// `AUTHZ_LOG_FORMAT`: `text` (default) or `json` (one object per line, with the request
    /// id).
    pub log_format: shared::observe::LogFormat,
    /// Browser sessions, authorization codes, login throttling, dynamic registration.
    pub browser: BrowserConfig,
    /// Per-client-IP request limits.
    pub rate_limits: RateLimitConfig,
    /// `AUTHZ_TRUSTED_PROXIES` (comma-separated IPs): reverse proxies whose `X-Forwarded-For`
    /// is believed. Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `AUTHZ_CORS_ORIGINS` (comma-separated origins, or `*`, the default): browser origins
    /// granted CORS on the cookie-less endpoints (metadata, JWKS, `/register`, `/token`,
    /// `/revoke`, `/userinfo`). Never on the login, consent and logout pages or the
    /// management API.
    pub cors_origins: Vec<String>,
    /// `AUTHZ_CORS_INTROSPECT`: also grant CORS on `/introspect` (off: introspection is for
    /// resource servers, not browsers).
    pub cors_introspect: bool,
    /// Client ID Metadata Documents (`AUTHZ_CIMD_*`).
    pub cimd: crate::config::cimd::CimdConfig,
    /// Enterprise-managed authorization: trusted ID-JAG issuers (`[[id_jag.issuers]]`, or one
    /// from `AUTHZ_ID_JAG_*`); none: the jwt-bearer grant is off.
    pub id_jag: crate::config::id_jag::IdJagConfig,
    /// Shared Signals transmitter (`AUTHZ_SSF_*`).
    pub ssf: crate::config::ssf::SsfConfig,
    /// Security alerts to webhooks (`[[alerts.webhooks]]`, or one from `AUTHZ_ALERT_*`).
    pub alerts: AlertsConfig,
    /// Two-factor sign-in (`[mfa]`, `AUTHZ_MFA_*`).
    pub mfa: crate::config::console::MfaConfig,
    /// The account page and admin console (`[console]`, `AUTHZ_CONSOLE_*`).
    pub console: crate::config::console::ConsoleConfig,
    /// DPoP, RFC 9449 (`[dpop]`, `AUTHZ_DPOP_*`).
    pub dpop: crate::policy::dpop::DpopConfig,
    /// The device authorization grant (`[device]`, `AUTHZ_DEVICE_*`, RFC 8628).
    pub device: crate::config::flows::DeviceConfig,
    /// Pushed authorization requests (`[par]`, `AUTHZ_*PAR*`, RFC 9126).
    pub par: crate::config::flows::ParConfig,
}

/// Webhooks that receive chosen audit event kinds (`crate::events::alerts`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub webhooks: Vec<Webhook>,
}

/// One webhook: where, the HMAC key, and which event kinds (`key.*` matches a prefix).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    pub secret: shared::secret::SigningSecret,
    #[serde(default = "default_alert_kinds")]
    pub kinds: Vec<String>,
}

/// Lockouts, refresh reuse, code replays, signing-key and administrative changes.
pub fn default_alert_kinds() -> Vec<String> {
    [
        kinds::LOGIN_LOCKED,
        kinds::REFRESH_REUSE_DETECTED,
        kinds::CODE_REPLAYED,
        "key.*",
        "user.*",
        "client.*",
        "api_key.*",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Requests per client IP per minute; 0 turns a limit off. Over the limit: 429 with
/// `Retry-After`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `AUTHZ_RATE_TOKEN`: `POST /token`, per client IP.
    pub token: u32,
    /// `AUTHZ_RATE_TOKEN_PER_CLIENT`: `POST /token`, per authenticated client (counted after
    /// client authentication, so nobody can spend another client's budget; public clients,
    /// which authenticate nothing, are limited per address only).
    pub token_per_client: u32,
    /// `AUTHZ_RATE_LOGIN`: the login and consent forms and `POST /authorize`.
    pub login: u32,
    /// `AUTHZ_RATE_REVOKE`: `POST /revoke`.
    pub revoke: u32,
    /// `AUTHZ_RATE_INTROSPECT`: `POST /introspect`.
    pub introspect: u32,
    /// `AUTHZ_RATE_SSF`: `GET /ssf/stream` and `POST /ssf/poll` (one budget).
    pub ssf: u32,
    /// `AUTHZ_RATE_RESOURCE_EVENTS`: `POST /resource-events`.
    pub resource_events: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            token: 600,
            token_per_client: 1200,
            login: 60,
            revoke: 300,
            introspect: 6000,
            ssf: 300,
            resource_events: 300,
        }
    }
}

/// The browser-facing flow. Field docs name the environment variable.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserConfig {
    /// `AUTHZ_SESSION_IDLE_SECS`: a session unused this long ends.
    pub session_idle_secs: i64,
    /// `AUTHZ_SESSION_ABSOLUTE_SECS`: a session never outlives this.
    pub session_absolute_secs: i64,
    /// `AUTHZ_CODE_TTL_SECS`: authorization code lifetime (RFC 6749 §4.1.2: at most 10 min).
    pub code_ttl_secs: i64,
    /// `AUTHZ_LOGIN_MAX_FAILURES`: failed logins within the window before a username is locked.
    pub login_max_failures: i64,
    /// `AUTHZ_LOGIN_FAILURE_WINDOW_SECS`.
    pub login_failure_window_secs: i64,
    /// `AUTHZ_LOGIN_LOCKOUT_SECS`: first lock; each further lock doubles it (at most a day).
    pub login_lockout_secs: i64,
    /// `AUTHZ_REGISTRATION_OPEN`: RFC 7591 open dynamic client registration (MCP clients need
    /// it); `false` turns `/register` off.
    pub registration_open: bool,
    /// `AUTHZ_REGISTRATION_PER_MINUTE`: registrations allowed per client IP per minute.
    pub registration_per_minute: u32,
    /// `AUTHZ_REGISTRATION_MAX_CLIENTS`: the most self-registered clients kept at once
    /// (counted atomically with them); registration beyond it is refused.
    pub registration_max_clients: i64,
    /// `AUTHZ_REGISTRATION_UNUSED_TTL_SECS`: a self-registered client that never got a token
    /// this long after registering is deleted by housekeeping.
    pub registration_unused_ttl_secs: i64,
    /// `AUTHZ_REGISTRATION_IDLE_TTL_DAYS`: one unused this many days, with no live grant
    /// left, is deleted too.
    pub registration_idle_ttl_days: i64,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 3600,
            session_absolute_secs: 12 * 3600,
            code_ttl_secs: 60,
            login_max_failures: 5,
            login_failure_window_secs: 900,
            login_lockout_secs: 60,
            registration_open: true,
            registration_per_minute: 10,
            registration_max_clients: 10_000,
            registration_unused_ttl_secs: 86_400,
            registration_idle_ttl_days: 90,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Config {
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    /// `AUTHZ_ARGON2_WORKERS`: hashing threads, each owning one `m_cost` memory block
    /// (0 = one per core). Peak hashing memory is workers × m_cost.
    pub workers: usize,
    /// `AUTHZ_ARGON2_QUEUE`: sign-ins that may wait for a worker; beyond that they are shed
    /// with 503 + `Retry-After`.
    pub queue: usize,
}

impl Default for Argon2Config {
    /// OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self {
            m_cost: 19_456,
            t_cost: 2,
            p_cost: 1,
            workers: 0,
            queue: 32,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicyConfig {
    /// NIST SP 800-63B-4 §3.1.1.2: at least 15 characters for a password used alone.
    pub min_length: usize,
    /// NIST asks for at least 64 to be accepted.
    pub max_length: usize,
}

impl Default for PasswordPolicyConfig {
    fn default() -> Self {
        Self {
            min_length: 15,
            max_length: 128,
        }
    }
}

/// The four default roles of the design notes.
pub fn default_roles() -> BTreeMap<String, Vec<String>> {
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

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: "http://127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            db_max_connections: 16,
            master_key: None,
            signing_alg: SigningAlg::Rs256,
            key_reload_secs: 30,
            key_prepublish_secs: 120,
            key_rotation_days: 30,
            redis_url: None,
            redis_prefix: "authz".to_owned(),
            refresh_retry_grace_secs: 10,
            client_cache_secs: 5,
            access_token_ttl_secs: 600,
            refresh_token_ttl_secs: 14 * 24 * 3600,
            refresh_token_absolute_ttl_secs: 30 * 24 * 3600,
            default_resource: "http://127.0.0.1:8081/mcp".to_owned(),
            management_audience: None,
            argon2: Argon2Config::default(),
            password_policy: PasswordPolicyConfig::default(),
            roles: default_roles(),
            audit_retention_days: 90,
            log: "info".to_owned(),
            log_format: shared::observe::LogFormat::Text,
            metrics_bind: None,
            tls_cert: None,
            tls_key: None,
            browser: BrowserConfig::default(),
            rate_limits: RateLimitConfig::default(),
            trusted_proxies: Vec::new(),
            cors_origins: vec!["*".to_owned()],
            cors_introspect: false,
            cimd: crate::config::cimd::CimdConfig::default(),
            id_jag: Default::default(),
            ssf: crate::config::ssf::SsfConfig::default(),
            alerts: AlertsConfig::default(),
            mfa: Default::default(),
            console: Default::default(),
            dpop: Default::default(),
            device: Default::default(),
            par: Default::default(),
        }
    }
}

impl Config {
    /// Read `file` (if given) and apply environment overrides from `env`, then validate.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = config::read_file(file)?;
        config.apply_env(&Env::new(env))?;
        config.validate()?;
        Ok(config)
    }

    /// Load from the process environment.
    pub fn from_process_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, config::process_env)
    }

    fn apply_env(&mut self, env: &Env<impl Fn(&str) -> Option<String>>) -> Result<(), ConfigError> {
        env.set("AUTHZ_BIND", &mut self.bind)?;
        env.set("AUTHZ_ISSUER", &mut self.issuer)?;
        env.set("AUTHZ_DATA_DIR", &mut self.data_dir)?;
        if let Some(v) = env
            .get("AUTHZ_DATABASE_URL")
            .or_else(|| env.get("DATABASE_URL"))
        {
            self.database_url = Some(DatabaseUrl::new(v));
        }
        env.set("AUTHZ_DB_MAX_CONNECTIONS", &mut self.db_max_connections)?;
        env.set_secret("AUTHZ_MASTER_KEY", &mut self.master_key, KeyText::new);
        env.set("AUTHZ_SIGNING_ALG", &mut self.signing_alg)?;
        env.set("AUTHZ_KEY_RELOAD_SECS", &mut self.key_reload_secs)?;
        env.set("AUTHZ_KEY_PREPUBLISH_SECS", &mut self.key_prepublish_secs)?;
        env.set("AUTHZ_KEY_ROTATION_DAYS", &mut self.key_rotation_days)?;
        if let Some(v) = env.get("AUTHZ_REDIS_URL") {
            self.redis_url = (!v.is_empty()).then(|| DatabaseUrl::new(v));
        }
        env.set("AUTHZ_REDIS_PREFIX", &mut self.redis_prefix)?;
        env.set(
            "AUTHZ_REFRESH_RETRY_GRACE_SECS",
            &mut self.refresh_retry_grace_secs,
        )?;
        env.set("AUTHZ_CLIENT_CACHE_SECS", &mut self.client_cache_secs)?;
        env.set(
            "AUTHZ_ACCESS_TOKEN_TTL_SECS",
            &mut self.access_token_ttl_secs,
        )?;
        env.set(
            "AUTHZ_REFRESH_TOKEN_TTL_SECS",
            &mut self.refresh_token_ttl_secs,
        )?;
        env.set(
            "AUTHZ_REFRESH_TOKEN_ABSOLUTE_TTL_SECS",
            &mut self.refresh_token_absolute_ttl_secs,
        )?;
        env.set("AUTHZ_DEFAULT_RESOURCE", &mut self.default_resource)?;
        env.set_some("AUTHZ_MANAGEMENT_AUDIENCE", &mut self.management_audience)?;
        let a = &mut self.argon2;
        env.set("AUTHZ_ARGON2_M_COST", &mut a.m_cost)?;
        env.set("AUTHZ_ARGON2_T_COST", &mut a.t_cost)?;
        env.set("AUTHZ_ARGON2_P_COST", &mut a.p_cost)?;
        env.set("AUTHZ_ARGON2_WORKERS", &mut a.workers)?;
        env.set("AUTHZ_ARGON2_QUEUE", &mut a.queue)?;
        env.set(
            "AUTHZ_PASSWORD_MIN_LENGTH",
            &mut self.password_policy.min_length,
        )?;
        env.set(
            "AUTHZ_PASSWORD_MAX_LENGTH",
            &mut self.password_policy.max_length,
        )?;
        env.set("AUTHZ_AUDIT_RETENTION_DAYS", &mut self.audit_retention_days)?;
        env.set("AUTHZ_LOG", &mut self.log)?;
        env.set("AUTHZ_LOG_FORMAT", &mut self.log_format)?;
        env.set_some("AUTHZ_METRICS_BIND", &mut self.metrics_bind)?;
        env.set_some("AUTHZ_TLS_CERT", &mut self.tls_cert)?;
        env.set_some("AUTHZ_TLS_KEY", &mut self.tls_key)?;
        let b = &mut self.browser;
        env.set("AUTHZ_SESSION_IDLE_SECS", &mut b.session_idle_secs)?;
        env.set("AUTHZ_SESSION_ABSOLUTE_SECS", &mut b.session_absolute_secs)?;
        env.set("AUTHZ_CODE_TTL_SECS", &mut b.code_ttl_secs)?;
        env.set("AUTHZ_LOGIN_MAX_FAILURES", &mut b.login_max_failures)?;
        env.set(
            "AUTHZ_LOGIN_FAILURE_WINDOW_SECS",
            &mut b.login_failure_window_secs,
        )?;
        env.set("AUTHZ_LOGIN_LOCKOUT_SECS", &mut b.login_lockout_secs)?;
        env.set("AUTHZ_REGISTRATION_OPEN", &mut b.registration_open)?;
        env.set(
            "AUTHZ_REGISTRATION_MAX_CLIENTS",
            &mut b.registration_max_clients,
        )?;
        env.set(
            "AUTHZ_REGISTRATION_UNUSED_TTL_SECS",
            &mut b.registration_unused_ttl_secs,
        )?;
        env.set(
            "AUTHZ_REGISTRATION_IDLE_TTL_DAYS",
            &mut b.registration_idle_ttl_days,
        )?;
        env.set(
            "AUTHZ_REGISTRATION_PER_MINUTE",
            &mut b.registration_per_minute,
        )?;
        let r = &mut self.rate_limits;
        env.set("AUTHZ_RATE_TOKEN", &mut r.token)?;
        env.set("AUTHZ_RATE_TOKEN_PER_CLIENT", &mut r.token_per_client)?;
        env.set("AUTHZ_RATE_LOGIN", &mut r.login)?;
        env.set("AUTHZ_RATE_REVOKE", &mut r.revoke)?;
        env.set("AUTHZ_RATE_INTROSPECT", &mut r.introspect)?;
        env.set("AUTHZ_RATE_SSF", &mut r.ssf)?;
        env.set("AUTHZ_RATE_RESOURCE_EVENTS", &mut r.resource_events)?;
        env.set_list("AUTHZ_TRUSTED_PROXIES", &mut self.trusted_proxies)?;
        env.set_list("AUTHZ_CORS_ORIGINS", &mut self.cors_origins)?;
        env.set("AUTHZ_CORS_INTROSPECT", &mut self.cors_introspect)?;
        self.cimd.apply_env(env)?;
        self.id_jag.apply_env(env)?;
        self.mfa.apply_env(env)?;
        self.console.apply_env(env)?;
        self.dpop.apply_env(env)?;
        self.device.apply_env(env)?;
        self.par.apply_env(env)?;
        env.set_list("AUTHZ_SSF_RECEIVERS", &mut self.ssf.receivers)?;
        env.set("AUTHZ_SSF_LONG_POLL_SECS", &mut self.ssf.long_poll_secs)?;
        env.set("AUTHZ_SSF_MAX_SET_ERRORS", &mut self.ssf.max_set_errors)?;
        // One webhook from the environment (more in the TOML file's [[alerts.webhooks]]).
        if let Some(url) = env.get("AUTHZ_ALERT_WEBHOOK_URL") {
            let secret = env.get("AUTHZ_ALERT_WEBHOOK_SECRET").ok_or_else(|| {
                ConfigError("AUTHZ_ALERT_WEBHOOK_URL needs AUTHZ_ALERT_WEBHOOK_SECRET".into())
            })?;
            let mut kinds = default_alert_kinds();
            env.set_list("AUTHZ_ALERT_KINDS", &mut kinds)?;
            self.alerts.webhooks.push(Webhook {
                url,
                secret: shared::secret::SigningSecret::new(secret),
                kinds,
            });
        }
        Ok(())
    }

    /// Refuse configurations that would make the server insecure or unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| ConfigError(format!("issuer {:?} is not a URL: {e}", self.issuer)))?;
        // RFC 8414 §2: https, no query or fragment. http is allowed for loopback development.
        if !config::https_or_loopback(issuer.scheme(), issuer.host_str()) {
            return Err(ConfigError(
                "issuer must be https (http only on loopback)".into(),
            ));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError(
                "issuer must not have a query or fragment".into(),
            ));
        }
        if self.issuer.ends_with('/') {
            return Err(ConfigError("issuer must not end with '/'".into()));
        }
        crate::protocol::resource::validate_resource_uri(&self.default_resource)
            .map_err(|e| ConfigError(format!("default_resource: {e}")))?;
        self.mfa.validate(&self.roles)?;
        self.console.validate()?;
        self.dpop.validate()?;
        self.device.validate()?;
        self.par.validate()?;
        if self.access_token_ttl_secs < 30 || self.access_token_ttl_secs > 24 * 3600 {
            return Err(ConfigError(
                "access_token_ttl_secs must be within 30..=86400".into(),
            ));
        }
        if self.refresh_token_ttl_secs < 60
            || self.refresh_token_absolute_ttl_secs < self.refresh_token_ttl_secs
        {
            return Err(ConfigError(
                "refresh_token_ttl_secs must be ≥ 60 and ≤ refresh_token_absolute_ttl_secs".into(),
            ));
        }
        if self.argon2.m_cost < 8 || self.argon2.t_cost < 1 || self.argon2.p_cost < 1 {
            return Err(ConfigError(
                "argon2 parameters are below argon2's minimums".into(),
            ));
        }
        if self.argon2.workers > 256 || self.argon2.queue > 100_000 {
            return Err(ConfigError(
                "argon2 workers must be ≤ 256 and queue ≤ 100000".into(),
            ));
        }
        let p = self.password_policy;
        if p.min_length < 8 || p.max_length < 64 || p.min_length > p.max_length {
            return Err(ConfigError(
                "password_policy: min_length ≥ 8, max_length ≥ 64 (NIST SP 800-63B)".into(),
            ));
        }
        for hook in &self.alerts.webhooks {
            let url = url::Url::parse(&hook.url)
                .map_err(|e| ConfigError(format!("alert webhook {:?}: {e}", hook.url)))?;
            if !config::https_or_loopback(url.scheme(), url.host_str()) {
                return Err(ConfigError(format!(
                    "alert webhook {:?} must be https (http only on loopback)",
                    hook.url
                )));
            }
            if hook.secret.expose().len() < 16 {
                return Err(ConfigError(
                    "an alert webhook's secret must be at least 16 characters".into(),
                ));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "tls_cert and tls_key go together (AUTHZ_TLS_CERT, AUTHZ_TLS_KEY)".into(),
            ));
        }
        if !(0..=3650).contains(&self.key_rotation_days) {
            return Err(ConfigError(
                "key_rotation_days must be within 0..=3650 (0 = manual rotation only)".into(),
            ));
        }
        if let Some(url) = &self.redis_url {
            shared::limits::check_url(url.expose())
                .map_err(|e| ConfigError(format!("redis_url: {e}")))?;
        }
        self.cimd.validate()?;
        self.id_jag.validate(&self.roles)?;
        for o in &self.cors_origins {
            let parsed = url::Url::parse(o).ok();
            let is_origin = parsed
                .as_ref()
                .is_some_and(|u| u.origin().ascii_serialization() == *o);
            if o != "*" && !is_origin {
                return Err(ConfigError(format!(
                    "cors_origins entry {o:?} is not * or an origin (scheme://host[:port])"
                )));
            }
        }
        if !(0..=300).contains(&self.client_cache_secs) {
            return Err(ConfigError(
                "client_cache_secs must be within 0..=300".into(),
            ));
        }
        let max_age = crate::keys::JWKS_MAX_AGE_SECS;
        if !(max_age..=30 * 86_400).contains(&self.key_prepublish_secs) {
            return Err(ConfigError(format!(
                "key_prepublish_secs must be within {max_age}..=2592000 (at least the JWKS \
                 max-age, so verifiers know a key before it signs)"
            )));
        }
        if !(0..=60).contains(&self.refresh_retry_grace_secs) {
            return Err(ConfigError(
                "refresh_retry_grace_secs must be within 0..=60".into(),
            ));
        }
        if self.db_max_connections == 0 {
            return Err(ConfigError("db_max_connections must be ≥ 1".into()));
        }
        let b = &self.browser;
        if !(10..=600).contains(&b.code_ttl_secs) {
            return Err(ConfigError(
                "code_ttl_secs must be within 10..=600 (RFC 6749 §4.1.2)".into(),
            ));
        }
        if b.session_idle_secs < 60 || b.session_absolute_secs < b.session_idle_secs {
            return Err(ConfigError(
                "session_idle_secs must be ≥ 60 and ≤ session_absolute_secs".into(),
            ));
        }
        if b.login_max_failures < 1 || b.login_failure_window_secs < 1 || b.login_lockout_secs < 1 {
            return Err(ConfigError(
                "login_max_failures, login_failure_window_secs and login_lockout_secs must be ≥ 1"
                    .into(),
            ));
        }
        for (role, scopes) in &self.roles {
            if role.is_empty() || !role.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(ConfigError(format!(
                    "role name {role:?} must be [A-Za-z0-9_]+"
                )));
            }
            ScopeSet::from_tokens(scopes).map_err(|e| ConfigError(format!("roles.{role}: {e}")))?;
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
pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.toml");
        std::fs::write(
            &path,
            "issuer = \"https://auth.example.com\"\naccess_token_ttl_secs = 300\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            env_of(&[("AUTHZ_ACCESS_TOKEN_TTL_SECS", "120")]),
        )
        .unwrap();
        assert_eq!(c.issuer, "https://auth.example.com");
        assert_eq!(c.access_token_ttl_secs, 120);
    }

    #[test]
    fn rejects_insecure_issuer_and_bad_values() {
        for (k, v) in [
            ("AUTHZ_ISSUER", "http://auth.example.com"),
            ("AUTHZ_ISSUER", "https://auth.example.com/"),
            ("AUTHZ_ISSUER", "https://auth.example.com?x=1"),
            ("AUTHZ_ACCESS_TOKEN_TTL_SECS", "5"),
            ("AUTHZ_ARGON2_T_COST", "0"),
            ("AUTHZ_SIGNING_ALG", "HS256"),
            ("AUTHZ_BIND", "nonsense"),
        ] {
            assert!(
                Config::load(None, env_of(&[(k, v)])).is_err(),
                "{k}={v} accepted"
            );
        }
    }

    /// Regression (issue 11, item 15): `Config` derived `Debug` with the raw master key and
    /// database password.
    #[test]
    fn debug_never_shows_the_master_key_or_database_password() {
        let c = Config::load(
            None,
            env_of(&[
                (
                    "AUTHZ_MASTER_KEY",
                    "c2VjcmV0LW1hc3Rlci1rZXktbWF0ZXJpYWwtMzJieXRlcyE=",
                ),
                (
                    "DATABASE_URL",
                    "postgres://authz:hunter2-db-pw@db:5432/authz",
                ),
            ]),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(!shown.contains("hunter2-db-pw"), "{shown}");
        assert!(shown.contains("postgres://authz:[redacted]@db:5432/authz"));
        assert_eq!(
            c.database_url(),
            "postgres://authz:hunter2-db-pw@db:5432/authz"
        );
    }

    #[test]
    fn unknown_toml_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.toml");
        std::fs::write(&path, "isuer = \"https://x\"\n").unwrap();
        assert!(Config::load(Some(&path), env_of(&[])).is_err());
    }

    #[test]
    fn role_scopes_union() {
        let c = Config::default();
        assert_eq!(
            c.role_scopes(["readonly", "nope"]).to_string(),
            "notes:read profile:read"
        );
    }
}
