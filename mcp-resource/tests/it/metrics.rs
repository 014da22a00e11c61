//! `/metrics` on both servers, each on its own listener: after known traffic, the counters
//! say exactly what happened (tokens by grant, sign-in failures, requests by route and status,
//! refusals and verification failures by reason), and the sampled gauges are present.

use reqwest::StatusCode;
use testkit::both_backends;

use crate::support::{Backend, System, initialize};

both_backends!(both_servers_count_known_traffic);

async fn scrape(sys: &System, url: &str) -> String {
    let r = sys.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    r.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as exposed), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn both_servers_count_known_traffic(backend: Backend) {
    let sys = System::start(backend).await;
    let mut urls = Vec::new();
    for serve in [true, false] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}/metrics", l.local_addr().unwrap()));
        if serve {
            tokio::spawn(authz::serve_metrics(sys.authz.clone(), l));
        } else {
            tokio::spawn(mcp_resource::serve_metrics(sys.mcp.clone(), l));
        }
    }
    // authz: two client-credentials tokens, one failed and one good sign-in.
    sys.service_token().await;
    sys.service_token().await;
    let bad = sys
        .http
        .post(format!("{}/token", sys.authz_url))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "mcp-cli"),
            ("username", "testuser"),
            ("password", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let token = sys.user_token("testuser").await;
    // mcp-resource: one good call, one malformed token, one without a token.
    assert_eq!(sys.post(Some(&token), &initialize()).await.status(), 200);
    assert_eq!(sys.post(Some("x.y.z"), &initialize()).await.status(), 401);
    assert_eq!(sys.post(None, &initialize()).await.status(), 401);

    let a = scrape(&sys, &urls[0]).await;
    for (series, expected) in [
        (
            "authz_tokens_issued_total{grant=\"client_credentials\"}",
            2.0,
        ),
        ("authz_tokens_issued_total{grant=\"password\"}", 1.0),
        (
            "authz_audit_events_total{kind=\"login.failed\",outcome=\"failure\"}",
            1.0,
        ),
        (
            "authz_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"}",
            3.0,
        ),
        (
            "authz_http_requests_total{method=\"POST\",route=\"/token\",status=\"400\"}",
            1.0,
        ),
        (
            "authz_http_request_duration_seconds_count{route=\"/token\"}",
            4.0,
        ),
    ] {
        assert_eq!(value(&a, series), expected, "{series} in\n{a}");
    }
    for gauge in [
        "authz_password_hash_waiting",
        "authz_db_connections",
        "authz_db_connections_idle",
        "authz_rate_limit_checks_failed_open",
    ] {
        assert!(a.lines().any(|l| l.starts_with(gauge)), "{gauge} in\n{a}");
    }
    assert!(value(&a, "authz_db_connections") >= 1.0);

    let m = scrape(&sys, &urls[1]).await;
    for (series, expected) in [
        ("mcp_refusals_total{kind=\"invalid_token\"}", 1.0),
        ("mcp_refusals_total{kind=\"no_token\"}", 1.0),
        (
            "mcp_token_verification_failures_total{reason=\"malformed\"}",
            1.0,
        ),
    ] {
        assert_eq!(value(&m, series), expected, "{series} in\n{m}");
    }
    let ok_calls: f64 = m
        .lines()
        .filter(|l| {
            l.starts_with("mcp_http_requests_total{method=\"POST\"") && l.contains("status=\"200\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(ok_calls, 1.0, "one good MCP call in\n{m}");
    assert!(value(&m, "mcp_jwks_fetches") >= 1.0, "{m}");
}
