//! `authz-core`: the authorization server's protocol and domain core (OAuth 2.0 / OpenID Connect,
//! RFC 9068 JWT access tokens), free of any web framework: it speaks in the `http` crate's
//! types at most. `build_state` wires configuration, storage and keys into an `AppState`;
//! `authz-web` puts HTTP in front of it; the `authz` binary serves and administers.

pub mod clients;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod events;
pub mod federation;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod outbound;
pub mod policy;
pub mod protocol;
pub mod replicas;
pub mod seed;
pub mod state;
pub mod store;

use crate::events::kinds;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::keys::issuer::TokenIssuer;
use crate::policy::password::PasswordHasher;
use crate::policy::scope::ScopePolicy;
use crate::state::AppState;
use crate::store::{SqlStore, Store};

/// The master key: from `AUTHZ_MASTER_KEY`, else `<data_dir>/master.key` (created 0600).
pub(crate) fn load_master_key(config: &Config) -> Result<MasterKey> {
    match &config.master_key {
        Some(text) => MasterKey::from_base64(text.expose()),
        None => MasterKey::load_or_create_file(&config.data_dir.join("master.key")),
    }
    .map_err(|e| Error::Invalid(e.to_string()))
}

/// Connect to the configured database and apply migrations.
pub async fn open_store(config: &Config) -> Result<SqlStore> {
    let store = SqlStore::connect(&config.database_url(), config.db_max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

/// Build the application state: storage (migrated), master key, an active signing key of the
/// configured algorithm, and the services. Used by `serve`, the CLI and the tests.
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState> {
    let store: Arc<dyn Store> = Arc::new(open_store(&config).await?);
    build_state_with_store(config, clock, store).await
}

pub(crate) async fn build_state_with_store(
    config: Config,
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
) -> Result<AppState> {
    let master = Arc::new(load_master_key(&config)?);
    let now = clock.now();
    let publish_until = now + config.max_signed_token_ttl() + 60;
    if let Some(kid) =
        keys::ensure_active_key(&*store, &master, config.signing_alg, now, publish_until).await?
    {
        tracing::info!(%kid, alg = %config.signing_alg, "created signing key");
        store
            .append(
                &store::AuditEvent::new(now, kinds::KEY_CREATED, store::Outcome::Success)
                    .actor("system")
                    .details(serde_json::json!({ "kid": kid, "alg": config.signing_alg.as_str() })),
            )
            .await?;
    }
    // A pre-published key whose time came while the server was down.
    keys::promote_due(&*store, &master, now, publish_until).await?;
    let keys = Arc::new(keys::KeyRing::new(
        keys::load_key_set(&*store, &master, now).await?,
    ));
    let passwords = PasswordHasher::new(&config.argon2)?;
    let issuer = TokenIssuer::new(Arc::clone(&keys), &config);
    let scopes = Arc::new(ScopePolicy::new(&config));
    let clients = Arc::new(store::ClientCache::new(config.client_cache_secs));
    let audit_store: Arc<dyn store::AuditStore> = store.clone();
    let audit_log = events::audit::start(audit_store);
    let roots = config
        .cimd
        .load_roots()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let cimd = Arc::new(outbound::cimd::Cimd::new(&config.cimd, roots));
    let counters = shared::limits::Counters::new(
        config.redis_url.as_ref().map(|u| u.expose()),
        &config.redis_prefix,
    )
    .map_err(|e| Error::Invalid(e.to_string()))?;
    let registrations = counters
        .limiter("register", config.browser.registration_per_minute)
        .map(Arc::new);
    let token_per_client = counters
        .limiter("token-client", config.rate_limits.token_per_client)
        .map(Arc::new);
    let dpop = Arc::new(policy::dpop::Dpop::new(&config.dpop, &master, &counters));
    let directory = federation::ldap::LdapDirectory::new(&config.ldap)
        .map_err(Error::Invalid)?
        .map(|d| Arc::new(d) as Arc<dyn identity::directory::Directory>);
    let config = Arc::new(config);
    let metrics = Arc::new(metrics::Metrics::new());
    let events = events::Events::new(
        Arc::clone(&config),
        Arc::clone(&store),
        Arc::clone(&clock),
        Arc::clone(&metrics),
        audit_log.clone(),
        Arc::new(issuer.clone()),
    );
    Ok(AppState {
        dpop,
        config,
        store,
        clock,
        keys,
        master,
        passwords,
        issuer,
        scopes,
        clients,
        audit_log,
        counters,
        registrations,
        token_per_client,
        metrics,
        cimd,
        providers: Arc::new(federation::Providers::default()),
        directory,
        events,
    })
}

/// One housekeeping pass (also run by tests).
pub async fn housekeeping(state: &AppState) -> Result<()> {
    // Queued events first, so retention also applies to what was still in flight.
    state.audit_log.flush().await;
    let now = state.now();
    let audit = state
        .store
        .delete_before(now - state.config.audit_retention_days * 86_400)
        .await?;
    let refresh = state.store.delete_refresh_tokens_ended_before(now).await?;
    let keys = state.store.prune_keys(now).await?;
    let codes = state.store.delete_codes_expired_before(now - 3600).await?;
    let sessions = state.store.delete_sessions_before(now - 86_400).await?;
    state.store.delete_client_assertions_before(now).await?;
    // Spent or expired pushed requests (RFC 9126); device codes a day after they expired (so
    // the /device page can still say "expired" rather than "wrong").
    state.store.delete_pushed_requests_before(now).await?;
    state
        .store
        .delete_report_keys_before(now - events::resource_reports::KEY_RETENTION_SECS)
        .await?;
    state
        .store
        .delete_device_authorizations_before(now - 86_400)
        .await?;
    // Security events: acknowledged ones kept a day, unacknowledged ones a week.
    state
        .store
        .delete_sets_before(now - 86_400, now - 7 * 86_400)
        .await?;
    let clients = clients::admin::prune_clients(
        &*state.store,
        &state.clients,
        &state.events,
        &state.config.browser,
        "housekeeping",
        false,
    )
    .await?
    .len() as u64;
    state
        .store
        .erase_retry_successors(now - state.config.refresh_retry_grace_secs)
        .await?;
    if audit + refresh + keys + codes + sessions + clients > 0 {
        tracing::info!(
            audit,
            refresh,
            keys,
            codes,
            sessions,
            clients,
            "housekeeping removed expired records"
        );
    }
    Ok(())
}
