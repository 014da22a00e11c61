//! Signing keys: encrypted at rest, rotation by the real CLI picked up by the running server,
//! old tokens verifying until they expire, and other algorithms.

use authz::clock::Clock;
use authz::keys::SigningAlg;

use crate::support::{Backend, MCP, TestApp, expect_token};
use testkit::both_backends;

both_backends!(
    rotation_keeps_old_tokens_verifiable,
    private_keys_are_encrypted_at_rest,
    concurrent_rotations_on_two_replicas_leave_one_active_key,
    a_stale_scheduled_rotation_schedules_nothing_more,
);

async fn cc_token(app: &TestApp, secret: &str) -> String {
    let body = expect_token(
        app.token(
            &[("grant_type", "client_credentials")],
            Some(("bot", secret)),
        )
        .await,
    )
    .await;
    body["access_token"].as_str().unwrap().to_owned()
}

async fn rotation_keeps_old_tokens_verifiable(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.key_reload_secs = 1).await;
    let secret = app.bot("notes:read").await;
    let before = cc_token(&app, &secret).await;
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();

    // `authz keys rotate`, the real binary, against the same database and data dir.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authz"))
        .args(["keys", "rotate", "--json"])
        .env("AUTHZ_DATA_DIR", app.dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env("AUTHZ_ISSUER", &app.base)
        .env("AUTHZ_DEFAULT_RESOURCE", MCP)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_kid = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, old_kid);

    // The running server picks it up by itself (key_reload_secs = 1).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let jwks = app.jwks().await;
        if jwks.find(&new_kid).is_some() {
            assert!(jwks.find(&old_kid).is_some(), "old key still published");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Published before it signs (issue 11, item 5): tokens still come from the old key …
    let during = cc_token(&app, &secret).await;
    assert_eq!(
        jsonwebtoken::decode_header(&during).unwrap().kid.unwrap(),
        old_kid,
        "a pre-published key must not sign yet"
    );
    // … until the pre-publication delay has passed (default 120 s from when the CLI ran, on
    // the real clock: the test's clock started earlier, by however long the CLI took to start
    // on a busy machine), then from the new one.
    let activate_at = app
        .state
        .store
        .all_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == new_kid)
        .and_then(|k| k.activate_at)
        .expect("a pre-published key has its time");
    assert!(
        activate_at - app.clock.now() >= 119,
        "published before it signs"
    );
    app.clock.advance(activate_at - app.clock.now());
    let after = cc_token(&app, &secret).await;
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.unwrap(),
        new_kid
    );
    app.state.reload_keys().await.unwrap();
    let stored = app.state.store.all_keys().await.unwrap();
    let row = stored.iter().find(|k| k.kid == new_kid).unwrap();
    assert_eq!(
        row.status,
        authz::store::KeyStatus::Active,
        "promoted in storage"
    );
    app.verify(&before, MCP).await;
    app.verify(&during, MCP).await;
    app.verify(&after, MCP).await;

    // Once every token the old key signed has expired, it leaves the JWKS.
    app.clock.advance(600 + 61);
    app.state.reload_keys().await.unwrap();
    let jwks = app.jwks().await;
    assert!(jwks.find(&old_kid).is_none());
    assert!(jwks.find(&new_kid).is_some());

    // Other algorithms (RFC 8725 §3.1 allow-list): ES256 and EdDSA.
    for alg in [SigningAlg::Es256, SigningAlg::EdDsa] {
        let (kid, _) = app
            .state
            .key_admin()
            .rotate_keys("test", alg, authz::keys::KeySwitch::Now)
            .await
            .unwrap();
        let t = cc_token(&app, &secret).await;
        let h = jsonwebtoken::decode_header(&t).unwrap();
        assert_eq!(h.kid.as_deref(), Some(kid.as_str()));
        assert_eq!(h.alg, alg.jsonwebtoken());
        app.verify(&t, MCP).await;
    }
    let kinds = app.audit_kinds().await;
    assert!(kinds.contains(&"key.rotated".to_owned()) && kinds.contains(&"key.created".to_owned()));
}

