//! The third adversarial review of LDAP sign-in (issue 26, review 6): one regression test per
//! finding (`b<N>_…`), each beside its positive control, against a real `slapd`, on SQLite and
//! PostgreSQL.

use std::time::Duration;

use authz::clock::Clock;
use authz::identity::signin::{self, LoginFailure};
use authz::identity::totp;
use serde_json::Value;
use shared::secret::Password;
use testkit::both_backends;
use testkit::ldap::{Person, Slapd};

use super::ldap::{api_key, app_for, ctx, grant, key_token, ldap, signed_in, spawn, user_named};
use crate::support::{Backend, turn_on_totp};

both_backends!(
    b1_a_password_changed_at_the_directory_ends_what_the_old_one_made,
    b2_two_factor_users_signing_in_under_another_name_are_not_locked_out,
    b3_a_renamed_directory_user_confirms_with_their_own_password,
);

const CAROL: &str = "carol pass phrase";
const JDOE: &str = "jdoe pass phrase";

async fn b1_a_password_changed_at_the_directory_ends_what_the_old_one_made(backend: Backend) {
    let d = Slapd::start_with_policy(&[Person::new("carol", CAROL)], &[]).await;
    let app = spawn(backend, |c| c.ldap = ldap(&d, &d.ldaps_url)).await;
    let first = grant(&app, "carol", CAROL).await;
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let carol = user_named(&app, "carol").await.unwrap();
    let (key_id, secret) = api_key(&app, &carol).await;
    assert!(signed_in(&key_token(&app, &key_id, &secret).await));
    // The directory's times have whole seconds, and its clock is the real one: this server's
    // (manual) clock keeps up.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.clock.advance(2);
    // Reset there, then changed there, with nothing here seeing the reset in between.
    d.set("carol", "userPassword", &["temporary pass phrase"])
        .await;
    d.set("carol", "userPassword", &["carol new pass phrase"])
        .await;
    d.set("carol", "pwdReset", &[]).await;
    let v = key_token(&app, &key_id, &secret).await;
    assert!(!signed_in(&v), "{v}");
    let v: Value = app
        .refresh("cli", &refresh, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
    // Positive control: the new password signs her in, and what she makes now lasts.
    app.clock.advance(2);
    let fresh = grant(&app, "carol", "carol new pass phrase").await;
    assert!(signed_in(&fresh), "{fresh}");
    let refresh = fresh["refresh_token"].as_str().unwrap().to_owned();
    let v: Value = app
        .refresh("cli", &refresh, &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(signed_in(&v), "{v}");
}

async fn b2_two_factor_users_signing_in_under_another_name_are_not_locked_out(backend: Backend) {
    let d = Slapd::start(&[Person::new("j doe", JDOE)], &[]).await;
    let app = app_for(backend, &d, |c| c.browser.login_max_failures = 3).await;
    assert!(signed_in(&grant(&app, "j doe", JDOE).await));
    // Cleaned beyond its case: the local name is qualified.
    let user = user_named(&app, "jdoe-ldap").await.unwrap();
    let secret = turn_on_totp(&app, &user).await;
    for round in 0..6 {
        app.clock.advance(totp::STEP_SECS);
        let found = signin::authenticate(
            app.state.identity(),
            "j doe",
            &Password::new(JDOE),
            "console",
            "test",
            &ctx(&app),
        )
        .await
        .unwrap_or_else(|e| panic!("round {round}: {e}"))
        .unwrap_or_else(|f| panic!("round {round}: {f:?}"));
        let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
        let done =
            signin::second_factor(app.state.identity(), &found, &code, "console", &ctx(&app))
                .await
                .unwrap();
        assert!(done.is_ok(), "round {round}: {done:?}");
    }
}

async fn b3_a_renamed_directory_user_confirms_with_their_own_password(backend: Backend) {
    let d = Slapd::start(&[Person::new("j doe", JDOE)], &[]).await;
    let app = app_for(backend, &d, |_| {}).await;
    assert!(signed_in(&grant(&app, "j doe", JDOE).await));
    let user = user_named(&app, "jdoe-ldap").await.unwrap();
    let confirm = |pw: &'static str| {
        let (app, user) = (&app, &user);
        async move {
            signin::reauthenticate(
                app.state.identity(),
                user,
                &Password::new(pw),
                "console",
                "console_confirm",
                &ctx(app),
            )
            .await
            .unwrap()
        }
    };
    assert!(confirm(JDOE).await.is_ok());
    assert!(matches!(confirm("guess").await, Err(LoginFailure::Invalid)));
    // Its name at the directory is not a way around the check either.
    assert!(matches!(confirm("").await, Err(LoginFailure::Invalid)));
}
