//! Secure notes: owner-only, validated, encrypted at rest, readable through the tools.

use serde_json::{Value, json};

use crate::support::{Backend, System, call_tool, text};
use testkit::both_backends;

both_backends!(notes_are_private_validated_and_encrypted);

async fn notes_are_private_validated_and_encrypted(backend: Backend) {
    let sys = System::start(backend).await;
    let alice = sys.client(&sys.user_token("testuser").await).await;
    let secret_text = "the launch code is 0000-TOP-SECRET";
    let r = call_tool(
        &alice,
        "create_secure_note",
        json!({"title": "Launch plan", "content": secret_text}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let id = serde_json::from_str::<Value>(&text(&r)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let listed: Value = serde_json::from_str(&text(
        &call_tool(&alice, "list_secure_notes", json!({})).await,
    ))
    .unwrap();
    assert_eq!(listed["notes"][0]["title"], "Launch plan");
    assert!(
        listed["notes"][0].get("content").is_none(),
        "lists carry titles only"
    );
    let got: Value = serde_json::from_str(&text(
        &call_tool(&alice, "get_secure_note", json!({"id": id})).await,
    ))
    .unwrap();
    assert_eq!(got["content"], secret_text);

    // Another user cannot read it, and cannot tell it exists.
    let bob = sys.client(&sys.user_token("admin").await).await;
    let r = call_tool(&bob, "get_secure_note", json!({"id": id})).await;
    assert_eq!(r.is_error, Some(true));
    let missing = call_tool(&bob, "get_secure_note", json!({"id": "note_doesnotexist"})).await;
    assert_eq!(
        text(&r).replace(&id, "X"),
        text(&missing).replace("note_doesnotexist", "X")
    );
    let listed: Value = serde_json::from_str(&text(
        &call_tool(&bob, "list_secure_notes", json!({})).await,
    ))
    .unwrap();
    assert_eq!(listed["notes"], json!([]));

    // Validation errors are tool errors with a reason, not protocol failures.
    for (args, reason) in [
        (
            json!({"title": "", "content": "x"}),
            "title must not be empty",
        ),
        (json!({"title": "a\nb", "content": "x"}), "single line"),
        (
            json!({"title": "x".repeat(201), "content": "x"}),
            "longer than 200",
        ),
        (
            json!({"title": "ok", "content": "x".repeat(20_001)}),
            "longer than 20000",
        ),
    ] {
        let r = call_tool(&alice, "create_secure_note", args).await;
        assert_eq!(r.is_error, Some(true));
        assert!(text(&r).contains(reason), "{}", text(&r));
    }
    let r = call_tool(&alice, "list_secure_notes", json!({"limit": 0})).await;
    assert_eq!(r.is_error, Some(true));
    // SQL metacharacters are just text.
    let r = call_tool(
        &alice,
        "create_secure_note",
        json!({"title": "x'); DROP TABLE notes;--", "content": "y"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true));

    // At rest: ciphertext only.
    let rows: Vec<(Vec<u8>, Vec<u8>)> = {
        use sqlx::Row;
        sqlx::query("SELECT title_enc, content_enc FROM notes")
            .fetch_all(sys.mcp.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap()))
            .collect()
    };
    assert_eq!(rows.len(), 2);
    for (t, c) in &rows {
        for needle in [
            secret_text.as_bytes(),
            b"Launch plan".as_slice(),
            b"TOP-SECRET".as_slice(),
        ] {
            assert!(!t.windows(needle.len()).any(|w| w == needle));
            assert!(!c.windows(needle.len()).any(|w| w == needle));
        }
    }
    if backend == Backend::Sqlite {
        let mut raw = std::fs::read(sys.dir.path().join("mcp.db")).unwrap();
        raw.extend(std::fs::read(sys.dir.path().join("mcp.db-wal")).unwrap_or_default());
        assert!(
            !raw.windows(10).any(|w| w == b"TOP-SECRET"),
            "plaintext in the database file"
        );
    }
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}
