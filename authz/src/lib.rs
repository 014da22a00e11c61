//! `authz`: an OAuth 2.0 / OpenID Connect authorization server issuing RFC 9068 JWT access
//! tokens. `build_state` wires configuration, storage and keys into an `AppState`; `serve` puts
//! HTTP in front of it; `main.rs` is the CLI.

pub mod account;
pub mod alerts;
pub mod audit;
pub mod cimd;
pub mod clock;
pub mod config;
pub mod console;
pub mod crypto;
pub mod error;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod replicas;
pub mod seed;
pub mod ssf;
pub mod state;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::account::password::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::oauth::issuer::TokenIssuer;
use crate::oauth::scope::ScopePolicy;
use crate::state::AppState;
use crate::store::{SqlStore, Store};

/// The master key: from `AUTHZ_MASTER_KEY`, else `<data_dir>/master.key` (created 0600).
pub fn load_master_key(config: &Config) -> Result<MasterKey> {
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

pub async fn build_state_with_store(
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
                &store::AuditEvent::new(now, "key.created", store::Outcome::Success)
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
    let audit_log = audit::start(audit_store);
    let roots = config
        .cimd
        .load_roots()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let cimd = Arc::new(cimd::resolver::Cimd::new(&config.cimd, roots));
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
    let dpop = Arc::new(oauth::dpop::Dpop::new(&config.dpop, &master, &counters));
    Ok(AppState {
        dpop,
        config: Arc::new(config),
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
        metrics: Arc::new(metrics::Metrics::new()),
        cimd,
    })
}

/// Serve until `shutdown` resolves, then finish in-flight requests. Also re-reads signing keys
/// every `key_reload_secs` (and on SIGHUP) so rotations by `authz keys rotate` are picked up
/// (and the rotation schedule is kept), and on PostgreSQL follows other replicas' changes at
/// once (`replicas`).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Responses are small and latency-bound: never wait for Nagle.
        let _ = tcp.set_nodelay(true);
    });
    serve_on(state, listener, shutdown).await
}

/// `serve` on any listener of TCP addresses (`shared::tls::TlsListener` for native TLS).
pub async fn serve_on<L>(
    state: AppState,
    listener: L,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let reloader = tokio::spawn(reload_keys_forever(state.clone()));
    // The first pass runs before the first request is served, so what a request sees never
    // depends on whether a start-up pass has happened yet; then hourly.
    if let Err(e) = housekeeping(&state).await {
        tracing::warn!(error = %e, "housekeeping failed");
    }
    let housekeeper = tokio::spawn(housekeeping_forever(state.clone()));
    let sweeper = tokio::spawn(erase_retry_successors_forever(state.clone()));
    let alerts = (!state.config.alerts.webhooks.is_empty()).then(|| {
        let store: Arc<dyn store::AlertStore> = state.store.clone();
        tokio::spawn(alerts::deliver_forever(
            state.config.clone(),
            store,
            state.clock.clone(),
        ))
    });
    // PostgreSQL: hear other replicas' client and key changes at once.
    let database_url = state.config.database_url();
    let listener_task = matches!(
        shared::db::Backend::of_url(&database_url),
        Ok(shared::db::Backend::Postgres)
    )
    .then(|| tokio::spawn(replicas::listen_forever(state.clone(), database_url)));
    let audit_log = state.audit_log.clone();
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    // axum knows the peer address of a `TcpListener` and of any tapped listener: tap this one
    // (doing nothing) so every listener of TCP addresses, TLS included, has it.
    let listener = listener.tap_io(|_| {});
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    audit_log.flush().await;
    reloader.abort();
    housekeeper.abort();
    sweeper.abort();
    if let Some(task) = alerts {
        task.abort();
    }
    if let Some(task) = listener_task {
        task.abort();
    }
    result.map_err(|e| Error::internal(format!("server: {e}")))
}

/// Serve `/metrics` on its own listener (`AUTHZ_METRICS_BIND`) until the task is dropped.
pub async fn serve_metrics(state: AppState, listener: TcpListener) -> Result<()> {
    axum::serve(listener, http::metrics::router(state))
        .await
        .map_err(|e| Error::internal(format!("metrics server: {e}")))
}

async fn reload_keys_forever(state: AppState) {
    let period = Duration::from_secs(state.config.key_reload_secs.max(1));
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        {
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = hup_recv => tracing::info!("SIGHUP: reloading signing keys"),
            }
        }
        #[cfg(not(unix))]
        tokio::time::sleep(period).await;
        if let Err(e) = state.reload_keys().await {
            tracing::error!(error = %e, "reloading signing keys failed; keeping the current ones");
        }
    }
}

/// The sealed successors kept for the refresh retry window are erased once it has passed:
/// every `refresh_retry_grace_secs` (so a successor is at rest for at most twice the window).
async fn erase_retry_successors_forever(state: AppState) {
    let grace = state.config.refresh_retry_grace_secs;
    if grace == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(grace.unsigned_abs()));
    loop {
        tick.tick().await;
        if let Err(e) = state
            .store
            .erase_retry_successors(state.now() - grace)
            .await
        {
            tracing::warn!(error = %e, "erasing refresh retry successors failed");
        }
    }
}

/// Hourly: delete audit events past retention, refresh tokens whose family has ended, and
/// retired keys no longer published.
async fn housekeeping_forever(state: AppState) {
    let hour = Duration::from_secs(3600);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + hour, hour);
    loop {
        tick.tick().await;
        if let Err(e) = housekeeping(&state).await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
    }
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
        .delete_report_keys_before(now - http::resource_events::KEY_RETENTION_SECS)
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
    let clients = account::admin::prune_clients(state, "housekeeping", false)
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
