//! The TOTP second factor's account logic on both backends: enrolment is inactive until a code
//! confirms it; a code counts once (also when two sign-ins race with it); recovery codes work
//! once each; the secret is sealed at rest and bound to its user.

use authz::clock::Clock;
use authz::identity::{totp, two_factor};
use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(
    totp_enrolment_codes_and_recovery_codes,
    the_password_grant_refuses_two_factor_accounts,
);

/// RFC 4648 base32 (no padding) back to bytes: what an authenticator app does with the secret.
pub fn unbase32(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

async fn totp_enrolment_codes_and_recovery_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .user("alice", "correct horse battery staple", "user")
        .await;
    let user = app.state.store.get_user(&id).await.unwrap().unwrap();
    let other_id = app
        .user("bob", "correct horse battery staple", "user")
        .await;

    // Nothing before enrolment.
    assert!(
        !two_factor::is_enabled(&*app.state.store, &user)
            .await
            .unwrap()
    );
    assert!(!app.two_factor_check(&user, "000000").await.unwrap());

    let enrolment = app.two_factor_begin(&user).await.unwrap();
    assert!(enrolment.uri.starts_with("otpauth://totp/"));
    assert!(enrolment.uri.contains(&enrolment.secret_base32));
    let secret = unbase32(&enrolment.secret_base32);
    assert_eq!(secret.len(), totp::SECRET_BYTES);
    let code_now = || totp::code_at(&secret, totp::step_at(app.clock.now()));

    // Pending: a valid code does not sign in until the enrolment is confirmed.
    assert!(
        !two_factor::is_enabled(&*app.state.store, &user)
            .await
            .unwrap()
    );
    assert!(!app.two_factor_check(&user, &code_now()).await.unwrap());
    // A wrong code does not confirm; the right one does and yields ten recovery codes.
    let wrong = if code_now() == "123456" {
        "654321"
    } else {
        "123456"
    };
    assert!(app.two_factor_confirm(&user, wrong).await.is_err());
    let recovery = app.two_factor_confirm(&user, &code_now()).await.unwrap();
    assert_eq!(recovery.len(), 10);
    assert!(
        two_factor::is_enabled(&*app.state.store, &user)
            .await
            .unwrap()
    );

    // The confirming code is spent: the same code fails at sign-in (replay).
    assert!(!app.two_factor_check(&user, &code_now()).await.unwrap());
    // The next step's code works once; two sign-ins racing with one code: exactly one wins.
    app.clock.advance(totp::STEP_SECS);
    let code = code_now();
    let (a, b) = tokio::join!(
        app.two_factor_check(&user, &code),
        app.two_factor_check(&user, &code)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|ok| **ok).count(),
        1,
        "one code, one sign-in"
    );

    // Recovery codes: each works once, typed in any case, with or without the dash.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    assert!(app.two_factor_check(&user, &typed).await.unwrap());
    assert!(!app.two_factor_check(&user, &recovery[0]).await.unwrap());
    assert_eq!(
        two_factor::recovery_codes_left(&*app.state.store, &user)
            .await
            .unwrap(),
        9
    );
    // Another user's codes mean nothing here, and vice versa.
    let bob = app.state.store.get_user(&other_id).await.unwrap().unwrap();
    assert!(!app.two_factor_check(&bob, &recovery[1]).await.unwrap());

    // At rest: sealed (neither the secret nor its base32 is in the row), bound to alice.
    let stored = app.state.store.get_totp(&id).await.unwrap().unwrap();
    assert!(
        !stored
            .secret_enc
            .windows(secret.len())
            .any(|w| w == secret.as_slice())
    );
    assert!(
        app.state
            .master
            .open(format!("totp:{other_id}").as_bytes(), &stored.secret_enc)
            .is_err(),
        "a sealed secret cannot be moved onto another account"
    );
    let kinds = app.audit_kinds().await;
    for kind in ["mfa.enabled", "mfa.code_replayed", "mfa.recovery_code_used"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} audited: {kinds:?}");
    }

    // Off: codes stop counting, the recovery codes are gone.
    assert!(
        two_factor::disable(&*app.state.store, &app.state.events, &user)
            .await
            .unwrap()
    );
    assert!(
        !two_factor::is_enabled(&*app.state.store, &user)
            .await
            .unwrap()
    );
    app.clock.advance(totp::STEP_SECS);
    assert!(!app.two_factor_check(&user, &code_now()).await.unwrap());
    assert_eq!(
        two_factor::recovery_codes_left(&*app.state.store, &user)
            .await
            .unwrap(),
        0
    );
}

/// A user with two-factor sign-in on cannot use the password grant (a clear `invalid_grant`,
/// given only for the right password); without it, and before confirmation, they can.
async fn the_password_grant_refuses_two_factor_accounts(backend: Backend) {
    use authz::store::{AuthMethod, GrantType};
    let app = TestApp::spawn(backend).await;
    let pw = "correct horse battery staple";
    let id = app.user("alice", pw, "user").await;
    app.client(
        "cli",
        AuthMethod::None,
        &[GrantType::Password],
        "notes:read",
        &[crate::support::MCP],
    )
    .await;
    let app = &app;
    let grant = |password: &'static str| async move {
        let form = [
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", "alice"),
            ("password", password),
        ];
        app.token(&form, None).await
    };
    let user = app.state.store.get_user(&id).await.unwrap().unwrap();
    let enrolment = app.two_factor_begin(&user).await.unwrap();
    // Pending enrolment: still the password grant (positive control).
    assert_eq!(grant(pw).await.status(), 200);
    let secret = unbase32(&enrolment.secret_base32);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    app.two_factor_confirm(&user, &code).await.unwrap();
    let r = grant(pw).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("signs in interactively"),
        "{body}"
    );
    // A wrong password gets the generic answer: nothing is revealed without the password.
    let r = grant("not the password at all").await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error_description"], "invalid username or password");
}
