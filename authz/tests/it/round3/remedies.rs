//! Issue 24, the adversarial review of round 3 (each reproduced against the binaries):
//!
//! - A: new recovery codes (a lasting second factor) follow the one re-authentication rule and
//!   ask for the current code, as turning two-factor off does: a stale session with the
//!   password alone mints none.
//! - B: an administrator's reset-two-factor, and removing one passkey (by an administrator,
//!   or by the user — all but the current session), end the user's sessions and refresh
//!   tokens: a session signed in with the removed factor is refused, and plants nothing.
//! - C: a device grant is bound to the approving session: approved, then the user's sessions
//!   ended (or the user disabled and enabled again), the device's poll gets `access_denied`.

use authz::clock::Clock;
use authz::identity::{totp, two_factor};
use authz::store::AuthMethod;
use testkit::agent::FormAgent;
use testkit::both_backends;

use super::browser_pending::soft_passkey::SoftPasskey;
use super::browser_pending::{passkey_for, passkey_step};
use super::browser_reauth::{
    PW, STALE, last_details, passkeys_of, password_and_code, post, sent_to_reauth, signed_in,
    spawn, user,
};
use super::flows::{grant_through_rp, refreshed};
use crate::support::{Backend, TestApp, expect_error, expect_token};
use crate::two_factor::unbase32;

both_backends!(
    review_a_a_stale_session_or_the_password_alone_mints_no_recovery_codes,
    review_b_an_admin_two_factor_reset_ends_the_sessions_signed_in_with_it,
    review_b_removing_a_passkey_ends_the_other_sessions_and_their_refresh_tokens,
    review_c_a_device_grant_approved_before_a_remedy_is_not_redeemed_after_it,
);

/// Turn TOTP on for `id`: its secret and the ten recovery codes (the confirming step spent).
async fn totp_with_codes(app: &TestApp, id: &str) -> (Vec<u8>, Vec<String>) {
    let u = user(app, id).await;
    let e = app.two_factor_begin(&u).await.unwrap();
    let secret = unbase32(&e.secret_base32);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    let codes = app.two_factor_confirm(&u, &code).await.unwrap();
    app.clock.advance(totp::STEP_SECS);
    (secret, codes)
}

fn code_now(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(secret, totp::step_at(app.clock.now()))
}

async fn codes_left(app: &TestApp, id: &str) -> i64 {
    let u = user(app, id).await;
    two_factor::recovery_codes_left(&*app.state.store, &u)
        .await
        .unwrap()
}

/// Does `code` (a recovery code) still work for `id`? (Spends it when it does.)
async fn recovery_code_works(app: &TestApp, id: &str, code: &str) -> bool {
    let u = user(app, id).await;
    app.two_factor_check(&u, code).await.unwrap()
}

const NEW_CODES: &str = "/account/two-factor/recovery-codes";

async fn review_a_a_stale_session_or_the_password_alone_mints_no_recovery_codes(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let (secret, old) = totp_with_codes(&app, &alice).await;
    // Signed in with every factor, then left open past the re-authentication window.
    let agent = FormAgent::new();
    password_and_code(&app, &agent, "/account/two-factor", "alice", &secret).await;
    app.clock.advance(STALE);
    let code = code_now(&app, &secret);
    let stale = post(
        &app,
        &agent,
        NEW_CODES,
        &[("password", PW), ("code", &code)],
    )
    .await;
    assert!(
        sent_to_reauth(&stale, "/account/two-factor"),
        "{} {:?} {}",
        stale.status,
        stale.location,
        stale.body
    );
    assert!(
        !stale.body.contains("id=\"recovery-codes\""),
        "{}",
        stale.body
    );
    assert_eq!(codes_left(&app, &alice).await, 10);
    assert!(
        recovery_code_works(&app, &alice, &old[0]).await,
        "old codes stand"
    );

    // Signed in again: the password alone is not enough either (the current code too).
    password_and_code(&app, &agent, "/account/two-factor", "alice", &secret).await;
    app.clock.advance(totp::STEP_SECS);
    let bare = post(&app, &agent, NEW_CODES, &[("password", PW)]).await;
    assert_eq!(bare.status, 200, "{}", bare.body);
    assert!(
        !bare.body.contains("id=\"recovery-codes\""),
        "{}",
        bare.body
    );
    assert!(bare.body.contains("Enter a code"), "{}", bare.body);
    assert_eq!(codes_left(&app, &alice).await, 9);

    // Positive control: fresh, with the password and the current code, new codes.
    let code = code_now(&app, &secret);
    let fresh = post(
        &app,
        &agent,
        NEW_CODES,
        &[("password", PW), ("code", &code)],
    )
    .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert!(
        fresh.body.contains("id=\"recovery-codes\""),
        "{}",
        fresh.body
    );
    assert_eq!(codes_left(&app, &alice).await, 10);
    assert!(
        !recovery_code_works(&app, &alice, &old[1]).await,
        "old codes gone"
    );
}

