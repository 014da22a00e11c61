//! `mcp-auth-client`: try and script the system. `demo` (default) walks through everything,
//! `interactive` is a small shell, `validate` checks a running system end to end.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::ui::{Format, Ui};

#[derive(Debug, Parser)]
#[command(name = "mcp-auth-client", version, about)]
struct Args {
    /// The MCP server; everything else is discovered from it.
    #[arg(
        long,
        env = "MCP_URL",
        default_value = "http://127.0.0.1:8081/mcp",
        global = true
    )]
    mcp_url: String,
    /// `text` (readable, coloured) or `json` (one JSON object per line).
    #[arg(long, value_enum, default_value = "text", global = true)]
    format: Format,
    /// The public client used for password and browser sign-in.
    #[arg(long, default_value = mcp_auth_client::DEFAULT_CLIENT_ID, global = true)]
    client_id: String,
    /// Use DPoP (RFC 9449): tokens bound to a key generated for the session, a proof on
    /// every token request and MCP call.
    #[arg(long, env = "MCP_AUTH_CLIENT_DPOP", global = true)]
    dpop: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk through sign-in, notes, API keys, access control, audit and the security summary.
    Demo,
    /// A shell: login, login-browser, login-device, profile, note, notes, apikey, audit,
    /// summary, whoami, logout, help, quit.
    Interactive {
        /// Remember tokens in a file (mode 0600) between runs.
        #[arg(long)]
        remember: bool,
    },
    /// Check a running system end to end; `N passed, M failed`, non-zero exit on failure.
    Validate,
    /// Sign in with the device authorization grant (RFC 8628): shows an address and a code to
    /// enter on another device, waits for approval, keeps the tokens (mode 0600).
    LoginDevice {
        /// Scopes to ask for (space-separated); empty: what your roles allow.
        #[arg(long, default_value = "")]
        scope: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    mcp_auth_client::dpop::set_default(args.dpop);
    let ui = Ui::new(args.format);
    let ok = match args.command.unwrap_or(Command::Demo) {
        Command::Demo => cli::demo::run(&ui, &args.mcp_url, &args.client_id).await,
        Command::Validate => cli::validate::run(&ui, &args.mcp_url, &args.client_id).await,
        Command::LoginDevice { scope } => {
            cli::device::run(&ui, &args.mcp_url, &args.client_id, &scope).await
        }
        Command::Interactive { remember } => {
            cli::interactive::run(&ui, &args.mcp_url, &args.client_id, remember).await
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
