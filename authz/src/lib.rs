//! `authz`: the authorization server binary's library half — serving (the web edge in front
//! of the core, with its background tasks) — and the core's modules re-exported under their
//! old paths, so `authz::store`, `authz::identity::admin`… keep working for tests and tools.

pub use authz_core::*;
pub use authz_web as http;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
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
        tokio::spawn(events::alerts::deliver_forever(
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
