//! Issue 24 item 1 (HIGH): a bare session added a passkey that outlived every remedy.
//!
//! - One re-authentication rule for every user (`account::session::is_fresh`): adding or
//!   removing a passkey (and its options request), starting TOTP enrolment and creating an API
//!   key need a sign-in within `console.reauth_secs` made with every factor the user has; the
//!   admin console's changes use the same rule. A stale session is sent to sign in again and
//!   nothing changes; after signing in again the same change goes through.
//! - An administrator's reset-password, reset-two-factor and disable remove the user's
//!   passkeys (in the same transaction); the user's own password change does when asked.
//! - `/admin/users/{id}` lists a user's passkeys with a remove action (CSRF, re-auth, audited
//!   with the administrator as actor).
//! - In Chromium with a virtual authenticator: registering from a stale session is refused, a
//!   fresh one works, the passkey signs in (positive control), and after each remedy it no
//!   longer does.

use authz::clock::Clock;
use authz::identity::{admin, totp};
use authz::store::{StoredPasskey, User};
use shared::secret::Password;
use testkit::agent::{FormAgent, Page, hidden_inputs};
use testkit::both_backends;
use testkit::webdriver::Browser;

use crate::pages::{click, fill, sign_out, submit, wait_find, wait_h1};
use crate::support::{Backend, TestApp, assert_form, password_sign_in, turn_on_totp};

both_backends!(
    item_01_a_stale_session_cannot_add_a_passkey_start_totp_or_create_an_api_key,
    item_01_re_authentication_needs_every_factor_the_user_has_for_admins_too,
    item_01_admin_remedies_and_the_own_password_change_remove_passkeys,
    item_01_admins_see_and_remove_a_users_passkeys,
    item_01_a_passkey_planted_from_a_stale_session_is_refused_and_no_remedy_leaves_one_in_chromium,
);

pub(super) const PW: &str = "correct horse battery staple";

/// Older than `console.reauth_secs` (600 by default), younger than the idle timeout.
pub(super) const STALE: i64 = 11 * 60;

/// The server with a `localhost` issuer: WebAuthn needs a domain as RP ID, not an address.
pub(super) async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await
}

pub(super) async fn user(app: &TestApp, id: &str) -> User {
    app.state.store.get_user(id).await.unwrap().unwrap()
}

pub(super) async fn passkeys_of(app: &TestApp, id: &str) -> Vec<String> {
    let held = app.state.store.user_passkeys(id).await.unwrap();
    held.into_iter().map(|p| p.credential_id).collect()
}

/// A passkey row for `user_id` as registration stores it (the public key is not used here:
/// the store-level assertions only look at whether it is there).
pub(super) fn passkey_row(
    app: &TestApp,
    user_id: &str,
    credential_id: &str,
    name: &str,
) -> StoredPasskey {
    StoredPasskey {
        credential_id: credential_id.into(),
        user_id: user_id.into(),
        user_handle: authz::identity::passkeys::user_handle(user_id).to_string(),
        name: name.into(),
        passkey: "{}".into(),
        created_at: app.clock.now(),
        last_used_at: None,
    }
}

/// Plant a passkey row straight into the database (as if registered earlier).
pub(super) async fn plant(app: &TestApp, user_id: &str, credential_id: &str, name: &str) {
    let p = passkey_row(app, user_id, credential_id, name);
    app.sql(&format!(
        "INSERT INTO passkeys (credential_id, user_id, user_handle, name, passkey, created_at) \
         VALUES ('{}', '{}', '{}', '{}', '{{}}', {})",
        p.credential_id,
        p.user_id,
        p.user_handle,
        p.name.replace('\'', "''"),
        p.created_at
    ))
    .await;
}

/// The password step of the console sign-in at `/account/login?<query>`.
async fn password_step(app: &TestApp, agent: &FormAgent, query: &str, who: &str) -> Page {
    let login = agent
        .get(&app.url(&format!("/account/login?{query}")))
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    password_sign_in(app, agent, &login, who, PW).await
}

