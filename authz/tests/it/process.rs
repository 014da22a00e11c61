//! The real `authz` binary as a separate process: `kill -9` under refresh load loses no
//! acknowledged write and corrupts nothing; and a full flow at debug log level never writes a
//! password, secret, code or token to the log.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use authz::identity::admin::Policy;
use authz::store::ClientSettings;
use authz::store::{AuthMethod, GrantType};
use serde_json::Value;
use shared::secret::Password;
use testkit::agent::FormAgent;
use testkit::both_backends;
use tokio::process::{Child, Command};

use crate::support::{Backend, password_tokens, pkce, query};

both_backends!(
    kill_dash_nine_under_refresh_load_loses_no_acknowledged_token,
    logs_never_contain_passwords_secrets_codes_or_tokens,
    sigint_lets_in_flight_requests_finish,
    json_logs_and_every_response_carry_the_request_id,
);

const PW: &str = "correct horse battery staple";

#[derive(Debug)]
struct Proc {
    env: Vec<(String, String)>,
    base: String,
}

impl Proc {
    /// Prepare a database (user "alice", public client "cli" with password + refresh +
    /// authorization code) and the environment for the binary.
    async fn prepare(backend: Backend, dir: &std::path::Path, db: &testkit::TestDb) -> Self {
        Self::prepare_with(backend, dir, db, false).await
    }

