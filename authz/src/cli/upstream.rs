//! `authz upstream list [--json]`: the configured upstream identity providers (federation,
//! `[[upstream]]`), each one's metadata fetched now, the redirect URI to register there, and
//! how many local users it has linked. Exits non-zero when a provider cannot be used.

use authz::error::{Error, Result};
use authz::state::AppState;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum UpstreamCmd {
    /// List the providers and whether each can be used now.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(state: &AppState, cmd: UpstreamCmd) -> Result<()> {
    let UpstreamCmd::List { json } = cmd;
    let reports = authz::federation::report(state.federation(), state.now()).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).map_err(Error::internal)?
        );
    } else if reports.is_empty() {
        println!("no upstream identity providers are configured ([[upstream]] in the TOML file)");
    } else {
        for r in &reports {
            println!("{} ({}, {}): {}", r.id, r.kind, r.name, r.status);
            if let Some(i) = &r.issuer {
                println!("  issuer:        {i}");
            }
            if let Some(e) = &r.error {
                println!("  error:         {e}");
            }
            println!("  redirect URI:  {}", r.redirect_uri);
            if let Some(jwk) = &r.client_jwk {
                println!("  client JWK:    {jwk} (register it at the provider)");
            }
            println!("  linked users:  {}", r.users);
        }
    }
    match reports.iter().find(|r| r.status != "ok") {
        Some(r) => Err(Error::Invalid(format!(
            "upstream {:?} cannot be used: {}",
            r.id,
            r.error.as_deref().unwrap_or("unknown error")
        ))),
        None => Ok(()),
    }
}
