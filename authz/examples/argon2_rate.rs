//! Raw argon2id rate of this machine's cores, for `docs/benchmarks.md` (`scripts/bench-login`).
//!
//! Reads the argon2 parameters from the same configuration as `authz serve`
//! (`AUTHZ_ARGON2_M_COST`, `_T_COST`, `_P_COST`) and for `BENCH_SECS` seconds per row verifies a
//! password on 1 thread and on every core, each thread with its own reused memory block (the
//! work a sign-in costs, without HTTP, storage or queueing).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/rate.rs"]
mod rate;

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use authz::config::Config;
use rate::rate;

fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let cfg = Config::from_process_env(None)
        .expect("configuration")
        .argon2;
    let params = Params::new(cfg.m_cost, cfg.t_cost, cfg.p_cost, None).unwrap();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "argon2id m={} KiB t={} p={}, {secs} s per row, {cores} cores",
        cfg.m_cost, cfg.t_cost, cfg.p_cost
    );
    for threads in [1, cores] {
        let params = params.clone();
        let per_second = rate(
            threads,
            secs,
            Arc::new(move || {
                thread_local! {
                    static MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
                }
                MEMORY.with(|m| {
                    let mut m = m.borrow_mut();
                    if m.len() < params.block_count() {
                        *m = vec![Block::new(); params.block_count()];
                    }
                    let mut out = [0u8; 32];
                    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                        .hash_password_into_with_memory(
                            b"correct horse battery staple",
                            b"saltsaltsaltsalt",
                            &mut out,
                            &mut m[..],
                        )
                        .unwrap();
                });
            }),
        );
        println!("threads={threads} argon2_verifications_per_s={per_second:.2}");
    }
}
