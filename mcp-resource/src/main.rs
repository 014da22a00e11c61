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
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    // rmcp logs whole JSON-RPC messages at debug level (tool arguments and results: note
    // contents, API key secrets) and a line per request at info. Cap it at warn whatever the
    // filter says (a more specific directive wins in EnvFilter).
    for directive in ["rmcp::service=warn", "rmcp::transport=warn"] {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    eprintln!(
        "mcp-resource listening on http://{}\n  resource:  {}\n  metadata:  {}\n  issuer:    {}",
        listener.local_addr().map_err(mcp_resource::Error::Serve)?,
        state.config.resource_url,
        state.config.metadata_url(),
        state.config.issuer
    );
    mcp_resource::serve(state, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
