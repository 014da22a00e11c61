//! Token endpoint load at a fixed concurrency, for `scripts/bench-cluster` (`docs/benchmarks.md`).
//!
//! `BENCH_MODE=cc`: `BENCH_CONC` tasks request `client_credentials` tokens over and over for
//! `BENCH_SECS` seconds (client `BENCH_CLIENT_ID` / `BENCH_CLIENT_SECRET`, Basic auth).
//! `BENCH_MODE=refresh`: each task first signs in once with the password grant (public client
//! `BENCH_CLIENT_ID`, user `BENCH_USERNAME` / `BENCH_PASSWORD`, untimed), then rotates its own
//! refresh family: every request spends the previous refresh token, so each is a full
//! rotation (one family per task: no reuse, no retry grace involved).
//! Against `BENCH_URL`/token. Prints one line: requests/s, successes, failures, p50/p99.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::Value;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn var(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is required"))
}

#[tokio::main]
async fn main() {
    let url = format!("{}/token", var("BENCH_URL"));
    let mode = std::env::var("BENCH_MODE").unwrap_or_else(|_| "cc".into());
    let conc: usize = env("BENCH_CONC", 16);
    let secs: u64 = env("BENCH_SECS", 10);
    let client = var("BENCH_CLIENT_ID");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Sign-ins happen before the clock starts.
    let mut families = Vec::new();
    if mode == "refresh" {
        let (user, password) = (var("BENCH_USERNAME"), var("BENCH_PASSWORD"));
        for _ in 0..conc {
            let form = [
                ("grant_type", "password"),
                ("client_id", client.as_str()),
                ("username", user.as_str()),
                ("password", password.as_str()),
            ];
            let body: Value = http
                .post(&url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let rt = body["refresh_token"].as_str();
            families.push(
                rt.unwrap_or_else(|| panic!("no refresh token: {body}"))
                    .to_owned(),
            );
        }
    }
    let secret = std::env::var("BENCH_CLIENT_SECRET").unwrap_or_default();
    let end = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..conc)
        .map(|i| {
            let (http, url, client, secret) =
                (http.clone(), url.clone(), client.clone(), secret.clone());
            let mut refresh = families.get(i).cloned();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (Vec::new(), 0u64);
                while Instant::now() < end {
                    let started = Instant::now();
                    let req = match &refresh {
                        Some(rt) => http.post(&url).form(&[
                            ("grant_type", "refresh_token"),
                            ("client_id", client.as_str()),
                            ("refresh_token", rt.as_str()),
                        ]),
                        None => http
                            .post(&url)
                            .basic_auth(&client, Some(&secret))
                            .form(&[("grant_type", "client_credentials")]),
                    };
                    match req.send().await {
                        Ok(r) if r.status() == 200 => {
                            let body: Value = r.json().await.unwrap_or(Value::Null);
                            if let Some(next) = body["refresh_token"].as_str() {
                                refresh = Some(next.to_owned());
                            }
                            // Only what completed inside the measured window counts.
                            if Instant::now() <= end {
                                ok.push(started.elapsed());
                            }
                        }
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut ok, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (o, f) = t.await.unwrap();
        ok.extend(o);
        failed += f;
    }
    ok.sort();
    let pct = |p: f64| {
        ok.get(((ok.len() as f64 * p) as usize).min(ok.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "mode={mode} concurrency={conc} per_s={:.0} ok={} failed={failed} p50_ms={:.2} p99_ms={:.2}",
        ok.len() as f64 / secs as f64,
        ok.len(),
        pct(0.50),
        pct(0.99)
    );
}
