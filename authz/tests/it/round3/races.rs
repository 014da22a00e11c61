//! Issue 24 review finding 1 (HIGH): a sign-in already under way when a remedy commits got a
//! session that survived it, and an API key created from a session the remedy ended was kept.
//!
//! Driven at the account layer, deterministically: read the user as the sign-in does (before
//! its secret is checked), let the remedy commit, then try to start the session with what was
//! read. Creating a session is a compare-and-insert on the user's credential state as read
//! (`store::SessionStore::create_session`); an API key created for a browser session takes
//! that session's row first (`store::ClientStore::create_client_in_session`).

use authz::clients::api_keys;
use authz::clock::Clock;
use authz::events::audit::RequestContext;
use authz::identity::admin::{PasswordChange, change_password};
use authz::identity::session::{self, SignedIn};
use authz::store::User;
use shared::secret::Password;
use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(
    review_01_a_sign_in_under_way_gets_no_session_after_a_reset_change_or_disable,
    review_01_an_api_key_from_a_session_a_reset_ended_is_not_created,
    review_2_f1_a_sign_in_under_way_gets_no_session_after_its_factor_is_removed,
);

const PW: &str = "correct horse battery staple";
const NEW: &str = "a brand new passphrase for her";
const OWN: &str = "yet another fine passphrase";

fn ctx(app: &TestApp) -> RequestContext {
    RequestContext {
        ip: None,
        now: app.clock.now(),
        dpop_jkt: None,
    }
}

/// The user as a sign-in reads it (by name, before checking the password).
async fn read(app: &TestApp) -> User {
    let u = app.state.store.get_user_by_username("alice").await;
    u.unwrap().unwrap()
}

async fn live_sessions(app: &TestApp, id: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM sessions WHERE user_id = '{id}' AND ended_at IS NULL");
    app.sql_count(&sql).await
}

const HOW: SignedIn<'static> = SignedIn {
    amr: &["pwd"],
    user_agent: None,
};

async fn review_01_a_sign_in_under_way_gets_no_session_after_a_reset_change_or_disable(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let id = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;

    // Positive control: nothing happened in between, the session starts (browser and grant).
    let u = read(&app).await;
    let _ = app.start_session(&u, HOW, &ctx(&app)).await.unwrap();
    let _ = session::start_grant(app.state.identity(), &u, "test", &["pwd"], &ctx(&app))
        .await
        .unwrap();
    assert_eq!(live_sessions(&app, &id).await, 2);

    // An administrator's reset commits between the password check and the session.
    let stale = read(&app).await;
    let reset = PasswordChange::AdminReset { temporary: false };
    change_password(
        app.state.identity(),
        "root",
        &stale,
        &Password::new(NEW),
        reset,
    )
    .await
    .unwrap();
    assert_eq!(live_sessions(&app, &id).await, 0);
    let _ = app.start_session(&stale, HOW, &ctx(&app)).await;
    let _ = session::start_grant(app.state.identity(), &stale, "test", &["pwd"], &ctx(&app)).await;
    assert_eq!(
        live_sessions(&app, &id).await,
        0,
        "a sign-in that read the password before the reset got a session that survived it"
    );
    let refused = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| {
            e.kind == "login.failed"
                && e.details.to_string().contains("credentials_changed")
                && e.subject.as_deref() == Some(id.as_str())
        })
        .count();
    assert!(refused >= 2, "the refusals are audited ({refused})");

    // The user's own change: a sign-in that read the old password gets nothing; the
    // replacement session of the change itself (stamped with the new hash) starts.
    let before = read(&app).await;
    change_password(
        app.state.identity(),
        "alice",
        &before,
        &Password::new(OWN),
        PasswordChange::ByUser,
    )
    .await
    .unwrap();
    let _ = app.start_session(&before, HOW, &ctx(&app)).await;
    assert_eq!(
        live_sessions(&app, &id).await,
        0,
        "after the user's own change"
    );
    let _ = app.start_session(&read(&app).await, HOW, &ctx(&app)).await;
    assert_eq!(
        live_sessions(&app, &id).await,
        1,
        "with the current password"
    );

    // Disabling: a session started with the user as read before does not come back on enable.
    let enabled = read(&app).await;
    app.set_disabled("root", "alice", true).await;
    let _ = app.start_session(&enabled, HOW, &ctx(&app)).await;
    let _ =
        session::start_grant(app.state.identity(), &enabled, "test", &["pwd"], &ctx(&app)).await;
    app.set_disabled("root", "alice", false).await;
    assert_eq!(
        live_sessions(&app, &id).await,
        0,
        "a session created while the account was disabled came back on enable"
    );
}

