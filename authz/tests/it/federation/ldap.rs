//! LDAP / Active Directory sign-in (issue 26) against a real directory: OpenLDAP's `slapd`
//! started by each test from a seeded LDIF (`testkit::ldap::Slapd`), over `ldaps://` or
//! StartTLS with a certificate made for the test. The password grant and the sign-in form both
//! reach the one password check (`identity::signin`), so most checks use the grant.

use std::collections::BTreeMap;

use authz::config::Config;
use authz::config::ldap::LdapConfig;
use authz::events::audit::RequestContext;
use authz::identity::signin::{self, LoginFailure};
use serde_json::Value;
use shared::secret::Password;
use testkit::both_backends;
use testkit::ldap::{Person, SERVICE_DN, SERVICE_PASSWORD, SUFFIX, Slapd};

use crate::support::{Backend, TestApp, password_tokens};

both_backends!(
    a_directory_user_signs_in_provisioned_with_the_roles_of_their_groups,
    an_injected_username_finds_nobody,
    a_local_account_is_never_the_directorys,
    locked_removed_and_disabled_accounts_are_refused,
    the_directory_is_reached_over_verified_tls_only,
    the_lockout_counts_before_the_bind,
    without_provisioning_an_unlinked_directory_user_is_told_why,
    only_directory_users_sign_in_when_federation_only_is_ldap,
);

pub(super) const DORA: &str = "dora pass phrase";
pub(super) const ERIN: &str = "erin pass phrase";

pub(super) async fn directory() -> Slapd {
    Slapd::start(
        &[
            Person::new("dora", DORA),
            Person::new("erin", ERIN),
            Person {
                locked: true,
                ..Person::new("lena", "lena pass phrase")
            },
        ],
        &[("readers", &["dora"]), ("others", &["erin"])],
    )
    .await
}

/// `[ldap]` for the directory `d` at `url`.
pub(super) fn ldap(d: &Slapd, url: &str) -> LdapConfig {
    LdapConfig {
        url: Some(url.to_owned()),
        ca_file: Some(d.ca.clone()),
        bind_dn: Some(SERVICE_DN.into()),
        bind_password: Some(Password::new(SERVICE_PASSWORD)),
        user_base: format!("ou=people,{SUFFIX}"),
        group_base: Some(format!("ou=groups,{SUFFIX}")),
        member_of_attribute: String::new(),
        trust_email: true,
        group_roles: BTreeMap::from([("readers".into(), "readonly".into())]),
        connect_timeout_secs: 2,
        timeout_secs: 2,
        ..LdapConfig::default()
    }
}

pub(super) async fn app_for(
    backend: Backend,
    d: &Slapd,
    edit: impl FnOnce(&mut Config),
) -> TestApp {
    let cfg = ldap(d, &d.ldaps_url);
    spawn(backend, |c| {
        c.ldap = cfg;
        edit(c);
    })
    .await
}

/// A server configured by `edit`, with the public password-grant client `cli`.
pub(super) async fn spawn(backend: Backend, edit: impl FnOnce(&mut Config)) -> TestApp {
    let app = TestApp::spawn_with(backend, edit).await;
    add_cli(&app).await;
    app
}

/// An API key (`notes:read`, 365 days) of `user`, made from a fresh sign-in: its client id
/// and secret.
pub(super) async fn api_key(app: &TestApp, user: &authz::store::User) -> (String, String) {
    let (_, proof) = app.recent_sign_in(user).await;
    let key = authz::clients::api_keys::create(
        app.state.client_services(),
        user,
        &proof,
        &app.state.config.role_scopes(["user"]),
        "bot",
        "notes:read",
        Some(365),
    )
    .await
    .unwrap();
    (key.client_id, key.client_secret.expose().to_owned())
}