/// A browser signed in to the console as `who` with the password alone.
pub(super) async fn signed_in(app: &TestApp, who: &str) -> FormAgent {
    let agent = FormAgent::new();
    let page = password_step(app, &agent, "next=%2Faccount", who).await;
    assert_eq!(page.status, 303, "{}", page.body);
    agent
}

/// POST `action` as a console form (this browser's CSRF token, read off `/account`).
pub(super) async fn post(
    app: &TestApp,
    agent: &FormAgent,
    action: &str,
    extra: &[(&str, &str)],
) -> Page {
    let page = agent.get(&app.url("/account")).await;
    assert_eq!(page.status, 200, "signed in: {}", page.body);
    let mut fields: Vec<(String, String)> = hidden_inputs(&page.body)
        .into_iter()
        .filter(|(n, _)| n == "csrf")
        .take(1)
        .collect();
    for (k, v) in extra {
        fields.push(((*k).into(), (*v).into()));
    }
    agent.post_form(&app.url(action), &fields).await
}

/// The administrator's `action` (`disable`, `reset-password`, …) on the user `id`, from the
/// console.
async fn remedy(app: &TestApp, admin: &FormAgent, id: &str, action: &str) -> Page {
    post(app, admin, &format!("/admin/users/{id}/{action}"), &[]).await
}

/// Was the browser sent to sign in again (and back to `back`)?
pub(super) fn sent_to_reauth(page: &Page, back: &str) -> bool {
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    page.status == 303
        && page.location.as_deref() == Some(&format!("/account/login?reauth=1&next={next}"))
}

async fn api_key_count(app: &TestApp, id: &str) -> usize {
    let u = user(app, id).await;
    authz::clients::api_keys::list(&*app.state.store, app.state.now(), &u)
        .await
        .unwrap()
        .len()
}

async fn item_01_a_stale_session_cannot_add_a_passkey_start_totp_or_create_an_api_key(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let agent = signed_in(&app, "alice").await;
    app.clock.advance(STALE);
    // The session still works for reading (idle timeout 1 h) …
    assert_eq!(agent.get(&app.url("/account/passkeys")).await.status, 200);

    // … but every change to how the account signs in, or what speaks for it, is refused.
    let options = post(&app, &agent, "/account/passkeys/options", &[]).await;
    assert_ne!(options.status, 200, "no options: {}", options.body);
    assert!(!options.body.contains("ceremony"), "{}", options.body);
    assert!(
        options
            .body
            .contains("/account/login?reauth=1&next=%2Faccount%2Fpasskeys"),
        "the script is told where to sign in again: {}",
        options.body
    );
    // (A stored row without a usable public key: registration options would refuse to list
    // it, so it is planted only after the options were asked for.)
    plant(&app, &alice, "planted-by-alice", "old phone").await;
    let add = post(
        &app,
        &agent,
        "/account/passkeys",
        &[
            ("ceremony", "x"),
            ("credential", "{}"),
            ("name", "mine now"),
        ],
    )
    .await;
    assert!(
        sent_to_reauth(&add, "/account/passkeys"),
        "{} {:?} {}",
        add.status,
        add.location,
        add.body
    );
    let remove = post(
        &app,
        &agent,
        "/account/passkeys/planted-by-alice/delete",
        &[],
    )
    .await;
    assert!(sent_to_reauth(&remove, "/account/passkeys"), "{remove:?}");
    assert_eq!(passkeys_of(&app, &alice).await, ["planted-by-alice"]);
    let begin = post(&app, &agent, "/account/two-factor/begin", &[]).await;
    assert!(sent_to_reauth(&begin, "/account/two-factor"), "{begin:?}");
    assert!(app.state.store.get_totp(&alice).await.unwrap().is_none());
    let key = post(
        &app,
        &agent,
        "/account/api-keys",
        &[("name", "bot"), ("scope", "notes:read"), ("days", "30")],
    )
    .await;
    assert!(sent_to_reauth(&key, "/account/api-keys"), "{key:?}");
    assert_eq!(api_key_count(&app, &alice).await, 0);

    // The sign-in page says why, in words for an ordinary user.
    let login = agent
        .get(&app.url("/account/login?reauth=1&next=%2Faccount%2Fapi-keys"))
        .await;
    assert!(login.body.contains("Confirm it is you"), "{}", login.body);
    assert!(!login.body.contains("admin console"), "{}", login.body);

    // Positive control: signed in again, the same changes go through.
    let again = password_step(&app, &agent, "reauth=1&next=%2Faccount%2Fapi-keys", "alice").await;
    assert_eq!(again.location.as_deref(), Some("/account/api-keys"));
    let remove = post(
        &app,
        &agent,
        "/account/passkeys/planted-by-alice/delete",
        &[],
    )
    .await;
    assert_eq!(
        remove.location.as_deref(),
        Some("/account/passkeys?done=removed")
    );
    assert!(passkeys_of(&app, &alice).await.is_empty());
    let options = post(&app, &agent, "/account/passkeys/options", &[]).await;
    assert_eq!(options.status, 200, "{}", options.body);
    assert!(options.body.contains("ceremony"), "{}", options.body);
    let key = post(
        &app,
        &agent,
        "/account/api-keys",
        &[("name", "bot"), ("scope", "notes:read"), ("days", "30")],
    )
    .await;
    assert_eq!(key.status, 200, "{}", key.body);
    assert_eq!(api_key_count(&app, &alice).await, 1);
    let begin = post(&app, &agent, "/account/two-factor/begin", &[]).await;
    assert_eq!(begin.status, 200, "{}", begin.body);
    assert!(begin.body.contains("totp-secret"), "{}", begin.body);
}

