//! Store transactions under concurrent writers (CI failure after issue 24).
//!
//! A SQLite transaction begun with a deferred `BEGIN` that reads and then writes fails at its
//! first write with `SQLITE_BUSY` ("database is locked") *at once, without waiting for the busy
//! timeout* when another connection committed after its read: WAL mode cannot upgrade a stale
//! read snapshot. `delete_client` (read the registration kind, delete, adjust the counter) failed
//! that way in CI while a concurrent request wrote. Every store transaction now takes the write
//! lock when it begins (`shared::db::begin_write`).

use authz::identity::admin;
use authz::store::AuthMethod;
use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(read_then_write_transactions_survive_concurrent_writers);

const CLIENTS: usize = 24;

async fn read_then_write_transactions_survive_concurrent_writers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..CLIENTS {
        app.code_client(&format!("old-{i}"), AuthMethod::None, "notes:read")
            .await;
    }
    // Deletions (read, then write) race each other and creations on every pooled connection.
    let deletes: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let state = app.state.clone();
            tokio::spawn(async move {
                admin::delete_client(
                    &*state.store,
                    &state.clients,
                    &state.events,
                    "test",
                    &format!("old-{i}"),
                )
                .await
            })
        })
        .collect();
    for i in 0..CLIENTS {
        app.code_client(&format!("new-{i}"), AuthMethod::None, "notes:read")
            .await;
    }
    let mut failures = Vec::new();
    for d in deletes {
        if let Err(e) = d.await.unwrap() {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "deletions failed: {failures:?}");
    // Positive control: every deletion and every creation took effect.
    let old = app
        .sql_count("SELECT COUNT(*) FROM clients WHERE id LIKE 'old-%'")
        .await;
    let new = app
        .sql_count("SELECT COUNT(*) FROM clients WHERE id LIKE 'new-%'")
        .await;
    assert_eq!((old, new), (0, CLIENTS as i64));
}
