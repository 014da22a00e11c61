//! Migrations keep what is stored: a database written by the schema before issue 11 (URI
//! lists newline-joined, consents without a resource) reads back the same after the server's
//! own migrations, on both engines.

use std::path::PathBuf;

use authz::store::{ClientStore, ConsentStore, RefreshTokenStore};
use testkit::both_backends;

use crate::support::Backend;

both_backends!(uri_lists_and_consents_survive_the_move_to_json);

async fn uri_lists_and_consents_survive_the_move_to_json(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = testkit::TestDb::new(backend, dir.path(), "authz").await;
    // Only the migrations from before 0003, as an older server applied them.
    let engine = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let all = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations/authz")
        .join(engine);
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    for f in ["0001_init.sql", "0002_browser_flow.sql"] {
        std::fs::copy(all.join(f), old.join(f)).unwrap();
    }
    let (pool, _) = shared::db::connect(&db.url, 2).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    for sql in [
        "INSERT INTO users (id, username, password_hash, roles, created_at, updated_at) \
         VALUES ('usr_1', 'alice', 'x', 'user', 1, 1)",
        "INSERT INTO clients (id, name, auth_method, grant_types, redirect_uris, scopes, \
         resources, created_at, updated_at, post_logout_redirect_uris) VALUES ('legacy', 'L', \
         'none', 'authorization_code refresh_token', \
         'https://a.example/cb' || chr(10) || 'http://127.0.0.1/callback', 'notes:read', \
         'http://127.0.0.1:8081/mcp' || chr(10) || 'https://api.example.com/', 1, 1, \
         'https://a.example/out')",
        "INSERT INTO clients (id, name, auth_method, grant_types, redirect_uris, scopes, \
         resources, created_at, updated_at) VALUES ('bare', 'B', 'client_secret_basic', \
         'client_credentials', '', 'notes:read', 'http://127.0.0.1:8081/mcp', 1, 1)",
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, \
         resources, auth_time, created_at, expires_at, family_expires_at, sid) VALUES \
         ('h1', 'f1', 'legacy', 'usr_1', 'notes:read', \
         'http://127.0.0.1:8081/mcp' || chr(10) || 'https://api.example.com/', 1, 1, 9, 9, 's1')",
        "INSERT INTO consents (user_id, client_id, scope, updated_at) \
         VALUES ('usr_1', 'legacy', 'notes:read', 1)",
    ] {
        // SQLite spells chr() as char().
        let sql = match backend {
            Backend::Sqlite => sql.replace("chr(10)", "char(10)"),
            Backend::Postgres => sql.to_owned(),
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    // The server migrates on open.
    let config = authz::config::Config {
        database_url: Some(shared::secret::DatabaseUrl::new(db.url.clone())),
        ..authz::config::Config::for_tests(dir.path())
    };
    let store = authz::open_store(&config).await.unwrap();
    let c = store.get_client("legacy").await.unwrap().unwrap();
    assert_eq!(
        c.redirect_uris,
        ["https://a.example/cb", "http://127.0.0.1/callback"]
    );
    assert_eq!(c.post_logout_redirect_uris, ["https://a.example/out"]);
    assert_eq!(
        c.resources,
        ["http://127.0.0.1:8081/mcp", "https://api.example.com/"]
    );
    let bare = store.get_client("bare").await.unwrap().unwrap();
    assert!(bare.redirect_uris.is_empty() && bare.post_logout_redirect_uris.is_empty());
    assert_eq!(bare.resources, ["http://127.0.0.1:8081/mcp"]);
    let rt = store.get_refresh_token("h1").await.unwrap().unwrap();
    assert_eq!(
        rt.resources,
        ["http://127.0.0.1:8081/mcp", "https://api.example.com/"]
    );
    // A consent from before has no resource: kept, matching no request (asked again once).
    assert_eq!(
        store
            .get_consent("usr_1", "legacy", "")
            .await
            .unwrap()
            .as_deref(),
        Some("notes:read")
    );
    assert!(
        store
            .get_consent("usr_1", "legacy", "http://127.0.0.1:8081/mcp")
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}
