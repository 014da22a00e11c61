//! The `mcp-resource` binary: `serve` (default) or `migrate`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the request path allocates many small JSON-RPC buffers; it measurably beats the
/// system allocator there (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-resource",
    version,
    about = "MCP resource server protected by authz tokens"
)]
struct Cli {
    /// TOML configuration file; MCP_* environment variables override it.
    #[arg(long, global = true, env = "MCP_CONFIG")]
    config: Option<PathBuf>,
    /// Serve https with this PEM certificate chain (with --tls-key; MCP_TLS_CERT).
    #[arg(long, global = true, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (MCP_TLS_KEY).
    #[arg(long, global = true, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match mcp_resource::Config::from_process_env(cli.config.as_deref()) {
        Ok(mut c) => {
            if cli.tls_cert.is_some() {
                c.tls_cert.clone_from(&cli.tls_cert);
                c.tls_key.clone_from(&cli.tls_key);
            }
            c
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // rmcp logs whole JSON-RPC messages at debug level (tool arguments and results: note
    // contents, API key secrets) and a line per request at info. Cap it at warn whatever the
    // filter says (a more specific directive wins in EnvFilter).
    shared::observe::init_logging(
        &config.log,
        &["rmcp::service=warn", "rmcp::transport=warn"],
        config.log_format,
    );
    match run(cli.command.unwrap_or(Command::Serve), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: mcp_resource::Config) -> Result<(), mcp_resource::Error> {
    let bind = config.bind;
    let state = mcp_resource::build_state(config).await?;
    if let Command::Migrate = command {
        println!("migrations applied");
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(mcp_resource::Error::Serve)?;
    let addr = listener.local_addr().map_err(mcp_resource::Error::Serve)?;
    let c = &state.config;
    if c.log_format == shared::observe::LogFormat::Json {
        // Machine-read logs: the banner is one event like every other line.
        tracing::info!(%addr, resource = %c.resource_url, issuer = %c.issuer, "mcp-resource listening");
    } else {
        let scheme = if c.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!(
            "mcp-resource listening on {scheme}://{addr}\n  resource:  {}\n  metadata:  {}\n  issuer:    {}",
            c.resource_url,
            c.metadata_url(),
            c.issuer
        );
    }
    let metrics = match c.metrics_bind {
        Some(bind) => {
            let l = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(mcp_resource::Error::Serve)?;
            tracing::info!(%bind, "metrics on http://{bind}/metrics");
            Some(tokio::spawn(mcp_resource::serve_metrics(
                std::sync::Arc::clone(&state),
                l,
            )))
        }
        None => None,
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = match (c.tls_cert.clone(), c.tls_key.clone()) {
        (Some(cert), Some(key)) => {
            let files = shared::tls::TlsFiles::load(&cert, &key)
                .map_err(|e| mcp_resource::Error::Config(e.to_string()))?;
            let reload = tokio::spawn(shared::tls::reload_on_hangup(files.clone()));
            let tls = shared::tls::TlsListener::new(listener, files)
                .map_err(mcp_resource::Error::Serve)?;
            let served = mcp_resource::serve_on(state, tls, stop).await;
            reload.abort();
            served
        }
        _ => mcp_resource::serve(state, listener, stop).await,
    };
    if let Some(m) = metrics {
        m.abort();
    }
    served
}
