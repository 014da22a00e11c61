//! Raw in-process signing rate of the server's active key, for `docs/benchmarks.md`.
//!
//! Reads the same configuration as `authz serve` (AUTHZ_* / DATABASE_URL), loads the active
//! signing key from that database, and for `BENCH_SECS` seconds per row measures on 1 thread and
//! on every core: (a) bare signatures over a typical JWT signing input and (b) complete access
//! tokens minted by the server's `TokenIssuer` (claims, JSON, base64url, signature).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/rate.rs"]
mod rate;

use std::sync::Arc;

use rate::rate;

use authz::clock::{Clock, SystemClock};
use authz::config::Config;
use authz::keys::issuer::Subject;
use authz::store::{AuthMethod, Client, ClientSettings, GrantType};
use shared::ScopeSet;

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let config = Config::from_process_env(None).expect("configuration");
    let aud = config.default_resource.clone();
    let state = authz::build_state(config, Arc::new(SystemClock))
        .await
        .expect("state");
    let key = state.keys.current().active.clone();
    let client = Client {
        id: "bench".into(),
        secret_hash: None,
        settings: ClientSettings {
            name: "bench".into(),
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("notes:read").unwrap(),
            resources: vec![aud.clone()],
            ..ClientSettings::default()
        },
        revoked_at: None,
        created_at: 0,
        updated_at: 0,
        metadata_fetched_at: None,
        metadata_expires_at: None,
        last_used_at: None,
    };
    let scope = client.scopes.clone();
    let sample = state
        .issuer
        .access_token(
            Subject::Client,
            &client,
            &aud,
            &scope,
            None,
            SystemClock.now(),
        )
        .unwrap();
    let signing_input = sample
        .expose()
        .rsplit_once('.')
        .unwrap()
        .0
        .as_bytes()
        .to_vec();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "key {} ({}), {} s per row, {} cores",
        key.kid(),
        key.alg(),
        secs,
        cores
    );
    for threads in [1, cores] {
        let k = key.clone();
        let input = signing_input.clone();
        let sign = rate(
            threads,
            secs,
            Arc::new(move || drop(k.sign(&input).unwrap())),
        );
        let issuer = state.issuer.clone();
        let (c, a, s) = (client.clone(), aud.clone(), scope.clone());
        let mint = rate(
            threads,
            secs,
            Arc::new(move || {
                drop(
                    issuer
                        .access_token(Subject::Client, &c, &a, &s, None, SystemClock.now())
                        .unwrap(),
                )
            }),
        );
        println!("threads={threads} raw_sign_per_s={sign:.0} mint_access_token_per_s={mint:.0}");
    }
}