    /// `production_hash`: hash alice's password with the default (OWASP) argon2 cost, so each
    /// login keeps the server busy for a while.
    async fn prepare_with(
        backend: Backend,
        dir: &std::path::Path,
        db: &testkit::TestDb,
        production_hash: bool,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let env: Vec<(String, String)> = [
            ("AUTHZ_BIND", format!("127.0.0.1:{port}")),
            ("AUTHZ_ISSUER", base.clone()),
            ("AUTHZ_DATA_DIR", dir.display().to_string()),
            ("AUTHZ_DATABASE_URL", db.url.clone()),
            ("AUTHZ_ARGON2_M_COST", "256".into()),
            ("AUTHZ_ARGON2_T_COST", "1".into()),
            ("AUTHZ_RATE_LIMITS_TOKEN", "0".into()),
            ("AUTHZ_RATE_LIMITS_LOGIN", "0".into()),
            // The retry window must outlast kill, inspection and restart on a slow machine.
            ("AUTHZ_REFRESH_RETRY_GRACE_SECS", "30".into()),
            ("AUTHZ_DEFAULT_RESOURCE", crate::support::MCP.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut config = authz::config::Config::load(None, |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        config.db_max_connections = 2;
        if production_hash {
            config.argon2 = authz::config::Argon2Config::default();
        }
        let state = authz::build_state(config, Arc::new(authz::clock::SystemClock))
            .await
            .unwrap();
        // alice, and u0…u11 for concurrent sign-ins (one user's concurrent attempts share
        // the lockout budget).
        for name in std::iter::once("alice".to_owned()).chain((0..12).map(|i| format!("u{i}"))) {
            authz::identity::admin::add_user(
                state.identity(),
                "test",
                &name,
                &Password::new(PW),
                vec!["user".into()],
                Policy::Enforce,
            )
            .await
            .unwrap();
        }
        authz::identity::admin::add_client(
            state.client_services(),
            "test",
            Some("cli".into()),
            ClientSettings {
                name: "cli".into(),
                auth_method: AuthMethod::None,
                grant_types: vec![
                    GrantType::Password,
                    GrantType::RefreshToken,
                    GrantType::AuthorizationCode,
                ],
                redirect_uris: vec![crate::support::CB.into()],
                scopes: shared::ScopeSet::parse("notes:read offline_access openid").unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        state.audit_log.flush().await;
        let _ = backend;
        Self { env, base }
    }

    async fn start(&self, log_level: &str, log: Option<&std::path::Path>) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authz"));
        cmd.arg("serve")
            .envs(self.env.iter().cloned())
            .env("AUTHZ_LOG", log_level)
            .kill_on_drop(true);
        cmd.stdout(Stdio::null());
        match log {
            Some(p) => cmd.stderr(std::fs::File::create(p).unwrap()),
            None => cmd.stderr(Stdio::null()),
        };
        let child = cmd.spawn().unwrap();
        let url = format!("{}/healthz", self.base);
        testkit::wait_ready(&reqwest::Client::new(), &url, log).await;
        child
    }
}

async fn refresh(
    http: &reqwest::Client,
    base: &str,
    rt: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    http.post(format!("{base}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "cli"),
            ("refresh_token", rt),
        ])
        .send()
        .await
}

/// Crash safety: under continuous refresh rotation, SIGKILL the server and restart it.
/// Every token a client received (acknowledged) is still in the database and no family was
/// revoked. After the restart every client recovers with the token it holds: an idle client's
/// is rotated once (presenting it again inside the retry window answers the same successor); a
/// client whose request was in flight — the write committed, the answer lost — presents its
/// old token again and, inside the retry window, gets the successor that was committed (issue
/// 11: before the window it was indistinguishable from a replay and the user had to sign in
/// again). The database passes its integrity check.
async fn kill_dash_nine_under_refresh_load_loses_no_acknowledged_token(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::TestDb::new(backend, dir.path(), "authz").await;
    let p = Proc::prepare(backend, dir.path(), &db).await;
    let mut child = p.start("warn", None).await;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (http, base, stop) = (http.clone(), p.base.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let t = password_tokens(&http, &base, &format!("u{i}"), PW).await;
            let mut held = t["refresh_token"].as_str().unwrap().to_owned();
            let mut acknowledged = vec![held.clone()];
            let mut in_flight = false;
            while !stop.load(Ordering::SeqCst) {
                in_flight = true;
                match refresh(&http, &base, &held).await {
                    Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                        Ok(v) => {
                            held = v["refresh_token"].as_str().unwrap().to_owned();
                            acknowledged.push(held.clone());
                            in_flight = false;
                        }
                        Err(_) => break,
                    },
                    Ok(r) => panic!("client {i}: refresh refused under load: {}", r.status()),
                    Err(_) => break,
                }
                // Clients pause now and then, so some are idle at the kill.
                if i % 2 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(15)).await;
                }
            }
            (held, acknowledged, in_flight)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    child.start_kill().unwrap(); // SIGKILL
    child.wait().await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let total: usize = results.iter().map(|r| r.1.len()).sum();
    assert!(total > 20, "load ran: {total} tokens acknowledged");

    // Inspect the database the killed process left behind.
    let (pool, _) = shared::db::connect(&db.url, 2).await.unwrap();
    if backend == Backend::Sqlite {
        let ok: String = sqlx::Row::get(
            &sqlx::query("PRAGMA integrity_check")
                .fetch_one(&pool)
                .await
                .unwrap(),
            0,
        );
        assert_eq!(ok, "ok");
    }
    let mut state_of = HashMap::new();
    for (_, acknowledged, _) in &results {
        for t in acknowledged {
            let row = sqlx::query(
                "SELECT used_at, revoked_at, family_id FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(shared::crypto::sha256_hex(t))
            .fetch_optional(&pool)
            .await
            .unwrap();
            let row = row.expect("an acknowledged refresh token was lost");
            let used: Option<i64> = sqlx::Row::get(&row, "used_at");
            let revoked: Option<i64> = sqlx::Row::get(&row, "revoked_at");
            let family: String = sqlx::Row::get(&row, "family_id");
            assert!(revoked.is_none(), "no family was revoked by the crash");
            state_of.insert(t.clone(), (used.is_some(), family));
        }
    }
    pool.close().await;

    // Restart on the same database.
    let _child = p.start("warn", None).await;
    let mut recovered_in_flight = 0;
    for (held, _, in_flight) in &results {
        let (used, _) = state_of[held].clone();
        if used {
            assert!(*in_flight, "an idle client's token was consumed");
        }
        // Every client carries on with what it holds: rotated once…
        let first = refresh(&http, &p.base, held).await.unwrap();
        assert_eq!(
            first.status(),
            200,
            "the held token works after the restart"
        );
        let first: Value = first.json().await.unwrap();
        // … and asking again inside the window is answered with the same successor.
        let again = refresh(&http, &p.base, held).await.unwrap();
        assert_eq!(again.status(), 200, "a retry inside the window");
        let again: Value = again.json().await.unwrap();
        assert_eq!(
            first["refresh_token"], again["refresh_token"],
            "one successor"
        );
        let next = first["refresh_token"].as_str().unwrap();
        let after = refresh(&http, &p.base, next).await.unwrap();
        assert_eq!(after.status(), 200, "the family is alive");
        if used {
            recovered_in_flight += 1;
        }
    }
    assert!(
        results.iter().any(|r| !state_of[&r.0].0),
        "some clients were idle at the kill"
    );
    eprintln!("clients whose answer was lost and who recovered: {recovered_in_flight}");
}

/// No secret in the logs, at debug level, through every kind of flow.
async fn logs_never_contain_passwords_secrets_codes_or_tokens(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::TestDb::new(backend, dir.path(), "authz").await;
    let p = Proc::prepare(backend, dir.path(), &db).await;
    let log = dir.path().join("authz.log");
    let child = p.start("debug", Some(&log)).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut secrets: Vec<String> = vec![PW.to_owned(), "wrong password 123".to_owned()];
    // Password grant (good and bad), refresh, registration with a secret, code flow, userinfo.
    let t = password_tokens(&http, &p.base, "alice", PW).await;
    let _ = http
        .post(format!("{}/token", p.base))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", "alice"),
            ("password", "wrong password 123"),
        ])
        .send()
        .await
        .unwrap();
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let r: Value = http
        .post(format!("{}/token", p.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "cli"),
            ("refresh_token", rt.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.extend(
        [
            t["access_token"].clone(),
            t["refresh_token"].clone(),
            r["access_token"].clone(),
            r["refresh_token"].clone(),
        ]
        .iter()
        .map(|v| v.as_str().unwrap().to_owned()),
    );
    let reg: Value = http
        .post(format!("{}/register", p.base))
        .json(&serde_json::json!({ "redirect_uris": ["https://a.example/cb"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.push(reg["client_secret"].as_str().unwrap().to_owned());
    let (verifier, challenge) = pkce();
    let cb: String = form_urlencoded::byte_serialize(crate::support::CB.as_bytes()).collect();
    let url = format!(
        "{}/authorize?response_type=code&client_id=cli&redirect_uri={cb}&scope=openid%20notes:read&state=s&code_challenge={challenge}&code_challenge_method=S256",
        p.base
    );
    let agent = FormAgent::new();
    let loc = agent
        .sign_in(&p.base, &url, "alice", PW, "approve")
        .await
        .unwrap();
    let code = query(&loc)["code"].clone();
    let tokens: Value = http
        .post(format!("{}/token", p.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "cli"),
            ("code", code.as_str()),
            ("redirect_uri", crate::support::CB),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    secrets.extend([
        code,
        verifier,
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["id_token"].as_str().unwrap().to_owned(),
    ]);
    if let Some(s) = agent.cookie("authz_session") {
        secrets.push(s);
    }
    let _ = http
        .get(format!("{}/userinfo", p.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    drop(child);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 5, "debug logging was on:\n{text}");
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()),
            "the log contains a secret ({}…)",
            &s[..s.len().min(8)]
        );
    }
}

/// Graceful shutdown: SIGINT while password grants are in flight; every request that reached
/// the server still gets its token, then the process exits cleanly.
async fn sigint_lets_in_flight_requests_finish(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::TestDb::new(backend, dir.path(), "authz").await;
    let p = Proc::prepare_with(backend, dir.path(), &db, true).await;
    let mut child = p.start("warn", None).await;
    let pid = child.id().unwrap();
    let http = reqwest::Client::new();
    let mut inflight = Vec::new();
    for i in 0..12 {
        let (http, base) = (http.clone(), p.base.clone());
        inflight.push(tokio::spawn(async move {
            let user = format!("u{i}");
            http.post(format!("{base}/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", "cli"),
                    ("username", user.as_str()),
                    ("password", PW),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    // Twelve production-cost argon2 verifications on two cores take far longer than this.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut served = 0;
    for t in inflight {
        match t.await.unwrap() {
            Ok(200) => served += 1,
            Ok(other) => panic!("in-flight request answered {other}"),
            // Requests that had not reached the server before it stopped listening are
            // refused at connect time: never a half-done answer.
            Err(e) => assert!(e.is_connect(), "in-flight request broken: {e}"),
        }
    }
    assert!(served > 1, "requests were in flight at the signal");
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit: {status}");
}

/// `AUTHZ_LOG_FORMAT=json`: every line is one JSON object; each request's lines carry its
/// request id, which is also returned as `X-Request-Id` (the caller's own when it is plain and
/// short, else a fresh one).
async fn json_logs_and_every_response_carry_the_request_id(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::TestDb::new(backend, dir.path(), "authz").await;
    let mut p = Proc::prepare(backend, dir.path(), &db).await;
    p.env.push(("AUTHZ_LOG_FORMAT".into(), "json".into()));
    let log = dir.path().join("authz.log");
    let child = p.start("info", Some(&log)).await;
    let http = reqwest::Client::new();
    let discovery = format!("{}/.well-known/openid-configuration", p.base);
    let r = http
        .get(&discovery)
        .header("x-request-id", "trace-abc.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-request-id"],
        "trace-abc.1",
        "a plain id is kept"
    );
    // Not plain: replaced by a fresh id; none: one is made.
    let r = http
        .get(&discovery)
        .header("x-request-id", "evil\"}{ id")
        .send()
        .await
        .unwrap();
    let fresh = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(fresh.len() >= 16 && !fresh.contains(' '), "{fresh}");
    let r = http
        .post(format!("{}/token", p.base))
        .form(&[("grant_type", "password"), ("client_id", "cli")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let other = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(other, fresh, "each request its own id");
    drop(child);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access = |id: &str| {
        lines
            .iter()
            .find(|l| l["target"] == "access" && l["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}:\n{text}"))
            .clone()
    };
    let first = access("trace-abc.1");
    assert_eq!(
        first["fields"]["route"],
        "/.well-known/openid-configuration"
    );
    assert_eq!(first["fields"]["status"], 200);
    assert_eq!(first["fields"]["method"], "GET");
    assert_eq!(access(&other)["fields"]["status"], 400);
    access(&fresh);
    assert!(!text.contains("evil"), "a refused id is never logged");
}
