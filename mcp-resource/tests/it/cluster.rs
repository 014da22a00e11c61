//! Three `authz` replicas on one PostgreSQL database, with rate-limit counters in Redis, and the
//! MCP server in front of them: they behave as one server. Every replica has its own client
//! cache (kept an hour here, and keys reloaded hourly, so only the change notifications can
//! explain what the others see at once), its own key ring and its own listener.
//!
//! PostgreSQL only: replicas need a database shared by processes. Redis at
//! `AUTHZ_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`, started by `scripts/test`).

use std::time::{Duration, Instant};

use authz::config::Config;
use authz::identity::admin;
use authz::keys::KeySwitch;
use authz::state::AppState;
use reqwest::StatusCode;
use serde_json::Value;
use shared::secret::DatabaseUrl;

use crate::support::{Backend, System, initialize};

fn redis_url() -> String {
    std::env::var("AUTHZ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The replicas, in order; the first is the system's own `authz` (the issuer the MCP server
/// trusts).
struct Cluster {
    sys: System,
    nodes: Vec<(String, AppState)>,
}

/// Configuration every replica shares: Redis counters under a prefix of their own (tests run
/// at once and one after another within a minute), long-lived caches.
fn shared_config(c: &mut Config) {
    c.redis_url = Some(DatabaseUrl::new(redis_url()));
    c.redis_prefix = format!("it-{}", shared::crypto::random_id(""));
    c.client_cache_secs = 3600;
    c.key_reload_secs = 3600;
}

async fn cluster(
    tweak: impl FnOnce(&mut Config),
    mcp: impl FnOnce(&mut mcp_resource::Config),
) -> Cluster {
    let mut sys = System::start_tweaked(
        Backend::Postgres,
        |c| {
            shared_config(c);
            tweak(c);
        },
        mcp,
    )
    .await;
    let mut nodes = vec![(sys.authz_url.clone(), sys.authz.clone())];
    for _ in 0..2 {
        nodes.push(sys.replica(|_| {}).await);
    }
    Cluster { sys, nodes }
}

impl Cluster {
    async fn post_token(
        &self,
        node: usize,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .sys
            .http
            .post(format!("{}/token", self.nodes[node % 3].0))
            .form(form);
        if let Some((id, s)) = basic {
            req = req.basic_auth(id, Some(s));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A client-credentials token of the demo service client from `node`.
    async fn service_token(&self, node: usize) -> String {
        let (id, secret) = self.sys.service_secret();
        let (status, body) = self
            .post_token(
                node,
                &[("grant_type", "client_credentials")],
                Some((&id, &secret)),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    fn password_form<'a>(username: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("grant_type", "password"),
            ("client_id", authz::seed::DEMO_CLI_CLIENT),
            ("username", username),
            ("password", password),
        ]
    }

    async fn jwks_kids(&self, node: usize) -> Vec<String> {
        let jwks = self
            .sys
            .get_json(&format!("{}/.well-known/jwks.json", self.nodes[node].0))
            .await;
        let mut kids: Vec<String> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        kids.sort();
        kids
    }

    /// Every replica publishes the same JWKS (polled: the others reload on the notification).
    async fn same_jwks_everywhere(&self) -> Vec<String> {
        within(
            Duration::from_secs(2),
            "every replica publishes the same JWKS",
            || async {
                let first = self.jwks_kids(0).await;
                self.jwks_kids(1).await == first && self.jwks_kids(2).await == first
            },
        )
        .await;
        self.jwks_kids(0).await
    }

    /// The MCP server accepts `token` (an authenticated `initialize`).
    async fn mcp_accepts(&self, token: &str) -> bool {
        self.sys.post(Some(token), &initialize()).await.status() == StatusCode::OK
    }
}

/// Poll `check` every 10 ms until it holds; after `limit`, fail saying `what` did not happen.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Failed sign-ins spread round-robin over the replicas lock the account after the limit: the
/// counter is in the database, counted atomically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_is_counted_across_replicas() {
    let c = cluster(|c| c.browser.login_max_failures = 4, |_| {}).await;
    let good = Cluster::password_form("testuser", "TestPass123!");
    let bad = Cluster::password_form("testuser", "wrong password");
    // Positive control: the right password works (and clears any count).
    assert_eq!(c.post_token(2, &good, None).await.0, StatusCode::OK);
    for i in 0..4 {
        let (status, body) = c.post_token(i, &bad, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "failure {i}: {body}");
        assert_eq!(body["error"], "invalid_grant");
    }
    // Each replica saw at most two failures, under the limit of four; together they locked it.
    for node in 0..3 {
        let (status, body) = c.post_token(node, &good, None).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "locked on replica {node}: {body}"
        );
    }
    c.sys.authz.audit_log.flush().await;
    let kinds: Vec<String> = c
        .sys
        .authz
        .store
        .recent(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.iter().any(|k| k == "login.locked"), "{kinds:?}");
    // Another account is not affected.
    let other = Cluster::password_form("readonly", "ReadOnly123!");
    assert_eq!(c.post_token(1, &other, None).await.0, StatusCode::OK);
}

/// A rate limit is one budget across replicas (Redis): per authenticated client and per client
/// IP, each with its own rate; and the MCP server's per-caller limit, too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_enforced_across_replicas() {
    let c = cluster(
        |c| {
            c.rate_limits.token_per_client = 6;
            c.rate_limits.token = 16;
        },
        |m| {
            m.redis_url = Some(DatabaseUrl::new(redis_url()));
            m.redis_prefix = format!("it-{}", shared::crypto::random_id(""));
            m.rate_per_caller_per_minute = 3;
        },
    )
    .await;
    // Two user tokens for the MCP part (two of the address's sixteen requests).
    let token = c.sys.user_token("testuser").await;
    let someone_else = c.sys.user_token("admin").await;
    let (id, secret) = c.sys.service_secret();
    let cc = [("grant_type", "client_credentials")];
    // Six requests, two per replica: all within the client's budget.
    for i in 0..6 {
        let (status, body) = c.post_token(i, &cc, Some((&id, &secret))).await;
        assert_eq!(status, StatusCode::OK, "request {i}: {body}");
    }
    // The seventh, on any replica, is over it (no replica alone has seen more than two).
    let resp = c
        .sys
        .http
        .post(format!("{}/token", c.nodes[0].0))
        .basic_auth(&id, Some(&secret))
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    // A public client proves nothing, so it has no per-client budget for anyone to exhaust:
    // seven requests (over the six) pass, until the address's budget (16) is spent.
    let other = Cluster::password_form("readonly", "ReadOnly123!");
    for i in 0..7 {
        let (status, body) = c.post_token(i, &other, None).await;
        assert_eq!(status, StatusCode::OK, "public client, request {i}: {body}");
    }
    assert_eq!(
        c.post_token(0, &other, None).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the address's seventeenth request"
    );

    // The MCP server: three calls per caller (sub + client_id), counted in Redis.
    for i in 0..3 {
        assert!(c.mcp_accepts(&token).await, "call {i}");
    }
    let resp = c.sys.post(Some(&token), &initialize()).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(c.mcp_accepts(&someone_else).await, "another caller");
    // Both servers report Redis in their readiness.
    for url in [
        format!("{}/readyz", c.nodes[2].0),
        format!("{}/readyz", c.sys.mcp_base),
    ] {
        let body = c.sys.get_json(&url).await;
        assert_eq!(body["redis"], "up", "{url}: {body}");
    }
}

/// Redis down: rate limits fail open (sign-in keeps working), loudly (counted), and `/readyz`
/// says Redis is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_fails_open_and_is_reported() {
    let mut sys = System::start_with_authz(Backend::Postgres, |c| {
        shared_config(c);
        c.rate_limits.token_per_client = 1;
    })
    .await;
    // Positive control: with Redis up, the second request is over the limit of one.
    let (id, secret) = sys.service_secret();
    let cc = [("grant_type", "client_credentials")];
    let client = sys.http.clone();
    let send = |base: String| {
        let http = client.clone();
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            http.post(format!("{base}/token"))
                .basic_auth(id, Some(secret))
                .form(&cc)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(send(sys.authz_url.clone()).await, StatusCode::OK);
    assert_eq!(
        send(sys.authz_url.clone()).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A replica whose Redis does not answer (nothing listens on port 1).
    let (url, state) = sys
        .replica(|c| c.redis_url = Some(DatabaseUrl::new("redis://127.0.0.1:1")))
        .await;
    for _ in 0..3 {
        assert_eq!(send(url.clone()).await, StatusCode::OK, "fails open");
    }
    let password = Cluster::password_form("testuser", "TestPass123!");
    let resp = sys
        .http
        .post(format!("{url}/token"))
        .form(&password)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "sign-in never fails closed");
    assert!(state.counters.fail_open_count() >= 4);
    let resp = sys.http.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["redis"], "down", "{body}");
    assert_eq!(body["database"], "up");
    let ok = sys.get_json(&format!("{}/readyz", sys.authz_url)).await;
    assert_eq!(ok["status"], "ready", "{ok}");
}

