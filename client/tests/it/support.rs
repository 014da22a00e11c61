//! Both servers, started for one test: `authz` (demo accounts and clients seeded) and
//! `mcp-resource`, sharing a temp data dir (so the MCP server finds its client secret).

use std::sync::Arc;

pub use testkit::Backend;

pub struct Servers {
    pub authz_url: String,
    pub mcp_url: String,
    _dir: tempfile::TempDir,
    _dbs: (testkit::TestDb, testkit::TestDb),
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    pub async fn start(backend: Backend, tweak: impl FnOnce(&mut authz::config::Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let m = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authz_url = format!("http://{}", a.local_addr().unwrap());
        let mcp_url = format!("http://{}/mcp", m.local_addr().unwrap());
        let a_db = testkit::TestDb::new(backend, dir.path(), "authz").await;
        let m_db = testkit::TestDb::new(backend, dir.path(), "mcp").await;
        let mut config = authz::config::Config {
            issuer: authz_url.clone(),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(shared::secret::DatabaseUrl::new(a_db.url.clone())),
            db_max_connections: 5,
            default_resource: mcp_url.clone(),
            argon2: authz::config::Argon2Config {
                m_cost: 256,
                t_cost: 1,
                p_cost: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        tweak(&mut config);
        let state = authz::build_state(config, Arc::new(authz::clock::SystemClock))
            .await
            .unwrap();
        authz::seed::seed_demo(&state).await.unwrap();
        let s = state.clone();
        let mut tasks = vec![tokio::spawn(async move {
            authz::serve(s, a, std::future::pending()).await.unwrap();
        })];
        let mcfg = mcp_resource::Config {
            issuer: authz_url.clone(),
            resource_url: mcp_url.clone(),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(shared::secret::DatabaseUrl::new(m_db.url.clone())),
            ..Default::default()
        };
        let mcp = mcp_resource::build_state(mcfg).await.unwrap();
        tasks.push(tokio::spawn(async move {
            mcp_resource::serve(mcp, m, std::future::pending())
                .await
                .unwrap();
        }));
        Self {
            authz_url,
            mcp_url,
            _dir: dir,
            _dbs: (a_db, m_db),
            tasks,
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