/// Sign in with `key` alone (username-less) in a new browser, then through `rp`'s code flow
/// with `offline_access`: the browser and the refresh token.
async fn passkey_session(app: &TestApp, key: &SoftPasskey) -> (FormAgent, String) {
    let agent = FormAgent::new();
    let login = agent.get(&app.url("/account/login")).await;
    let done = passkey_step(app, &agent, &login, key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let rt = grant_through_rp(app, &agent).await;
    (agent, rt)
}

/// The passkey registration options for this browser: `true` when it got them (200).
async fn can_start_a_passkey(app: &TestApp, agent: &FormAgent) -> bool {
    let page = agent.get(&app.url("/account/passkeys")).await;
    if page.status != 200 {
        return false;
    }
    let csrf: Vec<(String, String)> = testkit::agent::hidden_inputs(&page.body)
        .into_iter()
        .filter(|(n, _)| n == "csrf")
        .take(1)
        .collect();
    let r = agent
        .post_form(&app.url("/account/passkeys/options"), &csrf)
        .await;
    r.status == 200 && r.body.contains("ceremony")
}

async fn review_b_an_admin_two_factor_reset_ends_the_sessions_signed_in_with_it(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read offline_access")
        .await;
    let admin = signed_in(&app, "root").await;

    // The attacker's passkey and its session (positive control: it works, fresh).
    let key = passkey_for(&app, "alice").await;
    let (attacker, rt) = passkey_session(&app, &key).await;
    assert!(session_works(&app, &attacker).await);
    assert!(can_start_a_passkey(&app, &attacker).await, "before: fresh");
    let rt = refreshed(&app, &rt)
        .await
        .expect("before: the refresh token works");

    let done = post(
        &app,
        &admin,
        &format!("/admin/users/{alice}/reset-two-factor"),
        &[],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(passkeys_of(&app, &alice).await.is_empty());
    assert!(
        !session_works(&app, &attacker).await,
        "the passkey session ended"
    );
    assert!(
        !can_start_a_passkey(&app, &attacker).await,
        "plants nothing"
    );
    assert!(refreshed(&app, &rt).await.is_none(), "its refresh token");
    let details = last_details(&app, "mfa.reset_by_admin").await;
    assert!(
        details["sessions_ended"].as_u64().unwrap() >= 1,
        "{details}"
    );
    assert!(
        details["refresh_tokens_revoked"].as_u64().unwrap() >= 1,
        "{details}"
    );
    // The administrator's own session is not touched.
    assert!(session_works(&app, &admin).await);
}

async fn review_b_removing_a_passkey_ends_the_other_sessions_and_their_refresh_tokens(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read offline_access")
        .await;
    let admin = signed_in(&app, "root").await;

    // The administrator removes one passkey: the session signed in with it ends.
    let planted = passkey_for(&app, "alice").await;
    let cred = passkeys_of(&app, &alice).await.pop().unwrap();
    let (attacker, rt) = passkey_session(&app, &planted).await;
    assert!(session_works(&app, &attacker).await, "before");
    let rt = refreshed(&app, &rt).await.expect("before");
    let remove = format!("/admin/users/{alice}/passkeys/{cred}/remove");
    let done = post(&app, &admin, &remove, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!session_works(&app, &attacker).await, "admin removal");
    assert!(!can_start_a_passkey(&app, &attacker).await);
    assert!(refreshed(&app, &rt).await.is_none(), "admin removal");
    let details = last_details(&app, "passkey.removed").await;
    assert!(
        details["sessions_ended"].as_u64().unwrap() >= 1,
        "{details}"
    );

    // The user removes one from /account/passkeys: every other session ends, the current
    // one (fresh: a passkey sign-in) stays, with its refresh token.
    let planted = passkey_for(&app, "alice").await;
    let cred = passkeys_of(&app, &alice).await.pop().unwrap();
    let mine = passkey_for(&app, "alice").await;
    let (attacker, attacker_rt) = passkey_session(&app, &planted).await;
    let (me, my_rt) = passkey_session(&app, &mine).await;
    assert!(session_works(&app, &attacker).await, "before");
    let attacker_rt = refreshed(&app, &attacker_rt).await.expect("before");
    let removed = post(&app, &me, &format!("/account/passkeys/{cred}/delete"), &[]).await;
    assert_eq!(
        removed.location.as_deref(),
        Some("/account/passkeys?done=removed"),
        "{}",
        removed.body
    );
    assert!(!session_works(&app, &attacker).await, "own removal");
    assert!(refreshed(&app, &attacker_rt).await.is_none(), "own removal");
    assert!(session_works(&app, &me).await, "the current session stays");
    assert!(
        refreshed(&app, &my_rt).await.is_some(),
        "and its refresh token"
    );
    assert_eq!(passkeys_of(&app, &alice).await.len(), 1);
    let details = last_details(&app, "passkey.removed").await;
    assert!(
        details["sessions_ended"].as_u64().unwrap() >= 1,
        "{details}"
    );
}

async fn review_c_a_device_grant_approved_before_a_remedy_is_not_redeemed_after_it(
    backend: Backend,
) {
    use crate::device::{approve, poll, setup, start_ok};
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let found = app.state.store.get_user_by_username("alice").await.unwrap();
    let alice = found.unwrap().id;
    app.user("root", PW, "admin").await;
    let admin = signed_in(&app, "root").await;

    // Positive control: approved, polled, tokens.
    let d = start_ok(&app).await;
    approve(&app, d["user_code"].as_str().unwrap(), "approve").await;
    expect_token(poll(&app, d["device_code"].as_str().unwrap()).await).await;

    // Approved, then the administrator ends alice's sessions: the poll is refused.
    let d = start_ok(&app).await;
    approve(&app, d["user_code"].as_str().unwrap(), "approve").await;
    let done = post(
        &app,
        &admin,
        &format!("/admin/users/{alice}/end-sessions"),
        &[],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    app.clock.advance(5);
    expect_error(
        poll(&app, d["device_code"].as_str().unwrap()).await,
        400,
        "access_denied",
    )
    .await;

    // Approved, then disabled and enabled again: refused too.
    let d = start_ok(&app).await;
    approve(&app, d["user_code"].as_str().unwrap(), "approve").await;
    for action in ["disable", "enable"] {
        let done = post(&app, &admin, &format!("/admin/users/{alice}/{action}"), &[]).await;
        assert_eq!(done.status, 303, "{action}: {}", done.body);
    }
    app.clock.advance(5);
    expect_error(
        poll(&app, d["device_code"].as_str().unwrap()).await,
        400,
        "access_denied",
    )
    .await;
}

/// Does the browser's session still open `/account`?
async fn session_works(app: &TestApp, agent: &FormAgent) -> bool {
    let page = agent.get(&app.url("/account")).await;
    match page.status {
        200 => true,
        302 | 303 => {
            let loc = page.location.unwrap_or_default();
            assert!(loc.starts_with("/account/login"), "{loc}");
            false
        }
        s => panic!("{s} {}", page.body),
    }
}