/// Turn on TOTP for `id` (as if done from this session) and return its secret.
async fn totp_for(app: &TestApp, id: &str) -> Vec<u8> {
    turn_on_totp(app, &user(app, id).await).await
}

/// Sign in again with the password and the current code; the final redirect.
pub(super) async fn password_and_code(
    app: &TestApp,
    agent: &FormAgent,
    next: &str,
    who: &str,
    secret: &[u8],
) {
    let q: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let page = password_step(app, agent, &format!("reauth=1&next={q}"), who).await;
    assert_form(&page, "/login/code");
    let mut fields = hidden_inputs(&page.body);
    let code = totp::code_at(secret, totp::step_at(app.clock.now()));
    fields.push(("code".into(), code));
    let done = agent.post_form(&app.url("/login/code"), &fields).await;
    assert_eq!(done.location.as_deref(), Some(next), "{}", done.body);
}

async fn item_01_re_authentication_needs_every_factor_the_user_has_for_admins_too(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let root = app.user("root", PW, "admin").await;
    let bob = app.user("bob", PW, "user").await;

    // Recent by the clock, but signed in with the password alone while two-factor is now
    // on: that is not every factor alice has.
    let agent = signed_in(&app, "alice").await;
    let secret = totp_for(&app, &alice).await;
    let form = [("name", "bot"), ("scope", "notes:read"), ("days", "30")];
    let key = post(&app, &agent, "/account/api-keys", &form).await;
    assert!(sent_to_reauth(&key, "/account/api-keys"), "{key:?}");
    let options = post(&app, &agent, "/account/passkeys/options", &[]).await;
    assert_ne!(options.status, 200, "{}", options.body);
    assert_eq!(api_key_count(&app, &alice).await, 0);
    // Positive control: the password and the code.
    password_and_code(&app, &agent, "/account/api-keys", "alice", &secret).await;
    let key = post(&app, &agent, "/account/api-keys", &form).await;
    assert_eq!(key.status, 200, "{}", key.body);
    assert_eq!(api_key_count(&app, &alice).await, 1);

    // The admin console's changes follow the same rule.
    let admin = signed_in(&app, "root").await;
    let root_secret = totp_for(&app, &root).await;
    let disable = format!("/admin/users/{bob}/disable");
    let refused = post(&app, &admin, &disable, &[]).await;
    assert!(sent_to_reauth(&refused, "/admin/users"), "{refused:?}");
    assert!(user(&app, &bob).await.is_enabled(), "nothing changed");
    let login = admin
        .get(&app.url("/account/login?reauth=1&next=%2Fadmin%2Fusers"))
        .await;
    assert!(login.body.contains("admin console"), "{}", login.body);
    password_and_code(&app, &admin, "/admin/users", "root", &root_secret).await;
    let done = post(&app, &admin, &disable, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!user(&app, &bob).await.is_enabled());
}