/// `client rotate-secret` on one replica: the old secret fails on the others at once (their
/// caches would have kept it for an hour), the new one works everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_fails_on_every_replica_at_once() {
    let c = cluster(|_| {}, |_| {}).await;
    // Let the replicas' listeners connect: otherwise their first catch-up (which forgets the
    // whole cache), not a notification, could be what drops the old secret.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (id, old) = c.sys.service_secret();
    let cc = [("grant_type", "client_credentials")];
    // Every replica has the client cached with the old secret.
    for node in 0..3 {
        assert_eq!(
            c.post_token(node, &cc, Some((&id, &old))).await.0,
            StatusCode::OK
        );
    }
    let new = admin::rotate_client_secret(
        &*c.nodes[0].1.store,
        &c.nodes[0].1.clients,
        &c.nodes[0].1.events,
        "test",
        &id,
    )
    .await
    .unwrap();
    let rotated = Instant::now();
    for node in 1..3 {
        within(Duration::from_secs(1), "the old secret refused", || async {
            let (status, body) = c.post_token(node, &cc, Some((&id, &old))).await;
            status == StatusCode::UNAUTHORIZED && body["error"] == "invalid_client"
        })
        .await;
    }
    println!(
        "old secret refused on the other replicas {} ms after the rotation",
        rotated.elapsed().as_millis()
    );
    for node in 0..3 {
        let (status, body) = c.post_token(node, &cc, Some((&id, new.expose()))).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "new secret on replica {node}: {body}"
        );
    }
}