/// A client credentials answer for the API key `(id, secret)`.
pub(super) async fn key_token(app: &TestApp, id: &str, secret: &str) -> Value {
    app.http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The public password-grant client `cli` (`support::password_tokens`).
pub(super) async fn add_cli(app: &TestApp) {
    app.client(
        "cli",
        authz::store::AuthMethod::None,
        &[
            authz::store::GrantType::Password,
            authz::store::GrantType::RefreshToken,
        ],
        "notes:read offline_access",
        &[crate::support::MCP],
    )
    .await;
}

pub(super) fn ctx(app: &TestApp) -> RequestContext {
    RequestContext {
        ip: None,
        now: app.state.now(),
        dpop_jkt: None,
    }
}

pub(super) async fn grant(app: &TestApp, user: &str, pw: &str) -> Value {
    password_tokens(&app.http, &app.base, user, pw).await
}

pub(super) fn signed_in(v: &Value) -> bool {
    v["access_token"].is_string()
}

pub(super) async fn user_named(app: &TestApp, username: &str) -> Option<authz::store::User> {
    app.state
        .store
        .get_user_by_username(username)
        .await
        .unwrap()
}

pub(super) async fn roles_of(app: &TestApp, username: &str) -> Vec<String> {
    let mut r = user_named(app, username).await.unwrap().roles;
    r.sort();
    r
}

async fn a_directory_user_signs_in_provisioned_with_the_roles_of_their_groups(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    let ok = grant(&app, "dora", DORA).await;
    assert!(signed_in(&ok), "{ok}");
    // Provisioned: linked by the entry's entryUUID, roles from the groups and the defaults,
    // the directory's (trusted) address, no local password.
    let user = user_named(&app, "dora").await.unwrap();
    assert_eq!(roles_of(&app, "dora").await, vec!["readonly", "user"]);
    assert_eq!(user.email.as_deref(), Some("dora@example.org"));
    assert_eq!(user.display_name.as_deref(), Some("dora of the directory"));
    assert!(!user.has_password());
    let links = app
        .state
        .store
        .federated_identities_of(&user.id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].provider, "ldap");
    assert_eq!(
        links[0].subject.len(),
        36,
        "an entryUUID: {}",
        links[0].subject
    );
    // A wrong password and an unknown name look the same.
    let wrong = grant(&app, "dora", "not dora's").await;
    let unknown = grant(&app, "nobody", DORA).await;
    assert_eq!(wrong["error"], "invalid_grant");
    assert_eq!(wrong, unknown);
    let reasons: Vec<String> = app
        .audit_of("login.failed")
        .await
        .iter()
        .map(|e| e.details["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(reasons.contains(&"bad_password".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"unknown_user".to_owned()), "{reasons:?}");
    // The groups (and the name) are read again at every sign-in: out of `readers`, out of
    // `readonly`.
    d.set_members("readers", &["erin"]).await;
    d.set("dora", "displayName", &["Dora D."]).await;
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    assert_eq!(roles_of(&app, "dora").await, vec!["user"]);
    let renamed = user_named(&app, "dora").await.unwrap();
    assert_eq!(renamed.display_name.as_deref(), Some("Dora D."));
    assert!(!app.audit_of("user.roles_changed").await.is_empty());
    d.set_members("readers", &["dora"]).await;
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    assert_eq!(roles_of(&app, "dora").await, vec!["readonly", "user"]);
    // The sign-in form reaches the same check: a code for the directory user.
    let (_, challenge) = testkit::pkce();
    app.code_client("ldap-app", authz::store::AuthMethod::None, "notes:read")
        .await;
    let url = app.authorize_url("ldap-app", &challenge, &[("scope", "notes:read")]);
    let agent = testkit::agent::FormAgent::new();
    let q = app.browser_sign_in(&agent, &url, "dora", DORA).await;
    assert!(q.contains_key("code"), "{q:?}");
    // The same directory user through StartTLS: the same account.
    let again = spawn(backend, |c| c.ldap = ldap(&d, &d.ldap_url)).await;
    assert!(signed_in(&grant(&again, "dora", DORA).await));
}

async fn an_injected_username_finds_nobody(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    for name in [
        "*",
        "*)(uid=*",
        "dora)(|(uid=*",
        "d*",
        "dora*",
        "(uid=dora)",
        "dora\0",
    ] {
        let v = grant(&app, name, DORA).await;
        assert_eq!(v["error"], "invalid_grant", "{name:?}: {v}");
    }
    // An empty password is never sent (it would be an unauthenticated bind, which succeeds).
    let ctx = ctx(&app);
    let empty = signin::authenticate(
        app.state.identity(),
        "dora",
        &Password::new(""),
        "cli",
        "test",
        &ctx,
    )
    .await
    .unwrap();
    assert!(matches!(empty, Err(LoginFailure::Invalid)), "{empty:?}");
    // Positive control: the name as it is.
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    assert!(user_named(&app, "*").await.is_none());
}

async fn a_local_account_is_never_the_directorys(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    // A local erin, unlinked: the directory's erin does not become her.
    app.user("erin", "secret garden forty two", "user").await;
    let v = grant(&app, "erin", ERIN).await;
    assert_eq!(v["error"], "invalid_grant", "{v}");
    assert!(signed_in(
        &grant(&app, "erin", "secret garden forty two").await
    ));
    let erin = user_named(&app, "erin").await.unwrap();
    assert!(
        app.state
            .store
            .federated_identities_of(&erin.id)
            .await
            .unwrap()
            .is_empty()
    );
    // A directory user does not unlink the directory (only an administrator does).
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    let dora = user_named(&app, "dora").await.unwrap();
    let subject = authz::identity::directory::linked_subject(app.state.identity(), &dora)
        .await
        .unwrap()
        .unwrap();
    let ctx = ctx(&app);
    let by_user = authz::federation::links::unlink(
        app.state.federation(),
        &dora,
        "ldap",
        &subject,
        authz::federation::links::Remover::User { sid: "s" },
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(by_user, Err(authz::federation::links::DIRECTORY_LINK));
    let by_admin = authz::federation::links::unlink(
        app.state.federation(),
        &dora,
        "ldap",
        &subject,
        authz::federation::links::Remover::Admin { actor: "root" },
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(by_admin, Ok(true));
    // Unlinked, "dora" is a local account without a password: the directory no longer
    // signs her in.
    assert_eq!(grant(&app, "dora", DORA).await["error"], "invalid_grant");
}

async fn locked_removed_and_disabled_accounts_are_refused(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |_| {}).await;
    // lena is locked in the directory (ppolicy's pwdAccountLockedTime), though her bind works.
    assert_eq!(
        grant(&app, "lena", "lena pass phrase").await["error"],
        "invalid_grant"
    );
    let reasons: Vec<Value> = app
        .audit_of("login.failed")
        .await
        .iter()
        .map(|e| e.details["reason"].clone())
        .collect();
    assert!(
        reasons.contains(&"directory_disabled".into()),
        "{reasons:?}"
    );
    // dora signs in; a passkey would be accepted while her entry stands…
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    let dora = user_named(&app, "dora").await.unwrap();
    let allows = || async {
        authz::identity::directory::current(app.state.identity(), &dora, &ctx(&app))
            .await
            .map(|u| u.is_some())
    };
    assert!(allows().await.unwrap());
    // …and not once the directory locks her; nor does her password.
    d.set("dora", "pwdAccountLockedTime", &["000001010000Z"])
        .await;
    assert!(!allows().await.unwrap());
    assert_eq!(grant(&app, "dora", DORA).await["error"], "invalid_grant");
    d.set("dora", "pwdAccountLockedTime", &[]).await;
    assert!(allows().await.unwrap());
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    // Disabled here: the directory's yes does not matter.
    app.set_disabled("root", "dora", true).await;
    assert_eq!(grant(&app, "dora", DORA).await["error"], "invalid_grant");
    app.set_disabled("root", "dora", false).await;
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    // Removed from the directory: gone for passkeys and passwords.
    d.delete("dora").await;
    assert!(!allows().await.unwrap());
    assert_eq!(grant(&app, "dora", DORA).await["error"], "invalid_grant");
}

async fn the_directory_is_reached_over_verified_tls_only(backend: Backend) {
    // A directory that offers no TLS: StartTLS fails, nothing is sent in clear (503, not a
    // sign-in), and the cause is logged only.
    let bare = Slapd::start_with(&[Person::new("dora", DORA)], &[], false).await;
    let app = spawn(backend, |c| {
        c.ldap = ldap(&bare, &bare.ldap_url);
    })
    .await;
    let v = grant(&app, "dora", DORA).await;
    assert_eq!(v["error"], "temporarily_unavailable", "{v}");
    // A directory whose certificate is not the configured CA's: refused, both ways in.
    let d = directory().await;
    let other = Slapd::start(&[], &[]).await;
    for url in [&d.ldaps_url, &d.ldap_url] {
        let mut cfg = ldap(&d, url);
        cfg.ca_file = Some(other.ca.clone());
        let app = spawn(backend, |c| c.ldap = cfg).await;
        let v = grant(&app, "dora", DORA).await;
        assert_eq!(v["error"], "temporarily_unavailable", "{url}: {v}");
    }
    // Positive control: the right CA, both ways in.
    for url in [&d.ldaps_url, &d.ldap_url] {
        let app = spawn(backend, |c| c.ldap = ldap(&d, url)).await;
        assert!(signed_in(&grant(&app, "dora", DORA).await), "{url}");
    }
    // A directory that accepts connections and never answers: given up after the timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("ldaps://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let mut cfg = ldap(&d, &silent_url);
    cfg.connect_timeout_secs = 1;
    cfg.timeout_secs = 1;
    let app = spawn(backend, |c| c.ldap = cfg).await;
    let started = std::time::Instant::now();
    let v = grant(&app, "dora", DORA).await;
    assert_eq!(v["error"], "temporarily_unavailable", "{v}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    held.abort();
    // Plain LDAP is refused by the configuration unless asked for on loopback.
    let mut plain = ldap(&d, "ldap://dc.example.org");
    plain.starttls = false;
    plain.allow_plain = true;
    let roles = authz::config::Config::default().roles;
    assert!(plain.validate(&roles, None).is_err());
    plain.url = Some("ldap://127.0.0.1:389".into());
    assert!(plain.validate(&roles, None).is_ok());
}

async fn the_lockout_counts_before_the_bind(backend: Backend) {
    let mut d = directory().await;
    let app = app_for(backend, &d, |c| {
        c.browser.login_max_failures = 3;
        c.browser.login_lockout_secs = 300;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(grant(&app, "dora", "guess").await["error"], "invalid_grant");
    }
    let locked = grant(&app, "dora", DORA).await;
    assert!(
        locked["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("too many"),
        "{locked}"
    );
    // While locked, the directory is not even asked: with it down, the answer is the lock,
    // not an outage.
    assert!(signed_in(&grant(&app, "erin", ERIN).await));
    d.stop().await;
    let still = grant(&app, "dora", DORA).await;
    assert!(
        still["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("too many"),
        "{still}"
    );
    // Positive control: a name that is not locked does reach the (down) directory.
    let down = grant(&app, "erin", ERIN).await;
    assert_eq!(down["error"], "temporarily_unavailable", "{down}");
}

async fn without_provisioning_an_unlinked_directory_user_is_told_why(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |c| c.ldap.jit = false).await;
    let v = grant(&app, "dora", DORA).await;
    assert_eq!(v["error"], "invalid_grant");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("no account here yet"),
        "{v}"
    );
    // A wrong password is not told that.
    let wrong = grant(&app, "dora", "guess").await;
    assert!(
        !wrong["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("no account"),
        "{wrong}"
    );
    assert!(user_named(&app, "dora").await.is_none());
}

async fn only_directory_users_sign_in_when_federation_only_is_ldap(backend: Backend) {
    let d = directory().await;
    let app = app_for(backend, &d, |c| {
        c.federation.only = Some("ldap".into());
    })
    .await;
    app.user("local", "secret garden forty two", "user").await;
    assert_eq!(
        grant(&app, "local", "secret garden forty two").await["error"],
        "invalid_grant"
    );
    assert!(signed_in(&grant(&app, "dora", DORA).await));
    // The form is offered (for the directory's users).
    let page = testkit::agent::FormAgent::new()
        .get(&app.url("/account/login"))
        .await;
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
}