async fn review_01_an_api_key_from_a_session_a_reset_ended_is_not_created(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    let held = app.state.config.role_scopes(["user"]);
    let owner = read(&app).await;
    let _ = app.start_session(&owner, HOW, &ctx(&app)).await.unwrap();
    let sql = format!("SELECT sid FROM sessions WHERE user_id = '{id}' AND ended_at IS NULL");
    let old_sid = app.sql_text(&sql).await.unwrap();

    // Positive control: from a live session the key is created.
    let signed_in = app.proof_of_sign_in(&old_sid, &owner).await;
    let late_proof = app.proof_of_sign_in(&old_sid, &owner).await;
    let key = api_keys::create(
        app.state.client_services(),
        &owner,
        &signed_in,
        &held,
        "bot",
        "notes:read",
        Some(30),
    )
    .await
    .unwrap();
    assert!(key.key.active);

    // The reset ends the session (and revokes the key); a creation under way from that
    // session, which read the owner and passed its checks before, stores nothing.
    let reset = PasswordChange::AdminReset { temporary: false };
    change_password(
        app.state.identity(),
        "root",
        &owner,
        &Password::new(NEW),
        reset,
    )
    .await
    .unwrap();
    let late = api_keys::create(
        app.state.client_services(),
        &owner,
        &late_proof,
        &held,
        "late",
        "notes:read",
        Some(30),
    )
    .await;
    assert!(
        late.is_err(),
        "a key was created from an ended session: {late:?}"
    );
    let live =
        format!("SELECT COUNT(*) FROM clients WHERE owner_id = '{id}' AND revoked_at IS NULL");
    assert_eq!(app.sql_count(&live).await, 0, "no live key after the reset");
}

/// Second review, F1/F2: a passkey or code sign-in under way when an administrator removes
/// that passkey, or resets two-factor, got a fresh multi-factor session the remedy never saw.
/// Removing a second factor moves the user's `factors_epoch` (the user row first, in the
/// remedy's transaction), and a session is stored only with the epoch its sign-in read.
async fn review_2_f1_a_sign_in_under_way_gets_no_session_after_its_factor_is_removed(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let id = app.user("alice", PW, "user").await;
    let mfa = SignedIn {
        amr: &["hwk", "mfa", "user"],
        user_agent: None,
    };
    crate::round3::browser_reauth::plant(&app, &id, "cred-1", "one").await;
    crate::round3::browser_reauth::plant(&app, &id, "cred-2", "two").await;

    // Positive control: nothing removed in between, the passkey sign-in gets its session.
    let u = read(&app).await;
    assert!(
        app.start_session(&u, mfa, &ctx(&app))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(live_sessions(&app, &id).await, 1);

    // A passkey's removal commits between the passkey check and the session.
    let stale = read(&app).await;
    let now = app.clock.now();
    let removed = app.state.store.delete_passkey(&id, "cred-1", now, None);
    assert!(removed.await.unwrap().is_some());
    assert_eq!(
        live_sessions(&app, &id).await,
        0,
        "the removal ended the sessions"
    );
    let late = app.start_session(&stale, mfa, &ctx(&app)).await.unwrap();
    assert!(
        late.is_none(),
        "a sign-in from before the removal got a session"
    );
    assert_eq!(live_sessions(&app, &id).await, 0);

    // The same for an administrator's two-factor reset (a code sign-in, `pwd otp`).
    let stale = read(&app).await;
    app.state.store.remove_totp(&id, Some(now)).await.unwrap();
    let otp = SignedIn {
        amr: &["pwd", "otp"],
        user_agent: None,
    };
    let late = app.start_session(&stale, otp, &ctx(&app)).await.unwrap();
    assert!(
        late.is_none(),
        "a code sign-in from before the reset got a session"
    );
    assert_eq!(live_sessions(&app, &id).await, 0);

    // Positive control: a sign-in that read the user after the remedy starts.
    let fresh = read(&app).await;
    assert!(
        app.start_session(&fresh, mfa, &ctx(&app))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(live_sessions(&app, &id).await, 1);
}
