//! `mcp-resource`: an MCP server (rmcp, Streamable HTTP at the resource URL's path) that trusts
//! only access tokens `authz` issued for it, verified offline, and enforces a scope per tool.

pub(crate) mod admin_tools;
pub mod auth;
pub(crate) mod authz_client;
pub(crate) mod config;
pub mod denials;
pub(crate) mod health;
pub(crate) mod metadata;
pub(crate) mod metrics;
pub(crate) mod origin;
pub mod rbac;
pub(crate) mod revocations;
pub(crate) mod server;
pub(crate) mod signals;
pub(crate) mod state;
pub(crate) mod store;
mod upstream_tool;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Method;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use shared::crypto::MasterKey;
use shared::verifier::{Verifier, VerifierConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;
pub use crate::state::McpState;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("notes key: {0}")]
    Key(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// Open storage (migrated), load the notes key and prepare the token verifier, on the system
/// clock.
pub async fn build_state(config: Config) -> Result<Arc<McpState>, Error> {
    build_state_with_clock(config, Arc::new(shared::clock::SystemClock)).await
}

/// `build_state` with an injected clock (tests share one with the authorization server).
pub async fn build_state_with_clock(
    config: Config,
    clock: Arc<dyn shared::clock::Clock>,
) -> Result<Arc<McpState>, Error> {
    let key = match &config.notes_key {
        Some(text) => MasterKey::from_base64(text.expose()),
        None => MasterKey::load_or_create_file(&config.data_dir.join("notes.key")),
    }
    .map_err(|e| Error::Key(e.to_string()))?;
    // DPoP nonces (RFC 9449 §9): a key of their own, derived from the notes key every replica
    // shares.
    let nonce_key = key.mac("dpop-nonce-v1", b"mcp-resource");
    let store = store::Store::open(&config.database_url(), key).await?;
    let mut http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none());
    // Extra trust anchors for the authorization server (a private CA, a test certificate).
    if let Some(path) = &config.extra_roots {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Config(format!("extra_roots {}: {e}", path.display())))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Config(format!("extra_roots {}: {e}", path.display())))?;
        for root in roots {
            http = http.add_root_certificate(root);
        }
    }
    let http = http.build().map_err(|e| Error::Http(e.to_string()))?;
    let mut vcfg = VerifierConfig::new(&config.issuer, &config.resource_url);
    vcfg.min_refetch_interval = Duration::from_secs(config.jwks_min_refetch_secs);
    let verifier = Verifier::with_clock(vcfg, http.clone(), Arc::clone(&clock));
    let authz = authz_client::AuthzClient::new(&config, http);
    if let Err(e) = verifier.refresh(true).await {
        tracing::warn!(error = %e, "authorization server not reachable yet; will retry");
    }
    let store = Arc::new(store);
    let sink: Arc<dyn shared::batch::BatchSink<store::AuditRow>> = store.clone();
    let audit_log = shared::batch::BatchWriter::start(sink);
    let revocations = revocations::Revocations::new(store.revocations(clock.now()).await?);
    let origins = origin::OriginPolicy::new(&config.resource_url, &config.allowed_origins)
        .map_err(Error::Config)?;
    let counters = shared::limits::Counters::new(
        config.redis_url.as_ref().map(|u| u.expose()),
        &config.redis_prefix,
    )
    .map_err(|e| Error::Config(e.to_string()))?;
    let limiter = counters.limiter("ip", config.rate_per_minute);
    let caller_limiter = counters.limiter("caller", config.rate_per_caller_per_minute);
    // Spent proofs where the rate limits are (Redis: shared by every replica).
    let mut dpop =
        shared::dpop::DpopVerifier::new(config.dpop_iat_window_secs, config.dpop_replay_cache)
            .with_replay(shared::dpop::ReplayStore::shared(
                &counters,
                config.dpop_replay_cache,
            ));
    if config.dpop_nonce {
        dpop = dpop.with_nonces(shared::dpop::NonceSource::new(
            nonce_key,
            config.dpop_nonce_secs,
        ));
    }
    let rbac = rbac::Rbac::new(config.upstream_provider.as_deref());
    Ok(Arc::new(McpState {
        dpop,
        rbac,
        config,
        store,
        verifier,
        audit_log,
        authz,
        revocations,
        counters,
        limiter,
        caller_limiter,
        metrics: metrics::Metrics::new(),
        origins,
        clock,
    }))
}

