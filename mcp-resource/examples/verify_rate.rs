//! Raw in-process JWT verification rate, for `docs/benchmarks.md`: fetches the JWKS of a
//! running `authz` (MCP_ISSUER) through the same `Verifier` the server uses, then verifies the
//! token given in BENCH_TOKEN for BENCH_SECS seconds on 1 thread and on every core.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shared::verifier::{Verifier, VerifierConfig};

/// The same allocator as the server binary, so the comparison is like for like.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let issuer = std::env::var("MCP_ISSUER").expect("MCP_ISSUER");
    let audience = std::env::var("MCP_RESOURCE_URL").expect("MCP_RESOURCE_URL");
    let token = std::env::var("BENCH_TOKEN").expect("BENCH_TOKEN");
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    let verifier = rt.block_on(async {
        let v = Verifier::new(
            VerifierConfig::new(issuer, audience),
            reqwest::Client::new(),
        );
        v.refresh(true).await.expect("JWKS");
        v.verify(&token)
            .await
            .expect("the benchmark token must verify");
        v
    });
    println!(
        "verifying one {}-byte token, {secs} s per row, {cores} cores",
        token.len()
    );
    for threads in [1, cores] {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (stop, count, v, t) =
                    (stop.clone(), count.clone(), verifier.clone(), token.clone());
                let handle = rt.handle().clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        handle.block_on(v.verify(&t)).unwrap();
                        n += 1;
                    }
                    count.fetch_add(n, Ordering::Relaxed);
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().unwrap();
        }
        let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        println!("threads={threads} raw_verify_per_s={rate:.0}");
    }
}