/// `keys rotate --now` on one replica: within a second the others sign with the new key, every
/// replica publishes the same JWKS and the MCP server accepts the new tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reaches_every_replica_within_a_second() {
    let c = cluster(|_| {}, |_| {}).await;
    let before = c.service_token(1).await;
    assert!(c.mcp_accepts(&before).await);
    let alg = c.nodes[0].1.config.signing_alg;
    let (kid, _) = c.nodes[0]
        .1
        .key_admin()
        .rotate_keys("test", alg, KeySwitch::Now)
        .await
        .unwrap();
    assert_ne!(kid, kid_of(&before));
    let rotated = Instant::now();
    for node in [1, 2] {
        within(
            Duration::from_secs(1),
            "the other replicas sign with the new key",
            || async { kid_of(&c.service_token(node).await) == kid },
        )
        .await;
        // An emergency switch skips pre-publication: the MCP server learns the key from the
        // first token that names it, refetching at most once a second.
        within(
            Duration::from_millis(1500),
            "the MCP server accepts it",
            || async { c.mcp_accepts(&c.service_token(node).await).await },
        )
        .await;
    }
    println!(
        "new kid on every replica {} ms after the rotation",
        rotated.elapsed().as_millis()
    );
    let kids = c.same_jwks_everywhere().await;
    assert!(
        kids.contains(&kid) && kids.contains(&kid_of(&before)),
        "{kids:?}"
    );
    assert!(
        c.mcp_accepts(&before).await,
        "the old key's tokens still verify"
    );
}

/// One refresh family rotated on a different replica each time; then the same token presented
/// to all three at once: exactly one wins and the reuse revokes the family.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_family_rotates_across_replicas_and_concurrent_reuse_is_caught() {
    let c = cluster(|c| c.refresh_retry_grace_secs = 0, |_| {}).await;
    let (status, body) = c
        .post_token(0, &Cluster::password_form("testuser", "TestPass123!"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let client = authz::seed::DEMO_CLI_CLIENT;
    for step in 1..=6 {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", refresh.as_str()),
        ];
        let (status, body) = c.post_token(step, &form, None).await;
        assert_eq!(status, StatusCode::OK, "rotation {step}: {body}");
        assert!(c.mcp_accepts(body["access_token"].as_str().unwrap()).await);
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
    }
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client),
        ("refresh_token", refresh.as_str()),
    ];
    let (a, b, d) = tokio::join!(
        c.post_token(0, &form, None),
        c.post_token(1, &form, None),
        c.post_token(2, &form, None)
    );
    let results = [a, b, d];
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {results:?}");
    for (s, body) in results.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!(*s, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
    }
    // The reuse revoked the family: the winner's successor is dead too, on every replica.
    let successor = winners[0]["refresh_token"].as_str().unwrap();
    for node in 0..3 {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", successor),
        ];
        let (status, body) = c.post_token(node, &form, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "replica {node}: {body}");
    }
}

