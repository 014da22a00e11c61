//! Linked accounts in the console (issue 26, "Linking is explicit"): a user links an upstream
//! identity from `/account/identities` (a fresh sign-in here, then the provider's: both sides
//! proved) and unlinks it (never the last way in); an administrator sees and unlinks a user's
//! identities, and the sessions they signed in end.

use testkit::both_backends;

use super::{CORP, Federated, live_sessions};
use crate::support::{Backend, console_sign_in, submit_form};

both_backends!(
    a_user_links_with_both_sides_proved_and_unlinks_keeping_a_way_in,
    the_last_way_in_cannot_be_unlinked,
    an_administrator_unlinks_and_the_sessions_it_signed_in_end,
    a_password_reset_removes_linked_accounts_and_disabling_suspends_them,
);

const PW: &str = "local pass phrase 12";

async fn a_user_links_with_both_sides_proved_and_unlinks_keeping_a_way_in(backend: Backend) {
    let f = Federated::start(backend, |c| c.upstream[0].jit = false).await;
    let hana = f.app.user("hana", PW, "user").await;
    f.upstream_user("hana-up", None).await;
    console_sign_in(&f.app, &f.agent, "hana", PW).await;
    // A stale sign-in first: linking asks to sign in again here, and goes nowhere else.
    f.app
        .clock
        .advance(f.app.state.config.console.reauth_secs + 1);
    let stale = submit_form(
        &f.app,
        &f.agent,
        "/account/identities",
        "/account/identities/link",
        &[],
    )
    .await;
    assert_eq!(stale.status, 303);
    assert!(
        stale
            .location
            .as_deref()
            .unwrap()
            .starts_with("/account/login?reauth=1")
    );
    // Positive control: a fresh sign-in, then the provider's.
    console_sign_in(&f.app, &f.agent, "hana", PW).await;
    let page = f.agent.get(&f.app.url("/account/identities")).await;
    assert!(
        page.body.contains("Link your Corp SSO account"),
        "{}",
        page.body
    );
    let go = submit_form(
        &f.app,
        &f.agent,
        "/account/identities",
        "/account/identities/link",
        &[],
    )
    .await;
    assert_eq!(go.status, 303);
    let at_upstream = go.location.unwrap();
    assert!(at_upstream.starts_with(&f.up.base), "{at_upstream}");
    let callback = f
        .agent
        .sign_in(
            &f.up.base,
            &at_upstream,
            "hana-up",
            super::UP_PASSWORD,
            "approve",
        )
        .await
        .unwrap();
    let back = f.agent.get(&callback).await;
    assert_eq!(
        back.location.as_deref(),
        Some("/account/identities?done=linked")
    );
    let links = f
        .app
        .state
        .store
        .federated_identities_of(&hana)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    // She has a password too: unlinking is allowed.
    let page = f.agent.get(&f.app.url("/account/identities")).await;
    assert!(page.body.contains("Unlink"));
    let done = submit_form(
        &f.app,
        &f.agent,
        "/account/identities",
        "/account/identities/unlink",
        &[],
    )
    .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account/identities?done=unlinked")
    );
    assert!(
        f.app
            .state
            .store
            .federated_identities_of(&hana)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.app.audit_of("upstream.unlinked").await.len(), 1);
}

async fn the_last_way_in_cannot_be_unlinked(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    f.upstream_user("ivan", None).await;
    // Provisioned through the provider (no password here), signed in to the console.
    let login = f
        .agent
        .get(&f.app.url("/account/login?next=/account/identities"))
        .await;
    let back = f.continue_with(&login, "ivan").await;
    assert_eq!(
        back.location.as_deref(),
        Some("/account/identities"),
        "{}",
        back.body
    );
    let ivan = f
        .app
        .state
        .store
        .get_user_by_username("ivan")
        .await
        .unwrap()
        .unwrap();
    assert!(!ivan.has_password());
    let refused = submit_form(
        &f.app,
        &f.agent,
        "/account/identities",
        "/account/identities/unlink",
        &[],
    )
    .await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("last way you can sign in"),
        "{}",
        refused.body
    );
    assert_eq!(
        f.app
            .state
            .store
            .federated_identities_of(&ivan.id)
            .await
            .unwrap()
            .len(),
        1
    );
    // Positive control: with a password (set in storage, keeping the link: an administrator's
    // reset would remove it), the same unlink is allowed.
    let hash = f
        .app
        .state
        .passwords
        .hash(&shared::secret::Password::new(PW))
        .await
        .unwrap();
    let new = authz::store::NewCredentials {
        password_hash: &hash,
        revoke_api_keys: false,
        remove_passkeys: false,
        change_required: false,
        replaces: None,
    };
    let now = authz::clock::Clock::now(&*f.app.clock);
    f.app
        .state
        .store
        .reset_credentials(&ivan.id, &new, now)
        .await
        .unwrap();
    let login = f
        .agent
        .get(&f.app.url("/account/login?next=/account/identities"))
        .await;
    f.continue_with(&login, "ivan").await;
    let done = submit_form(
        &f.app,
        &f.agent,
        "/account/identities",
        "/account/identities/unlink",
        &[],
    )
    .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account/identities?done=unlinked"),
        "{}",
        done.body
    );
}