/// The `details` of the newest audit event of `kind`.
pub(super) async fn last_details(app: &TestApp, kind: &str) -> serde_json::Value {
    let events = app.audit_of(kind).await;
    let e = events
        .iter()
        .max_by_key(|e| e.ts)
        .unwrap_or_else(|| panic!("no {kind}"));
    e.details.clone()
}

async fn item_01_admin_remedies_and_the_own_password_change_remove_passkeys(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let bob = app.user("bob", PW, "user").await;
    app.user("root", PW, "admin").await;
    plant(&app, &bob, "bobs-key", "bob laptop").await;
    let admin = signed_in(&app, "root").await;

    // Reset two-factor (TOTP on, and a passkey): both go.
    totp_for(&app, &alice).await;
    plant(&app, &alice, "planted-1", "attacker").await;
    let done = remedy(&app, &admin, &alice, "reset-two-factor").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(app.state.store.get_totp(&alice).await.unwrap().is_none());
    assert!(
        passkeys_of(&app, &alice).await.is_empty(),
        "reset-two-factor"
    );
    assert_eq!(
        last_details(&app, "mfa.reset_by_admin").await["passkeys_removed"],
        1
    );

    // Reset two-factor when a passkey is the only second factor: it goes too.
    plant(&app, &alice, "planted-2", "attacker").await;
    let done = remedy(&app, &admin, &alice, "reset-two-factor").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(passkeys_of(&app, &alice).await.is_empty(), "passkey only");

    // Disable: gone, and enabling again does not bring it back. A registration finishing
    // from a session the remedy ended stores nothing (positive control: before, it does).
    plant(&app, &alice, "planted-3", "attacker").await;
    let _held = signed_in(&app, "alice").await;
    let sessions = app.state.store.user_sessions(&alice).await.unwrap();
    let sid = sessions[0].sid.clone();
    let late = passkey_row(&app, &alice, "in-flight", "attacker");
    assert!(app.state.store.add_passkey(&late, &sid).await.unwrap());
    let done = remedy(&app, &admin, &alice, "disable").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(passkeys_of(&app, &alice).await.is_empty(), "disable");
    let late = passkey_row(&app, &alice, "too-late", "attacker");
    assert!(!app.state.store.add_passkey(&late, &sid).await.unwrap());
    assert!(passkeys_of(&app, &alice).await.is_empty(), "session ended");
    assert_eq!(
        last_details(&app, "user.disabled").await["passkeys_removed"],
        2
    );
    let done = remedy(&app, &admin, &alice, "enable").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(passkeys_of(&app, &alice).await.is_empty());

    // Reset password from the console, and from the CLI's path.
    plant(&app, &alice, "planted-4", "attacker").await;
    let done = remedy(&app, &admin, &alice, "reset-password").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(passkeys_of(&app, &alice).await.is_empty(), "reset-password");
    assert_eq!(
        last_details(&app, "user.password_changed").await["passkeys_removed"],
        1
    );
    plant(&app, &alice, "planted-5", "attacker").await;
    admin::set_password(app.state.identity(), "cli", "alice", &Password::new(PW))
        .await
        .unwrap();
    assert!(
        passkeys_of(&app, &alice).await.is_empty(),
        "authz user passwd"
    );

    // Somebody else's passkey is not touched by any of it.
    assert_eq!(passkeys_of(&app, &bob).await, ["bobs-key"]);

    // The user's own password change: kept unless the box is ticked, then removed.
    plant(&app, &alice, "mine", "my phone").await;
    let me = signed_in(&app, "alice").await;
    let page = me.get(&app.url("/account")).await;
    assert!(
        page.body.contains("name=\"remove_passkeys\""),
        "{}",
        page.body
    );
    let change = |new: &'static str| [("password", PW), ("new_password", new), ("confirm", new)];
    let kept = post(
        &app,
        &me,
        "/account/password",
        &change("a first new passphrase"),
    )
    .await;
    assert_eq!(kept.location.as_deref(), Some("/account?done=password"));
    assert_eq!(passkeys_of(&app, &alice).await, ["mine"]);
    let mut ticked = change("a second new passphrase").to_vec();
    ticked[0].1 = "a first new passphrase";
    ticked.push(("remove_passkeys", "on"));
    let removed = post(&app, &me, "/account/password", &ticked).await;
    assert_eq!(
        removed.location.as_deref(),
        Some("/account?done=password-passkeys"),
        "{}",
        removed.body
    );
    assert!(
        passkeys_of(&app, &alice).await.is_empty(),
        "own change, box ticked"
    );
    assert_eq!(passkeys_of(&app, &bob).await, ["bobs-key"]);
}

