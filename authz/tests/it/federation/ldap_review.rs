//! The adversarial review of LDAP sign-in (issue 26, review 4): one regression test per
//! finding (`f<N>_…`), each beside its positive control, against a real `slapd`, on SQLite and
//! PostgreSQL.

use authz::config::upstream::UpstreamKind;
use authz::identity::admin::{PasswordChange, change_password};
use authz::store::FederatedIdentity;
use shared::secret::Password;
use testkit::both_backends;
use testkit::ldap::{Person, SUFFIX, Slapd};

use super::ldap::{
    DORA, ERIN, add_cli, api_key, app_for, directory, grant, key_token, ldap, roles_of, signed_in,
    spawn, user_named,
};
use super::scripted::Provider;
use crate::support::Backend;

both_backends!(
    f1_a_group_named_like_a_mapped_one_elsewhere_gives_no_role,
    f2_a_password_reset_never_detaches_a_user_from_the_directory,
    f3_another_provider_signs_a_directory_user_in_only_while_the_directory_keeps_them,
    f5_spelling_the_name_another_way_does_not_escape_the_lockout,
    f7_under_federation_only_ldap_no_upstream_provider_signs_anyone_in,
    f8_refresh_tokens_and_api_keys_end_with_the_directory_entry,
    f9_a_password_the_directory_wants_changed_first_signs_nobody_in,
);

#[cfg(feature = "passkeys")]
both_backends!(f4_a_passkey_sign_in_takes_the_roles_the_directory_gives_now);

async fn f1_a_group_named_like_a_mapped_one_elsewhere_gives_no_role(backend: Backend) {
    // The entry's groups come from a DN-valued attribute (`seeAlso`, as `memberOf` would):
    // mallory names a `readers` group outside `group_base`, one a user could have created.
    let d = Slapd::start(&[Person::new("mallory", "mallory pass phrase")], &[]).await;
    let app = app_for(backend, &d, |c| {
        c.ldap.member_of_attribute = "seeAlso".into();
    })
    .await;
    let planted = format!("cn=readers,ou=usergroups,{SUFFIX}");
    d.set("mallory", "seeAlso", &[&planted]).await;
    assert!(signed_in(
        &grant(&app, "mallory", "mallory pass phrase").await
    ));
    assert_eq!(roles_of(&app, "mallory").await, vec!["user"]);
    // Positive control: the `readers` under `group_base` does give the role.
    let real = format!("cn=readers,ou=groups,{SUFFIX}");
    d.set("mallory", "seeAlso", &[&real]).await;
    assert!(signed_in(
        &grant(&app, "mallory", "mallory pass phrase").await
    ));
    assert_eq!(roles_of(&app, "mallory").await, vec!["readonly", "user"]);
}

async fn f2_a_password_reset_never_detaches_a_user_from_the_directory(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    let dora = user_named(&app, "dora").await.unwrap();
    // Her own change, asking for her linked accounts to go: refused (the directory keeps her
    // password), the link stands.
    let own = change_password(
        app.state.identity(),
        "dora",
        &dora,
        &Password::new("a local pass phrase 77"),
        PasswordChange::ByUserRemovingPasskeys,
    )
    .await;
    assert!(own.is_err(), "{own:?}");
    // An administrator's reset ends what it ends, and keeps the link.
    let temporary = Password::new("temporary pass phrase 88");
    change_password(
        app.state.identity(),
        "root",
        &dora,
        &temporary,
        PasswordChange::AdminReset { temporary: true },
    )
    .await
    .unwrap();
    let links = app
        .state
        .store
        .federated_identities_of(&dora.id)
        .await
        .unwrap();
    assert!(links.iter().any(|l| l.provider == "ldap"), "{links:?}");
    // Positive control: the directory still signs her in.
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    // Deleted from the directory, she is gone here too: no local password takes over.
    d.delete("dora").await;
    assert_eq!(grant(&app, "dora", DORA).await["error"], "invalid_grant");
    assert_eq!(
        grant(&app, "dora", temporary.expose()).await["error"],
        "invalid_grant"
    );
}

async fn f3_another_provider_signs_a_directory_user_in_only_while_the_directory_keeps_them(
    backend: Backend,
) {
    let d = directory().await;
    let cfg = ldap(&d, &d.ldaps_url);
    let p = Provider::start_with(backend, UpstreamKind::Oidc, |_| {}, |c| c.ldap = cfg).await;
    add_cli(&p.app).await;
    assert!(signed_in(&grant(&p.app, "dora", DORA).await));
    let dora = user_named(&p.app, "dora").await.unwrap();
    // Dora linked her Corp SSO account too.
    p.app
        .state
        .store
        .add_federated_identity(&FederatedIdentity {
            provider: "corp".into(),
            subject: "u-dora".into(),
            user_id: dora.id.clone(),
            email: None,
            created_at: 0,
            last_login_at: None,
        })
        .await
        .unwrap();
    let answer = |n: &str| p.signed(&p.claims("u-dora", n));
    // Positive control: while the directory keeps her, Corp SSO signs her in.
    let page = p.round(answer).await;
    assert_eq!(page.status, 303, "{}", page.body);
    // Locked in the directory: not through Corp SSO either.
    d.set("dora", "pwdAccountLockedTime", &["000001010000Z"])
        .await;
    p.agent.clear_cookies();
    let page = p.round(|n| p.signed(&p.claims("u-dora", n))).await;
    assert_ne!(page.status, 303, "{:?}", page.location);
}

