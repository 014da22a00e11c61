//! Test support for the integration tests of both servers: a fresh database per test, on SQLite
//! (a file in the test's temp dir) or PostgreSQL (a new schema, selected with `search_path` and
//! dropped afterwards), and `both_backends!` to run one test body on each; with the `system`
//! feature, `system::System` starts both servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// A cookie-keeping HTTP agent that fills in the login and consent forms like a browser.
pub mod agent;
/// A local https host with a certificate made for the test (metadata documents, JWKS).
pub mod https;
/// A real OpenLDAP directory (`slapd`) for one test, seeded from LDIF, with TLS.
pub mod ldap;
/// Both servers started for one test.
#[cfg(feature = "system")]
pub mod system;
/// A W3C WebDriver client for end-to-end tests in headless Chromium.
pub mod webdriver;

use std::path::Path;

/// A loopback port free a moment ago (for a server the test starts as another process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PKCE pair (RFC 7636 §4.1–4.2): a random verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = shared::crypto::random_secret();
    let challenge = shared::crypto::s256(&verifier);
    (verifier, challenge)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `both_backends!(name, …)` makes `name::sqlite` and `name::postgres` tests from
/// `async fn name(backend: testkit::Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
            }
        }
    )*};
}

/// The PostgreSQL server tests use (`AUTHZ_TEST_PG_URL`, default the local `test` database).
pub fn pg_admin_url() -> String {
    std::env::var("AUTHZ_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database for one test; a PostgreSQL schema is dropped when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    schema: Option<String>,
}

impl TestDb {
    /// A fresh database named `name` (SQLite: `<dir>/<name>.db`).
    pub async fn new(backend: Backend, dir: &Path, name: &str) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}/{name}.db", dir.display()),
                schema: None,
            },
            Backend::Postgres => {
                let id = shared::crypto::random_id("")
                    .to_lowercase()
                    .replace('-', "_");
                let schema = format!("it_{id}");
                let admin = sqlx::PgPool::connect(&pg_admin_url())
                    .await
                    .expect("PostgreSQL is not reachable (scripts/test starts it)");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let base = pg_admin_url();
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Self {
                    url,
                    schema: Some(schema),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(schema) = self.schema.take() else {
            return;
        };
        // Drop cannot await: use a short-lived runtime on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&pg_admin_url()).await {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// Wait until `url` answers 200 (a spawned server's `/healthz` or `/readyz`), polling every
/// 50 ms for up to 20 s; on timeout, panic with the last lines of the server's `log`. The one
/// readiness wait of the tests that start the binaries as processes.
pub async fn wait_ready(http: &reqwest::Client, url: &str, log: Option<&Path>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if http.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let tail = log.map(|p| log_tail(p, 40)).unwrap_or_default();
    panic!("{url} did not answer 200 within 20 s:\n{tail}");
}

/// The last `lines` lines of a log file (empty if it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
