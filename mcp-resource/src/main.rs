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
    shared::serve::init_logging(
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
    let listen = shared::serve::Listen {
        bind: config.bind,
        tls_cert: config.tls_cert.clone(),
        tls_key: config.tls_key.clone(),
        metrics_bind: config.metrics_bind,
    };
    let state = mcp_resource::build_state(config).await?;
    if let Command::Migrate = command {
        println!("migrations applied");
        return Ok(());
    }
    let server = shared::serve::Server::bind(&listen)
        .await
        .map_err(startup_error)?;
    let addr = server.local_addr();
    let c = &state.config;
    if c.log_format == shared::observe::LogFormat::Json {
        // Machine-read logs: the banner is one event like every other line.
        tracing::info!(%addr, resource = %c.resource_url, issuer = %c.issuer, "mcp-resource listening");
    } else {
        eprintln!(
            "mcp-resource listening on {}://{addr}\n  resource:  {}\n  metadata:  {}\n  issuer:    {}",
            server.scheme(),
            c.resource_url,
            c.metadata_url(),
            c.issuer
        );
    }
    let metrics = mcp_resource::metrics_router(std::sync::Arc::clone(&state));
    server
        .run(metrics, |listener| {
            mcp_resource::serve_on(state, listener, shared::serve::shutdown_signal())
        })
        .await
}

/// The errors of starting to listen, as this binary has always reported them.
fn startup_error(e: shared::serve::ServeError) -> mcp_resource::Error {
    use shared::serve::ServeError;
    match e {
        ServeError::Bind { source, .. }
        | ServeError::BindMetrics { source, .. }
        | ServeError::Listener(source) => mcp_resource::Error::Serve(source),
        e @ ServeError::Tls(_) => mcp_resource::Error::Config(e.to_string()),
    }
}
