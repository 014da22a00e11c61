//! The second adversarial review of LDAP sign-in (issue 26, review 5): one regression test per
//! finding (`n<N>_…`), each beside its positive control, against a real `slapd`, on SQLite and
//! PostgreSQL.

use authz::clock::Clock;
use authz::config::upstream::UpstreamKind;
use authz::identity::admin::{PasswordChange, change_password};
use authz::identity::signin::{self, LoginFailure};
use authz::identity::totp;
use serde_json::{Value, json};
use shared::secret::Password;
use testkit::both_backends;
use testkit::ldap::{Person, Slapd};

use super::ldap::{
    DORA, add_cli, api_key, app_for, ctx, directory, grant, key_token, ldap, signed_in, spawn,
    user_named,
};
use super::scripted::Provider;
use crate::support::{Backend, TestApp, turn_on_totp};

both_backends!(
    n1_a_directory_password_reset_ends_what_the_old_password_made,
    n2_a_code_from_before_the_entry_was_deleted_gets_no_tokens,
    n4_directory_users_with_two_factor_sign_in_again_and_again,
    n6_an_entry_without_its_id_attribute_is_never_linked_by_its_dn,
    n7_beside_a_directory_another_providers_names_are_qualified,
    n8_a_directory_user_does_not_sign_in_with_a_local_password_when_the_directory_is_gone,
);

const CAROL: &str = "carol pass phrase";

async fn n1_a_directory_password_reset_ends_what_the_old_password_made(backend: Backend) {
    let d = Slapd::start_with_policy(&[Person::new("carol", CAROL)], &[]).await;
    let app = spawn(backend, |c| c.ldap = ldap(&d, &d.ldaps_url)).await;
    // With carol's (phished) password: a refresh token and an API key.
    let first = grant(&app, "carol", CAROL).await;
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let carol = user_named(&app, "carol").await.unwrap();
    let (key_id, secret) = api_key(&app, &carol).await;
    // Positive control: both work.
    assert!(signed_in(&key_token(&app, &key_id, &secret).await));
    let v: Value = app
        .refresh("cli", &refresh, &[])
        .await
        .json()
        .await
        .unwrap();
    assert!(signed_in(&v), "{v}");
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    // The directory's administrator resets her password (ppolicy sets `pwdReset`).
    d.set("carol", "userPassword", &["temporary pass phrase"])
        .await;
    let v = key_token(&app, &key_id, &secret).await;
    assert!(!signed_in(&v), "{v}");
    let v: Value = app
        .refresh("cli", &refresh, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
    // She chooses her new password there: what the old one made stays ended.
    d.set("carol", "userPassword", &["carol new pass phrase"])
        .await;
    d.set("carol", "pwdReset", &[]).await;
    assert!(!signed_in(&key_token(&app, &key_id, &secret).await));
    let v: Value = app
        .refresh("cli", &refresh, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
    assert!(signed_in(
        &grant(&app, "carol", "carol new pass phrase").await
    ));
}

async fn n2_a_code_from_before_the_entry_was_deleted_gets_no_tokens(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    app.code_client("ldap-app", authz::store::AuthMethod::None, "notes:read")
        .await;
    let agent = testkit::agent::FormAgent::new();
    // Positive control: a code redeemed while the entry stands.
    let (c, v) = code(&app, &agent).await;
    let ok: Value = app.redeem("ldap-app", &c, &v).await.json().await.unwrap();
    assert!(signed_in(&ok), "{ok}");
    // A code from before the deletion, redeemed after it: nothing.
    let (c, v) = code(&app, &agent).await;
    d.delete("dora").await;
    let late: Value = app.redeem("ldap-app", &c, &v).await.json().await.unwrap();
    assert_eq!(late["error"], "invalid_grant", "{late}");
}

/// A code for dora through the sign-in form, and its PKCE verifier.
async fn code(app: &TestApp, agent: &testkit::agent::FormAgent) -> (String, String) {
    let (verifier, challenge) = testkit::pkce();
    let url = app.authorize_url("ldap-app", &challenge, &[("scope", "notes:read")]);
    let q = app.browser_sign_in(agent, &url, "dora", DORA).await;
    (q["code"].clone(), verifier)
}

async fn n4_directory_users_with_two_factor_sign_in_again_and_again(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |c| c.browser.login_max_failures = 3).await;
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    let dora = user_named(&app, "dora").await.unwrap();
    let secret = turn_on_totp(&app, &dora).await;
    for round in 0..6 {
        app.clock.advance(totp::STEP_SECS);
        let found = signin::authenticate(
            app.state.identity(),
            "dora",
            &Password::new(DORA),
            "console",
            "test",
            &ctx(&app),
        )
        .await
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let user = found.unwrap_or_else(|f| panic!("round {round}: {f:?}"));
        let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
        let done = signin::second_factor(app.state.identity(), &user, &code, "console", &ctx(&app))
            .await
            .unwrap();
        assert!(done.is_ok(), "round {round}: {done:?}");
    }
    // Control: wrong passwords still lock.
    for _ in 0..3 {
        let _ = signin::authenticate(
            app.state.identity(),
            "dora",
            &Password::new("guess"),
            "console",
            "test",
            &ctx(&app),
        )
        .await;
    }
    let locked = signin::authenticate(
        app.state.identity(),
        "dora",
        &Password::new(DORA),
        "console",
        "test",
        &ctx(&app),
    )
    .await
    .unwrap();
    assert!(
        matches!(locked, Err(LoginFailure::Locked { .. })),
        "{locked:?}"
    );
}

async fn n6_an_entry_without_its_id_attribute_is_never_linked_by_its_dn(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |c| {
        c.ldap.id_attribute = "employeeNumber".into()
    })
    .await;
    assert_eq!(grant(&app, "dora", DORA).await["error"], "invalid_grant");
    assert!(user_named(&app, "dora").await.is_none());
    // Positive control: with the entries' id (`entryUUID`), she signs in.
    let fine = app_for(backend, &d, |_| {}).await;
    assert!(signed_in(&grant(&fine, "dora", DORA).await));
}

