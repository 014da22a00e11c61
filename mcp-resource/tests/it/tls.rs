//! Native TLS end to end: `authz` serving https (an https issuer, no proxy) and the real
//! `mcp-resource` binary serving https and verifying tokens through the issuer's https JWKS;
//! then both certificates swapped — `authz` reloaded, the binary by SIGHUP — and served without
//! a restart (a client trusting only the new certificate gets through, one trusting only the old
//! one no longer does).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use authz::clock::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;
use shared::secret::DatabaseUrl;
use testkit::https::self_signed_files;

use crate::support::{Backend, initialize};

fn trusting(pem: &std::path::Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pem).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

use testkit::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_servers_serve_https_and_swap_certificates_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert1, key1) = self_signed_files(dir.path(), "one");
    let (cert2, key2) = self_signed_files(dir.path(), "two");
    let (live_cert, live_key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    std::fs::copy(&cert1, &live_cert).unwrap();
    std::fs::copy(&key1, &live_key).unwrap();

    // authz over https, in process.
    let a_port = free_port();
    let m_port = free_port();
    let issuer = format!("https://127.0.0.1:{a_port}");
    let resource = format!("https://127.0.0.1:{m_port}/mcp");
    let db = testkit::TestDb::new(Backend::Sqlite, dir.path(), "authz").await;
    let config = authz::config::Config {
        issuer: issuer.clone(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(DatabaseUrl::new(db.url.clone())),
        default_resource: resource.clone(),
        argon2: authz::config::Argon2Config {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let state = authz::build_state(config, clock).await.unwrap();
    authz::seed::seed_demo(&state).await.unwrap();
    let files = shared::tls::TlsFiles::load(&live_cert, &live_key).unwrap();
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", a_port))
        .await
        .unwrap();
    let tls = shared::tls::TlsListener::new(tcp, files.clone()).unwrap();
    let served = state.clone();
    let authz_task = tokio::spawn(async move {
        authz::serve_on(served, tls, std::future::pending())
            .await
            .unwrap();
    });

    // The real mcp-resource binary over https, trusting the issuer's certificate.
    let log = dir.path().join("mcp.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-resource"))
        .env("MCP_BIND", format!("127.0.0.1:{m_port}"))
        .env("MCP_ISSUER", &issuer)
        .env("MCP_RESOURCE_URL", &resource)
        .env("MCP_DATA_DIR", dir.path())
        .env(
            "MCP_DATABASE_URL",
            format!("sqlite://{}/mcp.db", dir.path().display()),
        )
        .env("MCP_TLS_CERT", &live_cert)
        .env("MCP_TLS_KEY", &live_key)
        .env("MCP_EXTRA_ROOTS", &cert1)
        .env("MCP_SSF_POLL_SECS", "0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let old = trusting(&cert1);
    let url = format!("https://127.0.0.1:{m_port}/healthz");
    testkit::wait_ready(&old, &url, Some(&log)).await;

    // An https issuer end to end: discovery, a token, and the MCP server verifying it through
    // the https JWKS.
    let meta: Value = old
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], issuer.as_str());
    assert!(meta["jwks_uri"].as_str().unwrap().starts_with("https://"));
    let t: Value = old
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", authz::seed::DEMO_CLI_CLIENT),
            ("username", "testuser"),
            ("password", "TestPass123!"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{t}"))
        .to_owned();
    let call = |client: reqwest::Client| {
        let (resource, token) = (resource.clone(), token.clone());
        async move {
            client
                .post(&resource)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(initialize().to_string())
                .send()
                .await
        }
    };
    assert_eq!(call(old.clone()).await.unwrap().status(), StatusCode::OK);
    let new = trusting(&cert2);
    assert!(
        call(new.clone()).await.is_err(),
        "the second certificate is not served yet"
    );

    // Swap the files; reload authz, SIGHUP the binary. Same processes, new certificates.
    std::fs::copy(&cert2, &live_cert).unwrap();
    std::fs::copy(&key2, &live_key).unwrap();
    files.reload().unwrap();
    let pid = child.id().unwrap().to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut swapped = false;
    for _ in 0..100 {
        if call(new.clone())
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        swapped,
        "the new certificate is served after SIGHUP:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    // A new connection (open ones keep the certificate they started with).
    let old = trusting(&cert1);
    assert!(
        call(old.clone()).await.is_err(),
        "the old certificate is gone"
    );
    let r = new
        .get(format!("{issuer}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "authz serves the new certificate after its reload"
    );
    assert!(
        old.get(format!("{issuer}/.well-known/jwks.json"))
            .send()
            .await
            .is_err()
    );
    assert!(child.try_wait().unwrap().is_none(), "never restarted");
    child.start_kill().unwrap();
    authz_task.abort();
}
