//! MCP `tools/call` load with DPoP-bound tokens vs Bearer tokens, same run, for
//! `docs/benchmarks.md` (`scripts/bench-dpop`). wrk cannot sign a fresh proof per request, so
//! this is the load generator: it signs in `testuser` twice at a running `authz` (password
//! grant of the demo `mcp-cli` client) — once plainly (Bearer), once with a DPoP proof (a
//! token bound to an ES256 key) — then for each concurrency C runs C connections for
//! BENCH_SECS seconds in each mode, Bearer first, and prints calls/s, p50, p99 and the non-200
//! count. In DPoP mode every request carries a new proof (new `jti`, `ath` of the token),
//! signed here, as a real client does; that signing is load-generator CPU on the same cores.
//!
//! Env: BENCH_AUTHZ (authz base URL), MCP_RESOURCE_URL (the MCP endpoint), BENCH_SECS
//! (default 10), BENCH_CONCURRENCY (default `1,16,64`), BENCH_TOOL (default
//! `get_user_profile`), BENCH_PASSWORD (default the demo password of `testuser`).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::dpop::DpopKey;

fn now() -> i64 {
    use shared::clock::Clock;
    shared::clock::SystemClock.now()
}

async fn sign_in(
    http: &reqwest::Client,
    authz: &str,
    password: &str,
    key: Option<&DpopKey>,
) -> String {
    let url = format!("{authz}/token");
    let mut req = http.post(&url).form(&[
        ("grant_type", "password"),
        ("client_id", "mcp-cli"),
        ("username", "testuser"),
        ("password", password),
        ("scope", "profile:read notes:read notes:write"),
    ]);
    if let Some(k) = key {
        req = req.header("DPoP", k.proof("POST", &url, now(), None, None));
    }
    let body: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    let want = if key.is_some() { "DPoP" } else { "Bearer" };
    assert_eq!(body["token_type"], want, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[derive(Clone)]
struct Mode {
    name: &'static str,
    token: Arc<str>,
    key: Option<Arc<DpopKey>>,
}

async fn run(
    http: reqwest::Client,
    url: Arc<str>,
    body: Arc<str>,
    mode: Mode,
    c: usize,
    secs: u64,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(c);
    for _ in 0..c {
        let (http, url, body, mode) = (http.clone(), url.clone(), body.clone(), mode.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut bad = 0u64;
            while Instant::now() < deadline {
                let start = Instant::now();
                let mut req = http
                    .post(&*url)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(body.to_string());
                req = match &mode.key {
                    None => req.header("authorization", format!("Bearer {}", mode.token)),
                    Some(k) => req
                        .header("authorization", format!("DPoP {}", mode.token))
                        .header(
                            "DPoP",
                            k.proof("POST", &url, now(), Some(&mode.token), None),
                        ),
                };
                match req.send().await {
                    Ok(r) => {
                        let ok = r.status() == 200;
                        let _ = r.bytes().await;
                        if !ok {
                            bad += 1;
                        }
                    }
                    Err(_) => bad += 1,
                }
                lat.push(start.elapsed().as_micros() as u32);
            }
            (lat, bad)
        }));
    }
    let mut all = Vec::new();
    let mut bad = 0;
    for t in tasks {
        let (lat, b) = t.await.unwrap();
        all.extend(lat);
        bad += b;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|us| *us as f64 / 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "mode={:<6} concurrency={c:<3} calls_per_s={:.0} p50={:.2}ms p99={:.2}ms non_200={bad}",
        mode.name,
        all.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let authz = std::env::var("BENCH_AUTHZ").expect("BENCH_AUTHZ");
    let url: Arc<str> = std::env::var("MCP_RESOURCE_URL")
        .expect("MCP_RESOURCE_URL")
        .into();
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let tool = std::env::var("BENCH_TOOL").unwrap_or_else(|_| "get_user_profile".into());
    let password = std::env::var("BENCH_PASSWORD").unwrap_or_else(|_| "TestPass123!".into());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let key = Arc::new(DpopKey::generate().unwrap());
    let bearer = sign_in(&http, &authz, &password, None).await;
    let bound = sign_in(&http, &authz, &password, Some(&key)).await;
    let body: Arc<str> = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": tool, "arguments": {}}})
    .to_string()
    .into();
    let modes = [
        Mode {
            name: "bearer",
            token: bearer.into(),
            key: None,
        },
        Mode {
            name: "dpop",
            token: bound.into(),
            key: Some(key),
        },
    ];
    // In-process cost of one proof (what DPoP adds per call, CPU only, 1 thread): signing (the
    // client's share) and verifying (the server's: shared::dpop, with the replay cache).
    let key = modes[1].key.as_ref().unwrap();
    let token = &modes[1].token;
    let n = 20_000;
    let t = Instant::now();
    let proofs: Vec<String> = (0..n)
        .map(|_| key.proof("POST", &url, now(), Some(token), None))
        .collect();
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let verifier = shared::dpop::DpopVerifier::new(60, 1_000_000);
    let req = shared::dpop::ProofRequest {
        method: "POST",
        uri: &url,
        access_token: Some(token),
    };
    let t = Instant::now();
    for p in &proofs {
        verifier.verify(p, &req, None, now()).await.unwrap();
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("proof, 1 thread: sign {sign_us:.1} us, verify {verify_us:.1} us");
    for c in levels {
        for m in &modes {
            run(http.clone(), url.clone(), body.clone(), m.clone(), c, secs).await;
        }
    }
}