async fn private_keys_are_encrypted_at_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = app.state.store.all_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    // Ciphertext is not a parsable PKCS#8 key, and opens only with the master key and its kid.
    assert!(aws_lc_rs::rsa::KeyPair::from_pkcs8(&k.private_key_enc).is_err());
    assert!(
        app.state
            .master
            .open(k.kid.as_bytes(), &k.private_key_enc)
            .is_ok()
    );
    assert!(
        app.state
            .master
            .open(b"another kid", &k.private_key_enc)
            .is_err()
    );
    let other = authz::crypto::MasterKey::from_bytes(&[9u8; 32]);
    assert!(other.open(k.kid.as_bytes(), &k.private_key_enc).is_err());
    // The master key file was created private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Two replicas (two server states on one database) rotating at the same moment: the database
/// keeps exactly one active key per purpose (a partial unique index); the loser is told, and
/// changes nothing.
async fn concurrent_rotations_on_two_replicas_leave_one_active_key(backend: Backend) {
    use authz::keys::KeySwitch;
    use authz::keys::SigningAlg;
    let app = TestApp::spawn(backend).await;
    let other = authz::build_state((*app.state.config).clone(), app.clock.clone())
        .await
        .unwrap();
    for round in 0..20 {
        // Each replica on its own task, so the two transactions overlap.
        let (s1, s2) = (app.state.clone(), other.clone());
        let t1 = tokio::spawn(async move {
            s1.key_admin()
                .rotate_keys("replica-1", SigningAlg::Es256, KeySwitch::Now)
                .await
        });
        let t2 = tokio::spawn(async move {
            s2.key_admin()
                .rotate_keys("replica-2", SigningAlg::Es256, KeySwitch::Now)
                .await
        });
        let (a, b) = (t1.await.unwrap(), t2.await.unwrap());
        assert!(
            a.is_ok() || b.is_ok(),
            "round {round}: both failed: {a:?} {b:?}"
        );
        for loser in [&a, &b].into_iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(loser, authz::error::Error::Conflict(_)),
                "{loser:?}"
            );
        }
        let active = app
            .sql_count(
                "SELECT COUNT(*) FROM signing_keys WHERE status = 'active' AND purpose = 'access'",
            )
            .await;
        assert_eq!(active, 1, "round {round}");
    }
}

/// A replica's rotation schedule decides from keys it read earlier; when another replica has
/// meanwhile scheduled the next key and it was promoted (under load, a reload can stall that
/// long), the stale decision schedules nothing more (it made a third key: the flaky
/// `mcp-resource cluster::scheduled_rotation_…` of stops 34–35).
async fn a_stale_scheduled_rotation_schedules_nothing_more(backend: Backend) {
    use authz::clock::Clock;
    use authz::keys::{Activation, SigningAlg, rotate};
    let app = TestApp::spawn(backend).await;
    let st = &app.state;
    let k1 = st.keys.current().active.kid().to_owned();
    let now = app.clock.now();
    let until = now + 3600;
    // Another replica: the next key, then its promotion.
    let at = now + 120;
    let k2 = rotate(
        &*st.store,
        &st.master,
        SigningAlg::Rs256,
        now,
        until,
        Activation::At(at),
    )
    .await
    .unwrap();
    app.clock.advance(120);
    st.reload_keys().await.unwrap();
    assert_eq!(st.keys.current().active.kid(), k2);
    // The stale decision (made when k1 was active and nothing waited) comes through now.
    let stale = Activation::Scheduled {
        at: app.clock.now() + 120,
        replacing: k1,
    };
    let now = app.clock.now();
    let r = rotate(&*st.store, &st.master, SigningAlg::Rs256, now, until, stale).await;
    assert!(matches!(r, Err(authz::error::Error::Conflict(_))), "{r:?}");
    assert_eq!(
        st.store.published_keys(now).await.unwrap().len(),
        2,
        "no third key"
    );
    // Positive control: a decision about the key that is active schedules the next one.
    let fresh = Activation::Scheduled {
        at: now + 120,
        replacing: k2,
    };
    rotate(&*st.store, &st.master, SigningAlg::Rs256, now, until, fresh)
        .await
        .unwrap();
    assert_eq!(st.store.published_keys(now).await.unwrap().len(), 3);
}