async fn n7_beside_a_directory_another_providers_names_are_qualified(backend: Backend) {
    let d = directory().await;
    let cfg = ldap(&d, &d.ldaps_url);
    let p = Provider::start_with(backend, UpstreamKind::Oidc, |_| {}, |c| c.ldap = cfg).await;
    add_cli(&p.app).await;
    let page = p
        .round(|n| {
            let mut c = p.claims("u-7", n);
            c["preferred_username"] = json!("dora");
            p.signed(&c)
        })
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(user_named(&p.app, "dora-corp").await.is_some());
    assert!(user_named(&p.app, "dora").await.is_none());
    // The directory's dora keeps her own name.
    assert!(signed_in(&grant(&p.app, "dora", DORA).await));
    assert!(user_named(&p.app, "dora").await.is_some());
}

async fn n8_a_directory_user_does_not_sign_in_with_a_local_password_when_the_directory_is_gone(
    backend: Backend,
) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    let dora = user_named(&app, "dora").await.unwrap();
    let local = Password::new("a local pass phrase 42");
    change_password(
        app.state.identity(),
        "root",
        &dora,
        &local,
        PasswordChange::AdminReset { temporary: false },
    )
    .await
    .unwrap();
    // The same server without its directory: the local password signs nobody in.
    let mut without = app.state.identity();
    without.directory = None;
    let tried = signin::authenticate(without, "dora", &local, "cli", "test", &ctx(&app))
        .await
        .unwrap();
    assert!(matches!(tried, Err(LoginFailure::Invalid)), "{tried:?}");
    // Positive control: a local account signs in there.
    app.user("local", "secret garden forty two", "user").await;
    let local_user = signin::authenticate(
        without,
        "local",
        &Password::new("secret garden forty two"),
        "cli",
        "test",
        &ctx(&app),
    )
    .await
    .unwrap();
    assert!(local_user.is_ok(), "{local_user:?}");
}