/// The HTTP application: protected-resource metadata and the MCP endpoint behind the token check.
pub(crate) fn router(state: Arc<McpState>, cancel: CancellationToken) -> Router {
    // Origin is validated by `auth::check_origin` (outermost, before the token check).
    let mcp_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(state.config.hosts())
        .with_cancellation_token(cancel);
    let template = server::McpServer::new(Arc::clone(&state));
    let mcp = StreamableHttpService::new(
        move || Ok(template.clone()),
        Arc::new(NeverSessionManager::default()),
        mcp_config,
    );
    let mut protected = Router::new()
        .nest_service(&state.config.mcp_path(), mcp)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_token,
        ));
    if state.limiter.is_some() {
        protected = protected.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::rate_limit,
        ));
    }
    let protected = protected
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::check_origin,
        ))
        // Every MCP answer is the caller's own (tool results carry notes, a new API key's
        // secret): never stored by a cache (RFC 9111 §5.2.2.5), as the refusals already say.
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        ));
    // Outermost: preflights are answered before the Origin and token checks, and every
    // answer (401/403 challenges too) carries the grant for an allowed origin.
    let methods = [Method::GET, Method::POST, Method::DELETE];
    let protected = origin::cors(state.origins.cors_origins(), &methods).apply(protected);
    Router::new()
        .merge(metadata::router(&state))
        .merge(health::router())
        .with_state(Arc::clone(&state))
        .merge(protected)
        // A request id on every request, its span around all of it and one access line.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.http.clone(),
            shared::observe::request_id,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
}

/// `GET /metrics` (Prometheus text format), for the metrics listener (`MCP_METRICS_BIND`).
pub fn metrics_router(state: Arc<McpState>) -> Router {
    async fn metrics(
        axum::extract::State(state): axum::extract::State<Arc<McpState>>,
    ) -> impl axum::response::IntoResponse {
        let body = state.metrics.render(
            state.verifier.jwks_fetches(),
            state.counters.fail_open_count(),
        );
        (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
    }
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
}

/// Serve `GET /metrics` on its own listener (`MCP_METRICS_BIND`), apart from the public one,
/// until the task is dropped.
pub async fn serve_metrics(state: Arc<McpState>, listener: TcpListener) -> Result<(), Error> {
    shared::serve::serve_metrics(listener, metrics_router(state))
        .await
        .map_err(Error::Serve)
}

/// Serve until `shutdown` resolves; keeps the JWKS fresh in the background. Every connection
/// gets TCP_NODELAY (`shared::serve::Listener`).
pub async fn serve(
    state: Arc<McpState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_on(state, shared::serve::Listener::tcp(listener), shutdown).await
}

/// `serve` on any listener of TCP addresses (`shared::serve::Listener`, plain or TLS, from the
/// binary's `shared::serve::Server`; `shared::tls::TlsListener`). The background loops (JWKS
/// refresh, Shared Signals poller, denial reporter) run until the server stops; then queued
/// audit rows are written.
pub async fn serve_on<L>(
    state: Arc<McpState>,
    listener: L,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let mut tasks = shared::serve::Tasks::new();
    tasks.spawn(Arc::clone(&state.verifier).refresh_forever());
    // Shared Signals and denied tool calls to the authorization server's audit log: only with
    // this server's client credentials (its stream and its reports are its client's).
    let has_credentials = || state.config.load_client_secret().is_some();
    if state.config.ssf_poll_secs > 0 && has_credentials() {
        tasks.spawn(signals::poll_forever(Arc::clone(&state)));
    }
    if state.config.denial_report_secs > 0 && has_credentials() {
        tasks.spawn(denials::report_forever(Arc::clone(&state)));
    }
    let audit_log = state.audit_log.clone();
    let cancel = CancellationToken::new();
    let app = router(state, cancel.clone());
    let result = shared::serve::serve_router(listener, app, async move {
        shutdown.await;
        cancel.cancel();
    })
    .await;
    tasks.shutdown().await;
    audit_log.flush().await;
    result.map_err(Error::Serve)
}
