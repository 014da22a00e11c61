//! One serve bootstrap for both servers: what `authz serve` and `mcp-resource serve` do around
//! their own router, written once.
//!
//! A binary's `main`, in this order:
//! 1. [`init_logging`] (`shared::observe`) as soon as the configuration is read, so building the
//!    state can already log;
//! 2. builds its state (storage, keys…);
//! 3. [`Server::bind`]: the public listener (plain TCP, or TLS when a certificate and key are
//!    configured: loaded now, so a bad file fails before anything is announced) and the
//!    metrics listener when one is configured;
//! 4. prints its banner with [`Server::local_addr`] and [`Server::scheme`];
//! 5. [`Server::run`]: starts the metrics listener and the SIGHUP certificate reload in a
//!    [`Tasks`] set, hands the public [`Listener`] to the application's own `serve_on` (with
//!    [`shutdown_signal`] as its end), and stops those tasks once it returns.
//!
//! An application's `serve_on` builds its router, spawns its background loops into its own
//! [`Tasks`], calls [`serve_router`] and, once that returns, [`Tasks::shutdown`] and whatever
//! it flushes (the audit log).
//!
//! - **TCP_NODELAY** on every accepted connection, plain or TLS: responses are small and
//!   latency-bound (SSE answers go out as several small writes; Nagle and delayed ACKs add
//!   ~40 ms to each).
//! - **Graceful shutdown**: on Ctrl-C or SIGTERM the listener stops accepting and in-flight
//!   requests finish; background loops are aborted and joined, never left running.
//! - **TLS** is `shared::tls` (reloadable on SIGHUP, handshakes off the accept loop). SIGHUP is
//!   only handled when TLS is on (otherwise its default action applies, as before).
//! - **Metrics** (`/metrics`) on their own listener, apart from the public one
//!   (`AUTHZ_METRICS_BIND` / `MCP_METRICS_BIND`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

pub use crate::observe::init_logging;
use crate::tls::{TlsError, TlsFiles, TlsListener};

/// Where a server listens, from its configuration (`AUTHZ_BIND`/`MCP_BIND`,
/// `…_TLS_CERT`/`…_TLS_KEY`, `…_METRICS_BIND`).
#[derive(Debug, Clone)]
pub struct Listen {
    pub bind: SocketAddr,
    /// PEM certificate chain; TLS is on when both it and `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `/metrics` on its own listener.
    pub metrics_bind: Option<SocketAddr>,
}

/// Why a server could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} for metrics: {source}")]
    BindMetrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The certificate or key cannot be read or used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TLS listener could not start.
    #[error("TLS listener: {0}")]
    Listener(std::io::Error),
}

/// A server's listeners, bound and not yet serving.
#[derive(Debug)]
pub struct Server {
    public: Listener,
    local: SocketAddr,
    tls: Option<Arc<TlsFiles>>,
    metrics: Option<(SocketAddr, TcpListener)>,
}

impl Server {
    /// Bind the public listener (with TLS when both files are configured) and the metrics one.
    pub async fn bind(listen: &Listen) -> Result<Self, ServeError> {
        let tcp = TcpListener::bind(listen.bind)
            .await
            .map_err(|source| ServeError::Bind {
                addr: listen.bind,
                source,
            })?;
        let local = tcp.local_addr().map_err(|source| ServeError::Bind {
            addr: listen.bind,
            source,
        })?;
        let (public, tls) = match (&listen.tls_cert, &listen.tls_key) {
            (Some(cert), Some(key)) => {
                let files = TlsFiles::load(cert, key)?;
                let tls = TlsListener::new(tcp, files.clone()).map_err(ServeError::Listener)?;
                (Listener(Inner::Tls(tls)), Some(files))
            }
            _ => (Listener::tcp(tcp), None),
        };
        let metrics = match listen.metrics_bind {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::BindMetrics { addr, source })?;
                Some((addr, l))
            }
            None => None,
        };
        Ok(Self {
            public,
            local,
            tls,
            metrics,
        })
    }

    /// The public listener's address (the bound port when the configuration said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The public URL scheme: `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Serve: `metrics` on the metrics listener (if any) and the certificate reload on SIGHUP
    /// (with TLS) as background tasks, while `serve` runs on the public listener; those tasks
    /// are stopped once it returns, and its result is returned.
    pub async fn run<F, Fut>(self, metrics: Router, serve: F) -> Fut::Output
    where
        F: FnOnce(Listener) -> Fut,
        Fut: Future,
    {
        let mut tasks = Tasks::new();
        if let Some(files) = self.tls {
            tasks.spawn(crate::tls::reload_on_hangup(files));
        }
        if let Some((bind, listener)) = self.metrics {
            tracing::info!(%bind, "metrics on http://{bind}/metrics");
            tasks.spawn(async move {
                if let Err(e) = serve_metrics(listener, metrics).await {
                    tracing::error!(error = %e, "metrics server stopped");
                }
            });
        }
        let served = serve(self.public).await;
        tasks.shutdown().await;
        served
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then let in-flight requests finish.
/// Handlers see the peer's address as `ConnectInfo<SocketAddr>`, on any listener of TCP
/// addresses (plain, [`Listener`], `shared::tls::TlsListener`).
pub async fn serve_router<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    // axum knows the peer address of a `TcpListener` and of any tapped listener: tap this one
    // (doing nothing) so every listener of TCP addresses, TLS included, has it.
    let listener = listener.tap_io(|_| {});
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serve `router` (`/metrics`) on its own listener until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// Resolves on Ctrl-C or SIGTERM (what a service manager or an orchestrator sends), logging that
/// in-flight requests are being finished.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// A server's background loops (key refresh, pollers, housekeeping…): spawned into one set,
/// aborted and joined together at shutdown. Dropping the set aborts them too.
#[derive(Debug, Default)]
pub struct Tasks(JoinSet<()>);

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `task` in the background until [`Tasks::shutdown`].
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.spawn(task);
    }

    /// How many tasks are in the set (finished ones included until joined).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Abort every task and wait until each has stopped; one that had panicked is logged.
    pub async fn shutdown(mut self) {
        self.0.abort_all();
        while let Some(done) = self.0.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(error = %e, "a background task panicked");
            }
        }
    }
}

