//! `mcp-resource` configuration: one struct from an optional TOML file, overridden by `MCP_*`
//! environment variables (the environment wins). Loaded once in `main`, passed in state.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::ScopeSet;
pub use shared::config::ConfigError;
use shared::config::{self, Env};
use shared::secret::{ClientSecret, DatabaseUrl, KeyText};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `MCP_BIND`.
    pub bind: SocketAddr,
    /// `MCP_ISSUER`: the only authorization server trusted (byte-identical to its `issuer`).
    pub issuer: String,
    /// `MCP_RESOURCE_URL`: this server's canonical URI; tokens must carry it as `aud`.
    pub resource_url: String,
    /// `MCP_DATA_DIR`: SQLite file and notes key file live here.
    pub data_dir: PathBuf,
    /// `MCP_DATABASE_URL`: `sqlite://…` (default `<data_dir>/mcp.db`) or `postgres://…`.
    pub database_url: Option<DatabaseUrl>,
    /// `MCP_NOTES_KEY`: base64 of 32 bytes encrypting notes at rest; default
    /// `<data_dir>/notes.key`, created with mode 0600.
    pub notes_key: Option<KeyText>,
    /// `MCP_ALLOWED_HOSTS` (comma-separated): Host headers accepted (DNS-rebinding guard).
    /// Default: the resource URL's host plus loopback names.
    pub allowed_hosts: Vec<String>,
    /// `MCP_ALLOWED_ORIGINS` (comma-separated `scheme://host[:port]`, `:*` for any port):
    /// browser Origins accepted besides this server's own origin and loopback origins. Any
    /// other `Origin` is refused with 403 (`crate::origin`); requests without one are not
    /// affected.
    pub allowed_origins: Vec<String>,
    /// `MCP_CHALLENGE_SCOPE`: scopes named in the 401 challenge (what a new client should ask).
    pub challenge_scope: String,
    /// `MCP_JWKS_MIN_REFETCH_SECS`: an unknown `kid` triggers a JWKS fetch at most this often
    /// (default 1: a newly published key is picked up by the first token it signs).
    pub jwks_min_refetch_secs: u64,
    /// `MCP_LOG`.
    pub log: String,
    /// `MCP_SSF_POLL_SECS`: how often to poll the authorization server's Shared Signals stream
    /// for this server's client (needs the client secret); 0 = never.
    pub ssf_poll_secs: u64,
    /// `MCP_DENIAL_REPORT_SECS`: how often to report denied tool calls to the authorization
    /// server (`POST /resource-events`, as this server's client; needs the client secret), so
    /// its audit log counts them as `mcp.tool_denied` (`crate::denials`); 0 = never.
    pub denial_report_secs: u64,
    /// `MCP_TLS_CERT` / `MCP_TLS_KEY` (or `--tls-cert/--tls-key`): serve https natively with
    /// this PEM certificate chain and key (reloaded on SIGHUP).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `MCP_EXTRA_ROOTS`: a PEM file of extra trust anchors for calls to the authorization
    /// server (JWKS, token exchange, Shared Signals), e.g. a private CA.
    pub extra_roots: Option<PathBuf>,
    /// `MCP_UPSTREAM_PROVIDER`: the id of an upstream identity provider of the authorization
    /// server whose tokens it keeps for this server (its token vault): the tool
    /// `get_upstream_profile` exists, needing the scope `upstream:<id>`. Unset: no such tool.
    pub upstream_provider: Option<String>,
    /// `MCP_UPSTREAM_USERINFO_URL`: that provider's user-info endpoint (https), called with the
    /// provider's token the authorization server releases by token exchange.
    pub upstream_userinfo_url: Option<String>,
    /// `MCP_METRICS_BIND`: serve `/metrics` (Prometheus) on this address, apart from the
    /// public one (e.g. `127.0.0.1:9465`). Unset: no metrics endpoint.
    pub metrics_bind: Option<SocketAddr>,
    /// `MCP_LOG_FORMAT`: `text` (default) or `json` (one object per line, with the request id).
    pub log_format: shared::observe::LogFormat,
    /// `MCP_AUTHZ_URL`: where this server calls the authorization server (token exchange,
    /// management API); default the issuer.
    pub authz_url: Option<String>,
    /// `MCP_CLIENT_ID`: this server's own client at the authorization server.
    pub client_id: String,
    /// `MCP_CLIENT_SECRET`; else read from `MCP_CLIENT_SECRET_FILE` (JSON with
    /// `client_secret`, default `<data_dir>/mcp-resource-client.json`, written by
    /// `authz seed-demo`). Without it the administrative tools report they are unavailable.
    pub client_secret: Option<ClientSecret>,
    pub client_secret_file: Option<PathBuf>,
    /// `MCP_MANAGEMENT_AUDIENCE`: the management API's resource URI; default `<issuer>/api`.
    pub management_audience: Option<String>,
    /// `MCP_RATE_PER_MINUTE`: requests per client IP per minute on the MCP endpoint (0: off).
    pub rate_per_minute: u32,
    /// `MCP_RATE_PER_CALLER_PER_MINUTE`: requests per authenticated caller (token `sub` +
    /// `client_id`) per minute (0: off).
    pub rate_per_caller_per_minute: u32,
    /// `MCP_REDIS_URL`: keep rate-limit counters in Redis, shared by every replica. Unset:
    /// in-process counters.
    pub redis_url: Option<DatabaseUrl>,
    /// `MCP_REDIS_PREFIX`: the start of every Redis key (default `mcp`).
    pub redis_prefix: String,
    /// `MCP_TRUSTED_PROXIES` (comma-separated IPs): proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `MCP_MAX_TOKEN_LIFETIME_SECS`: the longest an access token of the issuer can live
    /// (authz: `AUTHZ_ACCESS_TOKEN_TTL_SECS`, at most a day). A session logged out through this
    /// server is refused this long, so every token of it has expired before it is forgotten.
    pub max_token_lifetime_secs: i64,
    /// `MCP_DPOP_REQUIRED` (default false): only DPoP-bound tokens with proofs are accepted
    /// (RFC 9449 §7); protected-resource metadata then says `dpop_bound_access_tokens_required`.
    pub dpop_required: bool,
    /// `MCP_DPOP_IAT_WINDOW_SECS` (default 60): how far a proof's `iat` may be from now.
    pub dpop_iat_window_secs: i64,
    /// `MCP_DPOP_REPLAY_CACHE` (default 100000): the most live proof `jti`s remembered in this
    /// process (without `MCP_REDIS_URL`, or while Redis does not answer); when full, new proofs
    /// are refused until entries expire (`iat` window + 1 s after their `iat`), never by
    /// forgetting a live one.
    pub dpop_replay_cache: usize,
    /// `MCP_DPOP_NONCE` (default false): every DPoP proof must carry this server's current
    /// nonce (RFC 9449 §9): `use_dpop_nonce` with a `DPoP-Nonce` header, and a fresh one on
    /// every answer to a DPoP request. Stateless: a MAC of the time window under a key derived
    /// from the notes key, so replicas sharing `MCP_NOTES_KEY` accept each other's nonces.
    pub dpop_nonce: bool,
    /// `MCP_DPOP_NONCE_SECS` (default 300): a nonce's window; the previous one is accepted
    /// too, so a nonce lives between one and two windows.
    pub dpop_nonce_secs: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8081)),
            issuer: "http://127.0.0.1:8080".to_owned(),
            resource_url: "http://127.0.0.1:8081/mcp".to_owned(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            notes_key: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            challenge_scope: "profile:read notes:read".to_owned(),
            jwks_min_refetch_secs: 1,
            log: "info,rmcp=warn".to_owned(),
            log_format: shared::observe::LogFormat::Text,
            metrics_bind: None,
            tls_cert: None,
            tls_key: None,
            extra_roots: None,
            upstream_provider: None,
            upstream_userinfo_url: None,
            ssf_poll_secs: 2,
            denial_report_secs: 10,
            authz_url: None,
            client_id: "mcp-resource".to_owned(),
            client_secret: None,
            client_secret_file: None,
            management_audience: None,
            rate_per_minute: 1200,
            rate_per_caller_per_minute: 600,
            redis_url: None,
            redis_prefix: "mcp".to_owned(),
            trusted_proxies: Vec::new(),
            max_token_lifetime_secs: 86_400,
            dpop_required: false,
            dpop_iat_window_secs: 60,
            dpop_replay_cache: 100_000,
            dpop_nonce: false,
            dpop_nonce_secs: 300,
        }
    }
}