/// The rotation schedule, driven by the injected clock: the next key is published on every
/// replica at least the pre-publication window before it signs (one key, though all three
/// replicas ran the schedule at once), tokens switch to it on time, the old key stays published
/// while its tokens live and then leaves, and the MCP server refuses no valid token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_rotation_prepublishes_switches_and_retires_without_refusing_a_token() {
    let c = cluster(
        |c| {
            c.key_rotation_days = 1;
            c.key_prepublish_secs = 120;
        },
        |_| {},
    )
    .await;
    let clock = &c.sys.clock;
    let k1 = c.nodes[0].1.keys.current().active.kid().to_owned();
    let reload_all = || async {
        let (a, b, d) = tokio::join!(
            c.nodes[0].1.reload_keys(),
            c.nodes[1].1.reload_keys(),
            c.nodes[2].1.reload_keys()
        );
        a.unwrap();
        b.unwrap();
        d.unwrap();
    };
    // Just before the window opens: nothing scheduled.
    clock.advance(86_400 - 120 - 1);
    reload_all().await;
    assert_eq!(c.same_jwks_everywhere().await, vec![k1.clone()]);
    let a = c.service_token(0).await;
    assert!(c.mcp_accepts(&a).await);

    // The window opens: all three replicas run the schedule at once; one next key results.
    clock.advance(1);
    reload_all().await;
    let kids = c.same_jwks_everywhere().await;
    assert_eq!(kids.len(), 2, "one next key published: {kids:?}");
    let k2 = kids.iter().find(|k| **k != k1).unwrap().clone();
    c.sys.authz.audit_log.flush().await;
    let scheduled = c
        .sys
        .authz
        .store
        .recent(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "key.rotated")
        .count();
    assert_eq!(scheduled, 1, "one scheduled rotation recorded");
    // Still signing with the old key everywhere, and the MCP server, refreshing its JWKS on its
    // own schedule meanwhile, learns the next key before any token carries it.
    for node in 0..3 {
        assert_eq!(kid_of(&c.service_token(node).await), k1);
    }
    c.sys.mcp.verifier.refresh(true).await.unwrap();
    let fetches = c.sys.mcp.verifier.jwks_fetches();
    let b = c.service_token(2).await;
    assert!(c.mcp_accepts(&b).await);

    // The switch: every replica signs with the next key from its time on.
    clock.advance(119);
    assert_eq!(kid_of(&c.service_token(1).await), k1, "not before its time");
    clock.advance(1);
    for node in 0..3 {
        let t = c.service_token(node).await;
        assert_eq!(kid_of(&t), k2, "replica {node} switched");
        assert!(c.mcp_accepts(&t).await, "new key's token accepted");
    }
    assert_eq!(
        c.sys.mcp.verifier.jwks_fetches(),
        fetches,
        "the MCP server needed no refetch: the key was pre-published"
    );
    assert!(
        c.mcp_accepts(&b).await,
        "a token of the old key, still valid"
    );
    // Storage promotes it; the old key stays published while its tokens may live.
    reload_all().await;
    assert_eq!(c.same_jwks_everywhere().await.len(), 2);
    assert!(c.mcp_accepts(&b).await);

    // After the old key's tokens have expired, housekeeping retires it from every JWKS; the
    // next rotation is a day away.
    clock.advance(c.nodes[0].1.config.max_signed_token_ttl() + 61);
    authz::housekeeping(&c.nodes[1].1).await.unwrap();
    reload_all().await;
    assert_eq!(c.same_jwks_everywhere().await, vec![k2.clone()]);
    let t = c.service_token(0).await;
    assert_eq!(kid_of(&t), k2);
    assert!(c.mcp_accepts(&t).await);
}