/// The public listener: plain TCP or TLS, each connection with TCP_NODELAY.
#[derive(Debug)]
pub struct Listener(Inner);

#[derive(Debug)]
enum Inner {
    Tcp(TcpListener),
    Tls(TlsListener),
}

impl Listener {
    /// Plain TCP (tests, and servers behind a TLS-terminating proxy).
    pub fn tcp(listener: TcpListener) -> Self {
        Self(Inner::Tcp(listener))
    }
}

impl axum::serve::Listener for Listener {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.0 {
            Inner::Tcp(l) => {
                // axum's accept: waits out errors such as running out of file descriptors.
                let (tcp, peer) = axum::serve::Listener::accept(l).await;
                let _ = tcp.set_nodelay(true);
                (Either::Left(tcp), peer)
            }
            // Its connections already have TCP_NODELAY and a finished handshake.
            Inner::Tls(l) => {
                let (tls, peer) = axum::serve::Listener::accept(l).await;
                (Either::Right(tls), peer)
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match &self.0 {
            Inner::Tcp(l) => l.local_addr(),
            Inner::Tls(l) => axum::serve::Listener::local_addr(l),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read, Write};
    use std::net::IpAddr;

    use axum::extract::ConnectInfo;
    use axum::routing::get;

    use super::*;

    /// One request over a fresh connection, the whole answer.
    async fn get_text(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr)?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })
        .await
        .unwrap()
    }

    fn listen(metrics: bool) -> Listen {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        Listen {
            bind: any,
            tls_cert: None,
            tls_key: None,
            metrics_bind: metrics.then_some(any),
        }
    }

    #[tokio::test]
    async fn serves_the_app_with_peer_addresses_and_metrics_until_shutdown() {
        // The metrics listener's port is only known once bound: bind it here first.
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_addr = probe.local_addr().unwrap();
        drop(probe);
        let mut l = listen(false);
        l.metrics_bind = Some(metrics_addr);
        let server = Server::bind(&l).await.unwrap();
        assert_eq!(server.scheme(), "http");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let app = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let metrics = Router::new().route("/metrics", get(|| async { "up 1" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(server.run(metrics, move |listener| {
            serve_router(listener, app, async {
                let _ = stopped.await;
            })
        }));
        let answer = get_text(addr, "/").await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(&IpAddr::from([127, 0, 0, 1]).to_string()));
        let answer = get_text(metrics_addr, "/metrics").await.unwrap();
        assert!(answer.ends_with("up 1"), "{answer}");
        stop.send(()).unwrap();
        run.await.unwrap().unwrap();
        // Both listeners are closed once `run` returns: the metrics task was stopped too.
        assert!(get_text(addr, "/").await.is_err());
        assert!(get_text(metrics_addr, "/metrics").await.is_err());
    }

    #[tokio::test]
    async fn a_port_in_use_is_named_in_the_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut l = listen(false);
        l.bind = taken.local_addr().unwrap();
        let e = Server::bind(&l).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot listen on {}: ", l.bind)),
            "{e}"
        );
        let mut l = listen(false);
        l.metrics_bind = Some(taken.local_addr().unwrap());
        let e = Server::bind(&l).await.unwrap_err();
        assert!(e.to_string().contains("for metrics"), "{e}");
    }

    #[tokio::test]
    async fn an_unreadable_certificate_fails_at_bind() {
        let mut l = listen(false);
        l.tls_cert = Some("/nonexistent/cert.pem".into());
        l.tls_key = Some("/nonexistent/key.pem".into());
        let e = Server::bind(&l).await.unwrap_err();
        assert!(matches!(e, ServeError::Tls(_)), "{e}");
    }

    #[tokio::test]
    async fn shutdown_aborts_and_joins_every_task() {
        let mut tasks = Tasks::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        for _ in 0..3 {
            let tx = tx.clone();
            // Each holds a sender until it is stopped.
            tasks.spawn(async move {
                let _held = tx;
                std::future::pending::<()>().await;
            });
        }
        drop(tx);
        tasks.spawn(async {});
        assert_eq!(tasks.len(), 4);
        tasks.shutdown().await;
        // Every sender is gone: no task is left running.
        assert!(rx.recv().await.is_none());
    }
}