#[cfg(feature = "passkeys")]
async fn f4_a_passkey_sign_in_takes_the_roles_the_directory_gives_now(backend: Backend) {
    use crate::round3::browser_pending::{passkey_for, passkey_step};
    let d = directory().await;
    // WebAuthn needs a domain as RP ID: the issuer is `http://localhost:<port>`.
    let app = app_for(backend, &d, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    assert_eq!(roles_of(&app, "dora").await, vec!["readonly", "user"]);
    let key = passkey_for(&app, "dora").await;
    let agent = testkit::agent::FormAgent::new();
    // Positive control: a passkey sign-in while she is in `readers`.
    let login = agent.get(&app.url("/account/login")).await;
    let page = passkey_step(&app, &agent, &login, &key).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(roles_of(&app, "dora").await, vec!["readonly", "user"]);
    // Out of the group in the directory: the next passkey sign-in has only `user`.
    d.set_members("readers", &["erin"]).await;
    let agent = testkit::agent::FormAgent::new();
    let login = agent.get(&app.url("/account/login")).await;
    let page = passkey_step(&app, &agent, &login, &key).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(roles_of(&app, "dora").await, vec!["user"]);
    // Locked there: no passkey sign-in.
    d.set("dora", "pwdAccountLockedTime", &["000001010000Z"])
        .await;
    let agent = testkit::agent::FormAgent::new();
    let login = agent.get(&app.url("/account/login")).await;
    let page = passkey_step(&app, &agent, &login, &key).await;
    assert!(agent.cookie("authz_session").is_none(), "{}", page.body);
}

async fn f5_spelling_the_name_another_way_does_not_escape_the_lockout(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |c| {
        c.browser.login_max_failures = 3;
        c.browser.login_lockout_secs = 300;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(grant(&app, "dora", "guess").await["error"], "invalid_grant");
    }
    // The directory finds dora under each of these names; the lock is hers.
    for name in ["dora ", " dora", "\u{ff44}\u{ff4f}\u{ff52}\u{ff41}"] {
        let v = grant(&app, name, DORA).await;
        assert!(!signed_in(&v), "{name:?} signed in: {v}");
    }
    // Guesses under other spellings count toward the same lock too.
    for name in ["erin ", " erin", "e\u{ff52}in"] {
        assert!(!signed_in(&grant(&app, name, "guess").await));
    }
    // Positive control: erin (three failures, spelt three ways: locked too)… and a fresh
    // directory user signs in.
    assert!(!signed_in(&grant(&app, "erin", ERIN).await));
    let fresh = Slapd::start(&[Person::new("finn", "finn pass phrase")], &[]).await;
    let other = app_for(backend, &fresh, |_| {}).await;
    assert!(signed_in(&grant(&other, "finn ", "finn pass phrase").await));
}

async fn f7_under_federation_only_ldap_no_upstream_provider_signs_anyone_in(backend: Backend) {
    let d = directory().await;
    let cfg = ldap(&d, &d.ldaps_url);
    let p = Provider::start_with(
        backend,
        UpstreamKind::Oidc,
        |_| {},
        |c| {
            c.ldap = cfg;
            c.federation.only = Some("ldap".into());
        },
    )
    .await;
    let start = p
        .agent
        .get(&p.app.url("/login/upstream/corp?next=/account"))
        .await;
    assert_ne!(start.status, 303, "{:?}", start.location);
    let login = p.agent.get(&p.app.url("/account/login")).await;
    assert!(
        !login.body.contains("/login/upstream/corp"),
        "{}",
        login.body
    );
    // Positive control: without `only`, the provider is offered and used.
    let open = Provider::start(backend, UpstreamKind::Oidc, |_| {}).await;
    let start = open
        .agent
        .get(&open.app.url("/login/upstream/corp?next=/account"))
        .await;
    assert_eq!(start.status, 303);
}

async fn f8_refresh_tokens_and_api_keys_end_with_the_directory_entry(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    let first = grant(&app, "dora", DORA).await;
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let dora = user_named(&app, "dora").await.unwrap();
    let (id, secret) = api_key(&app, &dora).await;
    // Positive control: both work while the entry stands.
    assert!(signed_in(&key_token(&app, &id, &secret).await));
    let again = app.refresh("cli", &refresh, &[]).await;
    let v: serde_json::Value = again.json().await.unwrap();
    assert!(signed_in(&v), "{v}");
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    // Deleted from the directory: neither mints another token.
    d.delete("dora").await;
    let v = key_token(&app, &id, &secret).await;
    assert!(!signed_in(&v), "{v}");
    let v: serde_json::Value = app
        .refresh("cli", &refresh, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
}

async fn f9_a_password_the_directory_wants_changed_first_signs_nobody_in(backend: Backend) {
    let d = Slapd::start_with_policy(
        &[
            Person {
                reset: true,
                ..Person::new("rita", "rita pass phrase")
            },
            Person::new("dora", DORA),
        ],
        &[],
    )
    .await;
    let app = spawn(backend, |c| c.ldap = ldap(&d, &d.ldaps_url)).await;
    let v = grant(&app, "rita", "rita pass phrase").await;
    assert_eq!(v["error"], "invalid_grant", "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("must be changed"),
        "{v}"
    );
    // Positive control: an account without the reset flag.
    assert!(signed_in(&grant(&app, "dora", DORA).await));
}