impl Config {
    /// Read `file` (if given) and apply environment overrides from `env`, then validate.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut c: Config = config::read_file(file)?;
        let env = Env::new(env);
        env.set("MCP_BIND", &mut c.bind)?;
        env.set("MCP_ISSUER", &mut c.issuer)?;
        env.set("MCP_RESOURCE_URL", &mut c.resource_url)?;
        env.set("MCP_DATA_DIR", &mut c.data_dir)?;
        env.set_secret("MCP_DATABASE_URL", &mut c.database_url, DatabaseUrl::new);
        env.set_secret("MCP_NOTES_KEY", &mut c.notes_key, KeyText::new);
        env.set_list("MCP_ALLOWED_HOSTS", &mut c.allowed_hosts)?;
        env.set_list("MCP_ALLOWED_ORIGINS", &mut c.allowed_origins)?;
        env.set("MCP_CHALLENGE_SCOPE", &mut c.challenge_scope)?;
        env.set("MCP_JWKS_MIN_REFETCH_SECS", &mut c.jwks_min_refetch_secs)?;
        env.set("MCP_LOG", &mut c.log)?;
        env.set("MCP_LOG_FORMAT", &mut c.log_format)?;
        env.set_some("MCP_METRICS_BIND", &mut c.metrics_bind)?;
        env.set_some("MCP_TLS_CERT", &mut c.tls_cert)?;
        env.set_some("MCP_TLS_KEY", &mut c.tls_key)?;
        env.set_some("MCP_EXTRA_ROOTS", &mut c.extra_roots)?;
        env.set_some("MCP_UPSTREAM_PROVIDER", &mut c.upstream_provider)?;
        env.set_some("MCP_UPSTREAM_USERINFO_URL", &mut c.upstream_userinfo_url)?;
        env.set("MCP_SSF_POLL_SECS", &mut c.ssf_poll_secs)?;
        env.set("MCP_DENIAL_REPORT_SECS", &mut c.denial_report_secs)?;
        env.set_some("MCP_AUTHZ_URL", &mut c.authz_url)?;
        env.set("MCP_CLIENT_ID", &mut c.client_id)?;
        env.set_secret("MCP_CLIENT_SECRET", &mut c.client_secret, ClientSecret::new);
        env.set_some("MCP_CLIENT_SECRET_FILE", &mut c.client_secret_file)?;
        env.set_some("MCP_MANAGEMENT_AUDIENCE", &mut c.management_audience)?;
        env.set("MCP_RATE_PER_MINUTE", &mut c.rate_per_minute)?;
        env.set(
            "MCP_RATE_PER_CALLER_PER_MINUTE",
            &mut c.rate_per_caller_per_minute,
        )?;
        if let Some(v) = env.get("MCP_REDIS_URL") {
            c.redis_url = (!v.is_empty()).then(|| DatabaseUrl::new(v));
        }
        env.set("MCP_REDIS_PREFIX", &mut c.redis_prefix)?;
        env.set(
            "MCP_MAX_TOKEN_LIFETIME_SECS",
            &mut c.max_token_lifetime_secs,
        )?;
        env.set_list("MCP_TRUSTED_PROXIES", &mut c.trusted_proxies)?;
        env.set("MCP_DPOP_REQUIRED", &mut c.dpop_required)?;
        env.set("MCP_DPOP_IAT_WINDOW_SECS", &mut c.dpop_iat_window_secs)?;
        env.set("MCP_DPOP_REPLAY_CACHE", &mut c.dpop_replay_cache)?;
        env.set("MCP_DPOP_NONCE", &mut c.dpop_nonce)?;
        env.set("MCP_DPOP_NONCE_SECS", &mut c.dpop_nonce_secs)?;
        c.validate()?;
        Ok(c)
    }

    /// Load from the process environment.
    pub fn from_process_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, config::process_env)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError(
                "tls_cert and tls_key go together (MCP_TLS_CERT, MCP_TLS_KEY)".into(),
            ));
        }
        if let Some(url) = &self.redis_url {
            shared::limits::check_url(url.expose())
                .map_err(|e| ConfigError(format!("redis_url: {e}")))?;
        }
        for (name, value) in [
            ("issuer", &self.issuer),
            ("resource_url", &self.resource_url),
        ] {
            let u = url::Url::parse(value)
                .map_err(|e| ConfigError(format!("{name} {value:?}: {e}")))?;
            if !config::https_or_loopback(u.scheme(), u.host_str()) {
                return Err(ConfigError(format!(
                    "{name} must be https (http only on loopback)"
                )));
            }
            if u.fragment().is_some() || value.ends_with('/') {
                return Err(ConfigError(format!(
                    "{name} must have no fragment or trailing '/'"
                )));
            }
        }
        ScopeSet::parse(&self.challenge_scope)
            .map_err(|e| ConfigError(format!("challenge_scope: {e}")))?;
        match (&self.upstream_provider, &self.upstream_userinfo_url) {
            (None, None) => {}
            (Some(id), Some(u)) => {
                let ok_id = !id.is_empty()
                    && id.len() <= 32
                    && id.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    });
                let ok_url = url::Url::parse(u).is_ok_and(|u| {
                    config::https_or_loopback(u.scheme(), u.host_str()) && u.fragment().is_none()
                });
                if !ok_id || !ok_url {
                    return Err(ConfigError(
                        "upstream_provider must be a provider id ([a-z0-9_-]{1,32}) and \
                         upstream_userinfo_url an https URL (MCP_UPSTREAM_PROVIDER, \
                         MCP_UPSTREAM_USERINFO_URL)"
                            .into(),
                    ));
                }
            }
            _ => {
                return Err(ConfigError(
                    "upstream_provider and upstream_userinfo_url go together \
                     (MCP_UPSTREAM_PROVIDER, MCP_UPSTREAM_USERINFO_URL)"
                        .into(),
                ));
            }
        }
        crate::origin::OriginPolicy::new(&self.resource_url, &self.allowed_origins)
            .map_err(ConfigError)?;
        if !(30..=7 * 86_400).contains(&self.max_token_lifetime_secs) {
            return Err(ConfigError(
                "max_token_lifetime_secs must be within 30..=604800".into(),
            ));
        }
        if !(5..=600).contains(&self.dpop_iat_window_secs) || self.dpop_replay_cache < 1_000 {
            return Err(ConfigError(
                "dpop_iat_window_secs must be within 5..=600 and dpop_replay_cache at least 1000"
                    .into(),
            ));
        }
        if !(30..=86_400).contains(&self.dpop_nonce_secs) {
            return Err(ConfigError(
                "dpop_nonce_secs must be within 30..=86400".into(),
            ));
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose().to_owned(),
            None => format!("sqlite://{}/mcp.db", self.data_dir.display()),
        }
    }

    /// Host names accepted in the Host header.
    pub fn hosts(&self) -> Vec<String> {
        if !self.allowed_hosts.is_empty() {
            return self.allowed_hosts.clone();
        }
        let mut hosts = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if let Some(h) = url::Url::parse(&self.resource_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            && !hosts.contains(&h)
        {
            hosts.push(h);
        }
        hosts
    }

    /// RFC 9728 §3.1: metadata lives at the well-known path plus the resource's path.
    pub fn metadata_url(&self) -> String {
        let u = url::Url::parse(&self.resource_url).expect("validated");
        let origin = u.origin().ascii_serialization();
        let path = u.path().trim_end_matches('/');
        format!("{origin}/.well-known/oauth-protected-resource{path}")
    }

    /// The authorization server's base URL for back-channel calls.
    pub fn authz_url(&self) -> String {
        self.authz_url
            .clone()
            .unwrap_or_else(|| self.issuer.clone())
    }

    pub fn management_audience(&self) -> String {
        self.management_audience
            .clone()
            .unwrap_or_else(|| format!("{}/api", self.issuer))
    }

    /// This server's client secret: configured, or from the secret file (if it exists).
    pub fn load_client_secret(&self) -> Option<ClientSecret> {
        if let Some(s) = &self.client_secret {
            return Some(s.clone());
        }
        let path = self
            .client_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mcp-resource-client.json"));
        let text = std::fs::read_to_string(path).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        (v["client_id"].as_str() == Some(self.client_id.as_str()))
            .then(|| v["client_secret"].as_str().map(ClientSecret::new))
            .flatten()
    }

    /// The path this server mounts MCP on (the resource URL's path).
    pub fn mcp_path(&self) -> String {
        url::Url::parse(&self.resource_url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| "/mcp".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 11, item 15): `Config` derived `Debug` with the notes key, the client
    /// secret and the database password in the clear.
    #[test]
    fn debug_never_shows_keys_secrets_or_database_passwords() {
        let env = |k: &str| match k {
            "MCP_NOTES_KEY" => Some("bm90ZXMta2V5LW1hdGVyaWFsLXRoYXQtaXMtc2VjcmV0IQ==".to_owned()),
            "MCP_CLIENT_SECRET" => Some("s3cret-client-value".to_owned()),
            "MCP_DATABASE_URL" => Some("postgres://mcp:db-pa55@db/mcp".to_owned()),
            _ => None,
        };
        let c = Config::load(None, env).unwrap();
        let shown = format!("{c:?}");
        for secret in ["bm90ZXMta2V5", "s3cret-client-value", "db-pa55"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(c.database_url(), "postgres://mcp:db-pa55@db/mcp");
        assert_eq!(
            c.load_client_secret().unwrap().expose(),
            "s3cret-client-value"
        );
    }
}