async fn item_01_admins_see_and_remove_a_users_passkeys(backend: Backend) {
    let app = spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    plant(&app, &alice, "cred-one", "work laptop").await;
    plant(&app, &alice, "cred-two", "security key").await;
    let admin = signed_in(&app, "root").await;

    // The list links to the user's page, which lists the passkeys with a remove action.
    let list = admin.get(&app.url("/admin/users")).await;
    assert!(
        list.body
            .contains(&format!("href=\"/admin/users/{alice}\"")),
        "{}",
        list.body
    );
    let page = admin.get(&app.url(&format!("/admin/users/{alice}"))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("work laptop"), "{}", page.body);
    assert!(page.body.contains("security key"), "{}", page.body);
    let remove = format!("/admin/users/{alice}/passkeys/cred-one/remove");
    assert!(
        page.body.contains(&format!("action=\"{remove}\"")),
        "{}",
        page.body
    );
    // A plain user does not get the page.
    let alice_browser = signed_in(&app, "alice").await;
    let forbidden = alice_browser
        .get(&app.url(&format!("/admin/users/{alice}")))
        .await;
    assert_eq!(forbidden.status, 403);

    // Without the CSRF token, or from a stale session: nothing is removed.
    let no_csrf = admin.post_form(&app.url(&remove), &[]).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    app.clock.advance(STALE);
    let stale = post(&app, &admin, &remove, &[]).await;
    assert!(
        sent_to_reauth(&stale, &format!("/admin/users/{alice}")),
        "{stale:?}"
    );
    assert_eq!(passkeys_of(&app, &alice).await, ["cred-one", "cred-two"]);

    // Signed in again: removed, audited with the administrator as actor.
    let next: String =
        form_urlencoded::byte_serialize(format!("/admin/users/{alice}").as_bytes()).collect();
    let again = password_step(&app, &admin, &format!("reauth=1&next={next}"), "root").await;
    assert_eq!(again.status, 303, "{}", again.body);
    let done = post(&app, &admin, &remove, &[]).await;
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/admin/users/{alice}?done=passkey-removed").as_str()),
        "{}",
        done.body
    );
    assert_eq!(passkeys_of(&app, &alice).await, ["cred-two"]);
    let events = app.audit_events().await;
    let ev = events
        .iter()
        .find(|e| e.kind == "passkey.removed")
        .expect("audited");
    assert_eq!(ev.actor.as_deref(), Some("root"));
    assert_eq!(ev.subject.as_deref(), Some(alice.as_str()));
    // Someone else's credential id under alice's path: not found, nothing removed.
    let bogus = post(
        &app,
        &admin,
        &format!("/admin/users/{alice}/passkeys/no-such-key/remove"),
        &[],
    )
    .await;
    assert_eq!(bogus.status, 404, "{}", bogus.body);
    assert_eq!(passkeys_of(&app, &alice).await, ["cred-two"]);
}

/// Sign in to the console in the browser with the password, continuing to `next`.
async fn browser_password(b: &Browser, site: &str, next: &str) {
    let q: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    b.goto(&format!("{site}/account/login?next={q}"))
        .await
        .unwrap();
    fill(b, "#username", "alice").await;
    fill(b, "#password", PW).await;
    submit(b, "form[action=\"/login\"] button[type=submit]").await;
}

/// Register a passkey from the passkeys page (the session must be fresh).
async fn register(b: &Browser) {
    wait_h1(b, "Passkeys").await;
    fill(b, "#passkey-name", "planted").await;
    click(b, "#passkey-add").await;
    let notice = b.text(&wait_find(b, ".notice-ok").await).await.unwrap();
    assert!(notice.contains("passkey was added"), "{notice}");
}