async fn an_administrator_unlinks_and_the_sessions_it_signed_in_end(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    f.upstream_user("judy", None).await;
    let login = f
        .agent
        .get(&f.app.url("/account/login?next=/account"))
        .await;
    let back = f.continue_with(&login, "judy").await;
    assert_eq!(back.status, 303);
    let judy = f
        .app
        .state
        .store
        .get_user_by_username("judy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live_sessions(&f.app, &judy.id).await, 1);
    assert_eq!(f.agent.get(&f.app.url("/account")).await.status, 200);
    f.app.user("root", PW, "admin").await;
    let admin = testkit::agent::FormAgent::new();
    console_sign_in(&f.app, &admin, "root", PW).await;
    let page = format!("/admin/users/{}", judy.id);
    let shown = admin.get(&f.app.url(&page)).await;
    assert!(
        shown.body.contains("Linked accounts") && shown.body.contains(CORP),
        "{}",
        shown.body
    );
    let done = submit_form(
        &f.app,
        &admin,
        &page,
        &format!("{page}/identities/unlink"),
        &[],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        f.app
            .state
            .store
            .federated_identities_of(&judy.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        live_sessions(&f.app, &judy.id).await,
        0,
        "the session it signed in ended"
    );
    // Her browser is signed out.
    assert_eq!(f.agent.get(&f.app.url("/account")).await.status, 303);
    let ev = f.app.audit_of("upstream.unlinked").await;
    assert_eq!(ev[0].actor.as_deref(), Some("root"));
    assert_eq!(ev[0].details["sessions_ended"], 1);
}

async fn a_password_reset_removes_linked_accounts_and_disabling_suspends_them(backend: Backend) {
    let f = Federated::start(backend, |c| c.upstream[0].jit = false).await;
    let lee = f.app.user("lee", PW, "user").await;
    let subject = f.upstream_user("lee-up", None).await;
    let link = authz::store::FederatedIdentity {
        provider: CORP.into(),
        subject,
        user_id: lee.clone(),
        email: None,
        created_at: 0,
        last_login_at: None,
    };
    f.app
        .state
        .store
        .add_federated_identity(&link)
        .await
        .unwrap();
    assert!(
        lee_signs_in(&f).await,
        "positive control: the link signs in"
    );
    // Disabling suspends it (refused while disabled), enabling brings it back.
    f.app.set_disabled("test", "lee", true).await;
    assert!(!lee_signs_in(&f).await);
    f.app.set_disabled("test", "lee", false).await;
    assert!(lee_signs_in(&f).await);
    // An administrator's reset (a takeover's remedy) removes it with the passkeys.
    authz::identity::admin::set_password(
        f.app.state.identity(),
        "test",
        "lee",
        &shared::secret::Password::new("another pass phrase 3"),
    )
    .await
    .unwrap();
    assert!(
        f.app
            .state
            .store
            .federated_identities_of(&lee)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !lee_signs_in(&f).await,
        "the planted link no longer signs in"
    );
    let changed = f.app.audit_of("user.password_changed").await;
    assert_eq!(changed[0].details["identities_unlinked"], 1);
}

/// Does lee-up's upstream sign-in (a fresh browser) end in a session here?
async fn lee_signs_in(f: &Federated) -> bool {
    let fresh = testkit::agent::FormAgent::trusting(&f.up.dir.path().join("tls.pem"));
    let login = fresh.get(&f.app.url("/account/login?next=/account")).await;
    let href = super::upstream_link(&login.body).unwrap();
    let go = fresh.get(&f.app.url(&href)).await;
    let at_upstream = go.location.unwrap();
    let callback = fresh
        .sign_in(
            &f.up.base,
            &at_upstream,
            "lee-up",
            super::UP_PASSWORD,
            "approve",
        )
        .await
        .unwrap();
    fresh.get(&callback).await.status == 303
}
