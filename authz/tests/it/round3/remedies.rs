//! Issue 24, the adversarial review of round 3 (each reproduced against the binaries):
//!
//! - A: new recovery codes (a lasting second factor) follow the one re-authentication rule and
//!   ask for the current code, as turning two-factor off does: a stale session with the
//!   password alone mints none.

use authz::account::{totp, two_factor};
use authz::clock::Clock;
use testkit::agent::FormAgent;
use testkit::both_backends;

use super::browser_reauth::{PW, STALE, password_and_code, post, sent_to_reauth, spawn, user};
use crate::support::{Backend, TestApp};
use crate::two_factor::unbase32;

both_backends!(review_a_a_stale_session_or_the_password_alone_mints_no_recovery_codes,);

/// Turn TOTP on for `id`: its secret and the ten recovery codes (the confirming step spent).
async fn totp_with_codes(app: &TestApp, id: &str) -> (Vec<u8>, Vec<String>) {
    let u = user(app, id).await;
    let e = two_factor::begin(&app.state, &u).await.unwrap();
    let secret = unbase32(&e.secret_base32);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    let codes = two_factor::confirm(&app.state, &u, &code).await.unwrap();
    app.clock.advance(totp::STEP_SECS);
    (secret, codes)
}

fn code_now(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(secret, totp::step_at(app.clock.now()))
}

async fn codes_left(app: &TestApp, id: &str) -> i64 {
    let u = user(app, id).await;
    two_factor::recovery_codes_left(&app.state, &u)
        .await
        .unwrap()
}

/// Does `code` (a recovery code) still work for `id`? (Spends it when it does.)
async fn recovery_code_works(app: &TestApp, id: &str, code: &str) -> bool {
    let u = user(app, id).await;
    two_factor::check(&app.state, &u, code).await.unwrap()
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
