//! The `authz` binary: `serve` plus the administrative commands (see `authz --help`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let config = match authz::config::Config::from_process_env(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let default_level = if matches!(args.command, cli::Command::Serve(_)) {
        &config.log
    } else {
        "warn"
    };
    shared::observe::init_logging(default_level, &[], config.log_format);
    config.warn_deprecated();
    match cli::run(args.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
