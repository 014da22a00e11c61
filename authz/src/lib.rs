//! `authz`: the authorization server binary's library half — serving (the web edge in front
//! of the core, with its background tasks) — and the core's modules re-exported under their
//! old paths, so `authz::store`, `authz::identity::admin`… keep working for tests and tools.

pub use authz_core::*;
pub use authz_web as http;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use authz_core::error::{Error, Result};
use authz_core::state::AppState;

/// Serve until `shutdown` resolves, then finish in-flight requests. Also re-reads signing keys
/// every `key_reload_secs` (and on SIGHUP) so rotations by `authz keys rotate` are picked up
/// (and the rotation schedule is kept), and on PostgreSQL follows other replicas' changes at
/// once (`replicas`).
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_on(state, shared::serve::Listener::tcp(listener), shutdown).await
}

/// `serve` on any listener of TCP addresses (`shared::serve::Listener`, or
/// `shared::tls::TlsListener` for native TLS). The background loops run in one task set,
/// stopped when serving ends.
pub async fn serve_on<L>(
    state: AppState,
    listener: L,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let mut tasks = shared::serve::Tasks::new();
    tasks.spawn(reload_keys_forever(state.clone()));
    // The first pass runs before the first request is served, so what a request sees never
    // depends on whether a start-up pass has happened yet; then hourly.
    if let Err(e) = housekeeping(&state).await {
        tracing::warn!(error = %e, "housekeeping failed");
    }
    tasks.spawn(housekeeping_forever(state.clone()));
    tasks.spawn(erase_retry_successors_forever(state.clone()));
    if !state.config.alerts.webhooks.is_empty() {
        let store: Arc<dyn store::AlertStore> = state.store.clone();
        tasks.spawn(events::alerts::deliver_forever(
            state.config.clone(),
            store,
            state.clock.clone(),
        ));
    }
    // PostgreSQL: hear other replicas' client and key changes at once.
    let database_url = state.config.database_url();
    if matches!(
        shared::db::Backend::of_url(&database_url),
        Ok(shared::db::Backend::Postgres)
    ) {
        tasks.spawn(replicas::listen_forever(state.clone(), database_url));
    }
    let audit_log = state.audit_log.clone();
    let result = shared::serve::serve_router(listener, http::router(state), shutdown).await;
    audit_log.flush().await;
    tasks.shutdown().await;
    result.map_err(|e| Error::internal(format!("server: {e}")))
}

/// Serve `/metrics` on its own listener (`AUTHZ_METRICS_BIND`) until the task is dropped.
pub async fn serve_metrics(state: AppState, listener: TcpListener) -> Result<()> {
    shared::serve::serve_metrics(listener, http::metrics::router(state))
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
