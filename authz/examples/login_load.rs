//! Password sign-ins at a fixed concurrency, for `scripts/bench-login` (`docs/benchmarks.md`).
//!
//! `BENCH_CONC` tasks each sign in over and over for `BENCH_SECS` seconds (users
//! `bench0…bench{BENCH_USERS-1}` in turn, password `BENCH_PASSWORD`, client `bench`, against
//! `BENCH_URL`/token). A shed answer (503) is retried after its `Retry-After` as a well-behaved
//! client does; with `BENCH_IGNORE_RETRY_AFTER=1` at once, as a flood does. Meanwhile a probe
//! reads `GET /.well-known/jwks.json` 50 times a second on its own connection (what resource
//! servers do while users sign in). Prints one line: sign-ins/s, shed answers, other failures,
//! p50/p99 of the successful sign-ins, and p50/p99 of the probe.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let url = format!("{}/token", std::env::var("BENCH_URL").expect("BENCH_URL"));
    let conc: usize = env("BENCH_CONC", 8);
    let secs: u64 = env("BENCH_SECS", 10);
    let users: usize = env("BENCH_USERS", 64);
    let password = std::env::var("BENCH_PASSWORD").expect("BENCH_PASSWORD");
    let ignore_retry: bool = env("BENCH_IGNORE_RETRY_AFTER", 0u8) == 1;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(secs);
    let probe = {
        let url = url.replace("/token", "/.well-known/jwks.json");
        let http = reqwest::Client::new();
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while Instant::now() < end {
                tick.tick().await;
                let started = Instant::now();
                if let Ok(r) = http.get(&url).send().await
                    && r.status() == 200
                    && r.bytes().await.is_ok()
                {
                    lat.push(started.elapsed());
                }
            }
            lat
        })
    };
    let tasks: Vec<_> = (0..conc)
        .map(|i| {
            let (http, url, password) = (http.clone(), url.clone(), password.clone());
            tokio::spawn(async move {
                let (mut ok, mut shed, mut failed) = (Vec::new(), 0u64, 0u64);
                let mut n = i;
                while Instant::now() < end {
                    let user = format!("bench{}", n % users);
                    n += conc;
                    let started = Instant::now();
                    let r = http
                        .post(&url)
                        .form(&[
                            ("grant_type", "password"),
                            ("client_id", "bench"),
                            ("username", user.as_str()),
                            ("password", password.as_str()),
                            ("scope", "notes:read"),
                        ])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            // Only what completed inside the measured window counts.
                            if Instant::now() <= end {
                                ok.push(started.elapsed());
                            }
                        }
                        Ok(r) if r.status() == 503 => {
                            shed += 1;
                            let wait: u64 = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(1);
                            let _ = r.bytes().await;
                            if !ignore_retry {
                                tokio::time::sleep(Duration::from_secs(wait)).await;
                            }
                        }
                        _ => failed += 1,
                    }
                }
                (ok, shed, failed)
            })
        })
        .collect();
    let (mut ok, mut shed, mut failed) = (Vec::new(), 0, 0);
    for t in tasks {
        let (o, s, f) = t.await.unwrap();
        ok.extend(o);
        shed += s;
        failed += f;
    }
    let mut probed = probe.await.unwrap();
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "signins_per_s={:.1} signins={} shed_503={shed} failed={failed} p50_ms={:.0} p99_ms={:.0} \
         jwks_probes={} jwks_p50_ms={:.2} jwks_p99_ms={:.2}",
        ok.len() as f64 / secs as f64,
        ok.len(),
        pct(&mut ok, 0.50),
        pct(&mut ok, 0.99),
        probed.len(),
        pct(&mut probed, 0.50),
        pct(&mut probed, 0.99),
    );
}