/// Username-less passkey sign-in: `true` when it signed in, `false` when it was refused.
async fn passkey_sign_in(b: &Browser, site: &str) -> bool {
    b.goto(&format!("{site}/account/login")).await.unwrap();
    click(b, "#passkey-signin").await;
    // The script posts the answer; the page that follows says which it was.
    for _ in 0..200 {
        let src = b.page_source().await.unwrap_or_default();
        if src.contains("<h1>Your account</h1>") {
            return true;
        }
        if src.contains("could not be verified") {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "neither signed in nor refused: {}",
        b.page_source().await.unwrap_or_default()
    );
}

async fn item_01_a_passkey_planted_from_a_stale_session_is_refused_and_no_remedy_leaves_one_in_chromium(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let site = app.base.replace("127.0.0.1", "localhost");
    let alice = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;

    // The attack: a session left open (older than the re-auth window) adds a passkey.
    let b = Browser::start().await.unwrap();
    let authenticator = b.add_virtual_authenticator().await.unwrap();
    browser_password(&b, &site, "/account/passkeys").await;
    wait_h1(&b, "Passkeys").await;
    app.clock.advance(STALE);
    b.goto(&format!("{site}/account/passkeys")).await.unwrap();
    fill(&b, "#passkey-name", "planted").await;
    click(&b, "#passkey-add").await;
    // Refused before the authenticator is asked: sent to sign in again, for this page.
    wait_h1(&b, "Sign in").await;
    let url = b.current_url().await.unwrap();
    assert!(url.contains("reauth=1"), "{url}");
    let lead = b.text(&wait_find(&b, "p.lead").await).await.unwrap();
    assert!(lead.contains("Confirm it is you"), "{lead}");
    assert!(!lead.contains("admin console"), "{lead}");
    let held = b.virtual_credentials(&authenticator).await.unwrap();
    assert_eq!(held.as_array().unwrap().len(), 0, "{held}");
    assert!(passkeys_of(&app, &alice).await.is_empty());

    // Positive control: after signing in again, the passkey is added and signs in — and a
    // passkey sign-in is itself a fresh re-authentication (an API key can be made).
    fill(&b, "#username", "alice").await;
    fill(&b, "#password", PW).await;
    submit(&b, "form[action=\"/login\"] button[type=submit]").await;
    register(&b).await;
    assert_eq!(passkeys_of(&app, &alice).await.len(), 1);
    sign_out(&b).await;
    assert!(passkey_sign_in(&b, &site).await, "the passkey works");
    b.goto(&format!("{site}/account/api-keys")).await.unwrap();
    fill(&b, "#name", "from a passkey session").await;
    click(&b, "input[name=scope][value=\"notes:read\"]").await;
    submit(&b, "form[action=\"/account/api-keys\"] button[type=submit]").await;
    wait_find(&b, "#new-key-secret").await;
    assert_eq!(api_key_count(&app, &alice).await, 1);
    sign_out(&b).await;
    b.quit().await;

    // Each remedy, applied by an administrator: the planted passkey no longer signs in.
    let admin = signed_in(&app, "root").await;
    for action in ["reset-two-factor", "disable", "reset-password"] {
        let b = Browser::start().await.unwrap();
        b.add_virtual_authenticator().await.unwrap();
        browser_password(&b, &site, "/account/passkeys").await;
        register(&b).await;
        sign_out(&b).await;
        assert!(passkey_sign_in(&b, &site).await, "{action}: works before");
        sign_out(&b).await;
        let done = remedy(&app, &admin, &alice, action).await;
        assert!([200, 303].contains(&done.status), "{action}: {}", done.body);
        assert!(!passkey_sign_in(&b, &site).await, "{action}: refused after");
        assert!(passkeys_of(&app, &alice).await.is_empty(), "{action}");
        if action == "disable" {
            let done = remedy(&app, &admin, &alice, "enable").await;
            assert_eq!(done.status, 303);
            assert!(
                !passkey_sign_in(&b, &site).await,
                "enabled again: still gone"
            );
        }
        b.quit().await;
    }
}
