//! Issue 24 findings: see `round3/mod.rs`. The browser sign-in's steps, over HTTP with
//! `FormAgent` (and a software passkey for the WebAuthn steps):
//!
//! - item 2: a sign-in between its steps ends with the credentials it was issued under — a
//!   temporary password's half-done sign-in after the owner chose their own, a phished
//!   password's after an administrator reset password and two-factor, a replayed step, and
//!   disabling or a two-factor reset;
//! - item 1 (last point): after an administrator's reset a passkey alone does not reach
//!   "Choose a new password": the temporary password must be given;
//! - item 7: a TOTP + passkey user finishes a forced change with the passkey as second factor;
//! - item 6: `/account/password` is not a fresh sign-in with factors that were not given;
//! - item 3: `POST /consent` applies the request's and the roles' second-factor rules.

pub(crate) mod soft_passkey;

use authz::clock::Clock;
use authz::identity::admin::{PasswordChange, change_password};
use authz::identity::{passkeys, totp, two_factor};
use authz::store::{AuthMethod, User};
use serde_json::Value;
use shared::secret::Password;
use testkit::agent::{FormAgent, Page, hidden_inputs};
use testkit::both_backends;

use super::flows::submit;
use crate::support::{
    Backend, CB, TestApp, assert_form, expect_token, jwt_claims, pkce, query, turn_on_totp,
};
use soft_passkey::SoftPasskey;

both_backends!(
    item_02_a_temporary_password_gives_no_session_after_the_owner_chose_their_own,
    item_02_a_phished_password_cannot_choose_the_new_one_after_a_full_reset,
    item_02_a_replayed_pending_sign_in_is_refused,
    item_02_disabling_and_a_two_factor_reset_end_pending_sign_ins,
    item_01_after_an_admin_reset_a_passkey_alone_does_not_choose_the_new_password,
    item_07_a_totp_and_passkey_user_finishes_a_forced_change_with_the_passkey,
    item_06_a_password_change_without_the_code_does_not_refresh_the_admin_reauth_window,
    item_06_a_password_change_does_not_claim_factors_that_were_not_given,
    item_03_consent_applies_the_second_factor_rules_of_roles_and_acr_values,
);

const PW: &str = "correct horse battery staple";
const TEMP: &str = "temporary password 12345";
const MINE: &str = "the owner's own new passphrase";
const THEIRS: &str = "the attacker's chosen passphrase";
const CONSOLE: &str = "/account/login";

/// WebAuthn needs a domain as RP ID: this server's issuer is `http://localhost:<port>`.
async fn spawn_localhost(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await
}

async fn user(app: &TestApp, name: &str) -> User {
    let found = app.state.store.get_user_by_username(name).await.unwrap();
    found.unwrap()
}

/// Turn two-factor on for `name`: the secret (the confirming code's step is spent).
async fn enrol(app: &TestApp, name: &str) -> Vec<u8> {
    let u = user(app, name).await;
    turn_on_totp(app, &u).await
}

fn code_now(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(secret, totp::step_at(app.clock.now()))
}

fn wrong_code(good: &str) -> &'static str {
    if good == "000000" { "111111" } else { "000000" }
}

/// An administrator's reset of `name` to `TEMP`, to be changed at the next sign-in.
async fn admin_reset(app: &TestApp, name: &str) {
    let u = user(app, name).await;
    let reset = PasswordChange::AdminReset { temporary: true };
    let temp = Password::new(TEMP);
    change_password(app.state.identity(), "root", &u, &temp, reset)
        .await
        .unwrap();
}

/// A passkey of `name`'s, registered through the account logic (what `/account/passkeys`
/// does after its own checks) and answered by a new software authenticator.
pub(crate) async fn passkey_for(app: &TestApp, name: &str) -> SoftPasskey {
    let u = user(app, name).await;
    let (options, ceremony) = passkeys::start_registration(app.state.identity(), &u)
        .await
        .unwrap();
    let origin = url::Url::parse(&app.state.config.issuer)
        .unwrap()
        .origin()
        .ascii_serialization();
    let (key, credential) = SoftPasskey::register(&origin, &options);
    // Registration happens from a live session of the user's (it stores nothing otherwise).
    let ctx = authz::events::audit::RequestContext {
        ip: None,
        now: app.clock.now(),
        dpop_jkt: None,
    };
    let held =
        authz::identity::session::start_grant(app.state.identity(), &u, "test", &["pwd"], &ctx)
            .await
            .unwrap()
            .expect("a live session");
    passkeys::finish_registration(
        app.state.identity(),
        &u,
        &held.sid,
        &ceremony,
        &credential,
        "soft",
    )
    .await
    .unwrap();
    key
}

/// Sign alice in with the temporary password `temp` and choose `MINE`: signed in.
async fn choose_mine(app: &TestApp, agent: &FormAgent, temp: &str) {
    let page = password_step(app, agent, CONSOLE, "alice", temp).await;
    let done = submit(app, agent, &page, "/login/password", &new_password(MINE)).await;
    assert_eq!(done.status, 303, "{}", done.body);
}

/// The half-done sign-in of `agent` ended (`late` its last answer): no session, and the
/// password form again.
fn ended(agent: &FormAgent, late: &Page, what: &str) {
    assert!(
        agent.cookie("authz_session").is_none(),
        "{what}: {} {:?}",
        late.status,
        late.location
    );
    assert!(
        late.body.contains("action=\"/login\""),
        "sign in again: {}",
        late.body
    );
}

/// Open `path` (a page with the password form) and sign in as `name` with `pw`.
async fn password_step(app: &TestApp, agent: &FormAgent, path: &str, name: &str, pw: &str) -> Page {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        app.url(path)
    };
    let page = agent.get(&url).await;
    submit(
        app,
        agent,
        &page,
        "/login",
        &[("username", name), ("password", pw)],
    )
    .await
}

/// Sign in with `key` from `page` (the password form or the code page) as `passkeys.js`
/// does: the options, the authenticator's answer, the form POST.
pub(crate) async fn passkey_step(
    app: &TestApp,
    agent: &FormAgent,
    page: &Page,
    key: &SoftPasskey,
) -> Page {
    let mut fields = hidden_inputs(&page.body);
    let options = agent
        .post_form(&app.url("/login/passkey/options"), &fields)
        .await;
    assert_eq!(options.status, 200, "{}", options.body);
    let answer: Value = serde_json::from_str(&options.body).unwrap();
    fields.push((
        "ceremony".into(),
        answer["ceremony"].as_str().unwrap().into(),
    ));
    fields.push(("mode".into(), answer["mode"].as_str().unwrap().into()));
    fields.push(("credential".into(), key.assert(&answer["options"])));
    agent.post_form(&app.url("/login/passkey"), &fields).await
}

fn new_password(p: &str) -> [(&'static str, &str); 2] {
    [("new_password", p), ("confirm", p)]
}

fn csrf_of(body: &str) -> (String, String) {
    hidden_inputs(body)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .expect("a CSRF field")
}

/// Does `pw` sign `name` in (to the next step or a session)?
async fn password_works(app: &TestApp, name: &str, pw: &str) -> bool {
    let page = password_step(app, &FormAgent::new(), CONSOLE, name, pw).await;
    !page.body.contains("incorrect")
}

/// The `amr` of `user_id`'s newest browser session.
async fn newest_amr(app: &TestApp, user_id: &str) -> Vec<String> {
    let sessions = app.state.store.user_sessions(user_id);
    let sessions = sessions.await.unwrap();
    let newest = sessions
        .iter()
        .filter(|s| s.client_id.is_none())
        .max_by_key(|s| (s.created_at, s.sid.clone()));
    newest.map(|s| s.amr.clone()).unwrap_or_default()
}

/// POST `fields` to `path` from another browser holding exactly `cookies` (copied): whether a
/// session cookie was set, and the body.
async fn replay(
    app: &TestApp,
    path: &str,
    cookies: &[(&str, String)],
    fields: &[(String, String)],
) -> (bool, String) {
    let cookie = cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let resp = app
        .http
        .post(app.url(path))
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .unwrap();
    let signed_in = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("authz_session=") && !v.starts_with("authz_session=;"));
    (signed_in, resp.text().await.unwrap())
}

/// Sign root in to the admin console, reset `name`'s password there (the temporary password
/// it shows) and then their two-factor.
async fn admin_full_reset(app: &TestApp, name: &str) -> String {
    let root = FormAgent::new();
    let next = "/account/login?next=%2Fadmin%2Fusers";
    let signed = password_step(app, &root, next, "root", PW).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let users = root.get(&app.url("/admin/users")).await;
    let csrf = csrf_of(&users.body);
    let id = user(app, name).await.id;
    let action = |a: &str| app.url(&format!("/admin/users/{id}/{a}"));
    let reset = root
        .post_form(&action("reset-password"), std::slice::from_ref(&csrf))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let shown = reset.body.split("data-name=\"password\">").nth(1).unwrap();
    let temporary = shown.split('<').next().unwrap().trim().to_owned();
    let two = root.post_form(&action("reset-two-factor"), &[csrf]).await;
    assert_eq!(two.status, 303, "{}", two.body);
    temporary
}

async fn item_02_a_temporary_password_gives_no_session_after_the_owner_chose_their_own(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    admin_reset(&app, "alice").await;
    let before = user(&app, "alice").await;
    // Someone who learnt the temporary password signs in with it: "Choose a new password".
    let attacker = FormAgent::new();
    let waiting = password_step(&app, &attacker, CONSOLE, "alice", TEMP).await;
    assert_form(&waiting, "/login/password");
    // alice does the same and chooses her own (positive control: her sign-in goes through).
    let alice = FormAgent::new();
    choose_mine(&app, &alice, TEMP).await;
    assert!(alice.cookie("authz_session").is_some());
    // The attacker's half-done sign-in was issued under the temporary password: it ends with it.
    let late = submit(
        &app,
        &attacker,
        &waiting,
        "/login/password",
        &new_password(THEIRS),
    )
    .await;
    ended(
        &attacker,
        &late,
        "the temporary password's sign-in got a session after alice chose her own",
    );
    assert!(password_works(&app, "alice", MINE).await);
    assert!(!password_works(&app, "alice", THEIRS).await);
    // A change already under way when alice's committed (it read the temporary password) does
    // not overwrite hers: the user's own change is a compare-and-set.
    let raced = change_password(
        app.state.identity(),
        "alice",
        &before,
        &Password::new(THEIRS),
        PasswordChange::ByUser,
    )
    .await;
    assert!(
        matches!(raced, Err(authz::error::Error::Conflict(_))),
        "{raced:?}"
    );
    assert!(password_works(&app, "alice", MINE).await);
}

async fn item_02_a_phished_password_cannot_choose_the_new_one_after_a_full_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    enrol(&app, "alice").await;
    // The attacker phished alice's password (not her authenticator): the code page.
    let attacker = FormAgent::new();
    let code_page = password_step(&app, &attacker, CONSOLE, "alice", PW).await;
    assert_form(&code_page, "/login/code");
    // Incident response: an administrator resets alice's password and her two-factor.
    let temporary = admin_full_reset(&app, "alice").await;
    // The half-done sign-in of the old password cannot choose alice's new one.
    let mut fields = hidden_inputs(&code_page.body);
    fields.extend(new_password(THEIRS).map(|(k, v)| (k.to_owned(), v.to_owned())));
    let late = attacker
        .post_form(&app.url("/login/password"), &fields)
        .await;
    assert!(
        attacker.cookie("authz_session").is_none(),
        "the phished password's sign-in chose the new password: {} {:?}",
        late.status,
        late.location
    );
    assert!(
        !password_works(&app, "alice", THEIRS).await,
        "the password changed"
    );
    // alice, with the temporary password, chooses her own (positive control).
    let alice = FormAgent::new();
    choose_mine(&app, &alice, &temporary).await;
    assert!(alice.cookie("authz_session").is_some());
}

async fn item_02_a_replayed_pending_sign_in_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    let secret = enrol(&app, "alice").await;
    let agent = FormAgent::new();
    let code_page = password_step(&app, &agent, CONSOLE, "alice", PW).await;
    let first = agent.cookie("authz_pending").expect("a pending sign-in");
    let csrf = agent.cookie("authz_csrf").expect("a CSRF cookie");
    // A wrong code, then the right one: signed in (positive control).
    let good = code_now(&app, &secret);
    let again = submit(
        &app,
        &agent,
        &code_page,
        "/login/code",
        &[("code", wrong_code(&good))],
    )
    .await;
    assert!(again.body.contains("not valid"), "{}", again.body);
    let done = submit(&app, &agent, &again, "/login/code", &[("code", &good)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    // The first step's cookie, copied and replayed with the next code: spent.
    app.clock.advance(totp::STEP_SECS);
    let mut fields = hidden_inputs(&code_page.body);
    fields.push(("code".into(), code_now(&app, &secret)));
    let cookies = [("authz_pending", first), ("authz_csrf", csrf.clone())];
    let (signed_in, body) = replay(&app, "/login/code", &cookies, &fields).await;
    assert!(!signed_in, "a replayed pending sign-in got a session");
    assert!(body.contains("action=\"/login\""), "sign in again: {body}");

    // The last step's cookie (choosing a new password after a reset), replayed after the owner
    // finished: it needs no secret at all, and is refused.
    admin_reset(&app, "alice").await;
    let owner = FormAgent::new();
    let code_page = password_step(&app, &owner, CONSOLE, "alice", TEMP).await;
    let page = submit(
        &app,
        &owner,
        &code_page,
        "/login/code",
        &[("code", &code_now(&app, &secret))],
    )
    .await;
    let last = owner.cookie("authz_pending").expect("a pending sign-in");
    let csrf = owner.cookie("authz_csrf").unwrap();
    let done = submit(&app, &owner, &page, "/login/password", &new_password(MINE)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mut fields = hidden_inputs(&page.body);
    fields.extend(new_password(THEIRS).map(|(k, v)| (k.to_owned(), v.to_owned())));
    let cookies = [("authz_pending", last), ("authz_csrf", csrf)];
    let (signed_in, _) = replay(&app, "/login/password", &cookies, &fields).await;
    assert!(!signed_in, "a replayed new-password step got a session");
    assert!(password_works(&app, "alice", MINE).await);
}

async fn item_02_disabling_and_a_two_factor_reset_end_pending_sign_ins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    admin_reset(&app, "alice").await;
    // A sign-in waiting for its new password; the administrator disables alice, then enables
    // her again: the waiting sign-in has ended.
    let agent = FormAgent::new();
    let waiting = password_step(&app, &agent, CONSOLE, "alice", TEMP).await;
    let alice = user(&app, "alice").await.id;
    let rows = format!("SELECT COUNT(*) FROM pending_signins WHERE user_id = '{alice}'");
    assert_eq!(app.sql_count(&rows).await, 1);
    app.set_disabled("root", "alice", true).await;
    assert_eq!(app.sql_count(&rows).await, 0, "ended with disabling");
    app.set_disabled("root", "alice", false).await;
    let late = submit(
        &app,
        &agent,
        &waiting,
        "/login/password",
        &new_password(THEIRS),
    )
    .await;
    assert!(
        agent.cookie("authz_session").is_none(),
        "a sign-in from before disabling went on: {} {:?}",
        late.status,
        late.location
    );
    // Positive control: signing in again works.
    choose_mine(&app, &agent, TEMP).await;

    // A sign-in waiting for its code; the administrator resets alice's two-factor.
    let secret = enrol(&app, "alice").await;
    let agent = FormAgent::new();
    let code_page = password_step(&app, &agent, CONSOLE, "alice", MINE).await;
    assert_form(&code_page, "/login/code");
    assert_eq!(app.sql_count(&rows).await, 1);
    assert!(
        two_factor::disable(
            &*app.state.store,
            &app.state.events,
            &user(&app, "alice").await
        )
        .await
        .unwrap()
    );
    assert_eq!(
        app.sql_count(&rows).await,
        0,
        "ended with the two-factor reset"
    );
    let late = submit(
        &app,
        &agent,
        &code_page,
        "/login/code",
        &[("code", &code_now(&app, &secret))],
    )
    .await;
    ended(
        &agent,
        &late,
        "a sign-in from before the two-factor reset went on",
    );
    // Positive control: the password alone signs in now.
    let page = password_step(&app, &agent, CONSOLE, "alice", MINE).await;
    assert_eq!(page.status, 303, "{}", page.body);
}

async fn item_01_after_an_admin_reset_a_passkey_alone_does_not_choose_the_new_password(
    backend: Backend,
) {
    let app = spawn_localhost(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let bob = app.user("bob", PW, "user").await;
    admin_reset(&app, "alice").await;
    // A passkey of alice's (registered after the reset here, so this holds whether or not a
    // reset also removes passkeys).
    let key = passkey_for(&app, "alice").await;
    let agent = FormAgent::new();
    let login = agent.get(&app.url(CONSOLE)).await;
    let page = passkey_step(&app, &agent, &login, &key).await;
    assert!(
        !page.body.contains("action=\"/login/password\""),
        "a passkey alone reached \"Choose a new password\": {}",
        page.body
    );
    assert!(
        page.body.contains("action=\"/login\""),
        "the password form: {}",
        page.body
    );
    assert!(agent.cookie("authz_session").is_none());
    // With the temporary password, alice chooses her new one (positive control).
    let next = submit(
        &app,
        &agent,
        &page,
        "/login",
        &[("username", "alice"), ("password", TEMP)],
    )
    .await;
    let done = submit(&app, &agent, &next, "/login/password", &new_password(MINE)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(newest_amr(&app, &alice).await, ["pwd"]);
    // bob, without a reset, signs in with his passkey alone (positive control).
    let key = passkey_for(&app, "bob").await;
    let agent = FormAgent::new();
    let login = agent.get(&app.url(CONSOLE)).await;
    let done = passkey_step(&app, &agent, &login, &key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(newest_amr(&app, &bob).await, ["hwk", "mfa", "user"]);
}

async fn item_07_a_totp_and_passkey_user_finishes_a_forced_change_with_the_passkey(
    backend: Backend,
) {
    let app = spawn_localhost(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let secret = enrol(&app, "alice").await;
    admin_reset(&app, "alice").await;
    let key = passkey_for(&app, "alice").await;
    // The temporary password, then the passkey as the second factor: "Choose a new password",
    // and choosing it finishes the sign-in.
    let agent = FormAgent::new();
    let code_page = password_step(&app, &agent, CONSOLE, "alice", TEMP).await;
    let page = passkey_step(&app, &agent, &code_page, &key).await;
    assert_form(&page, "/login/password");
    let done = submit(&app, &agent, &page, "/login/password", &new_password(MINE)).await;
    assert_eq!(
        done.status, 303,
        "the passkey did not count as the second factor: {}",
        done.body
    );
    assert_eq!(newest_amr(&app, &alice).await, ["hwk", "mfa", "pwd"]);

    // Passkey first: the temporary password is still asked for, then the passkey again as the
    // second factor.
    admin_reset(&app, "alice").await;
    let key = passkey_for(&app, "alice").await;
    let agent = FormAgent::new();
    let login = agent.get(&app.url(CONSOLE)).await;
    let page = passkey_step(&app, &agent, &login, &key).await;
    let code_page = submit(
        &app,
        &agent,
        &page,
        "/login",
        &[("username", "alice"), ("password", TEMP)],
    )
    .await;
    let page = passkey_step(&app, &agent, &code_page, &key).await;
    let done = submit(&app, &agent, &page, "/login/password", &new_password(PW)).await;
    assert_eq!(done.status, 303, "{}", done.body);

    // Positive control: with the code from the app instead.
    admin_reset(&app, "alice").await;
    let agent = FormAgent::new();
    let code_page = password_step(&app, &agent, CONSOLE, "alice", TEMP).await;
    let code = code_now(&app, &secret);
    let page = submit(&app, &agent, &code_page, "/login/code", &[("code", &code)]).await;
    let done = submit(&app, &agent, &page, "/login/password", &new_password(MINE)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(newest_amr(&app, &alice).await, ["pwd", "otp"]);
}

/// Change the signed-in user's password at `/account/password` from `old` to `new`, with
/// `code` if given: the answer.
async fn change_own_password(
    app: &TestApp,
    agent: &FormAgent,
    old: &str,
    new: &str,
    code: Option<&str>,
) -> Page {
    let account = agent.get(&app.url("/account")).await;
    assert_eq!(account.status, 200, "{}", account.body);
    let mut fields = vec![
        csrf_of(&account.body),
        ("password".into(), old.into()),
        ("new_password".into(), new.into()),
        ("confirm".into(), new.into()),
    ];
    if let Some(c) = code {
        fields.push(("code".into(), c.into()));
    }
    agent
        .post_form(&app.url("/account/password"), &fields)
        .await
}

/// Disable `name` from root's admin console: the answer.
async fn admin_disable(app: &TestApp, root: &FormAgent, name: &str) -> Page {
    let users = root.get(&app.url("/admin/users")).await;
    assert_eq!(users.status, 200, "{}", users.body);
    let id = user(app, name).await.id;
    let url = app.url(&format!("/admin/users/{id}/disable"));
    root.post_form(&url, &[csrf_of(&users.body)]).await
}

async fn item_06_a_password_change_without_the_code_does_not_refresh_the_admin_reauth_window(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.user("root", PW, "admin").await;
    app.user("alice", PW, "user").await;
    let secret = enrol(&app, "root").await;
    let root = FormAgent::new();
    let code_page = password_step(&app, &root, "/account/login?next=%2Fadmin", "root", PW).await;
    let signed = submit(
        &app,
        &root,
        &code_page,
        "/login/code",
        &[("code", &code_now(&app, &secret))],
    )
    .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    // Eleven minutes on, an administrator's change needs a fresh sign-in; changing the
    // password with the password alone is not one.
    app.clock.advance(11 * 60);
    let changed = change_own_password(&app, &root, PW, MINE, None).await;
    let stale = admin_disable(&app, &root, "alice").await;
    assert!(
        stale
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with("/account/login?reauth=1")),
        "a password change alone refreshed the re-authentication window ({}): {} {:?}",
        changed.status,
        stale.status,
        stale.location
    );
    assert!(user(&app, "alice").await.is_enabled(), "nothing changed");
    // With the code as well it is a fresh sign-in: the change goes through (positive control).
    let code = code_now(&app, &secret);
    let changed = change_own_password(&app, &root, PW, MINE, Some(&code)).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let done = admin_disable(&app, &root, "alice").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!user(&app, "alice").await.is_enabled());
}

async fn item_06_a_password_change_does_not_claim_factors_that_were_not_given(backend: Backend) {
    let app = spawn_localhost(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let bob = app.user("bob", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "openid")]);
    let secret = enrol(&app, "alice").await;
    // alice signs in with her password and a code: the ID token says so (positive control).
    let agent = FormAgent::new();
    let code_page = password_step(&app, &agent, &url, "alice", PW).await;
    let next = submit(
        &app,
        &agent,
        &code_page,
        "/login/code",
        &[("code", &code_now(&app, &secret))],
    )
    .await;
    let id = id_token(&app, &agent, next, &verifier).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp"]));
    // Her two-factor is turned off (her session stands); she changes her password, which
    // needs no code now. Her session must not say a code was given with it.
    assert!(
        two_factor::disable(
            &*app.state.store,
            &app.state.events,
            &user(&app, "alice").await
        )
        .await
        .unwrap()
    );
    app.clock.advance(300);
    let changed = change_own_password(&app, &agent, PW, MINE, None).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(newest_amr(&app, &alice).await, ["pwd"]);
    let id = id_token(&app, &agent, agent.get(&url).await, &verifier).await;
    assert_eq!(id["amr"], serde_json::json!(["pwd"]), "{id}");
    assert_eq!(id["acr"], "pwd");

    // bob signed in with a passkey (two factors in one); his password change proves the
    // password only, so his new session is not multi-factor.
    let key = passkey_for(&app, "bob").await;
    let agent = FormAgent::new();
    let login = agent.get(&app.url(CONSOLE)).await;
    let done = passkey_step(&app, &agent, &login, &key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let changed = change_own_password(&app, &agent, PW, MINE, None).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(newest_amr(&app, &bob).await, ["pwd"]);
}

/// Approve `request` at `POST /consent` directly (a consent form of the user's own making,
/// with the CSRF token of any of the site's forms).
async fn approve(app: &TestApp, agent: &FormAgent, request: String) -> Page {
    let page = agent.get(&app.url(CONSOLE)).await;
    let fields = [
        csrf_of(&page.body),
        ("request".to_owned(), request),
        ("decision".to_owned(), "approve".to_owned()),
    ];
    agent.post_form(&app.url("/consent"), &fields).await
}

/// Follow `page` through consent to the client, redeem the code: the ID token's claims.
async fn id_token(app: &TestApp, agent: &FormAgent, mut page: Page, verifier: &str) -> Value {
    for _ in 0..5 {
        match page.status {
            303 | 302 => {
                let loc = page.location.clone().unwrap();
                if loc.starts_with(CB) {
                    let code = &query(&loc)["code"];
                    let t = expect_token(app.redeem("rp", code, verifier).await).await;
                    return jwt_claims(t["id_token"].as_str().unwrap());
                }
                page = agent.get(&app.url(&loc)).await;
            }
            200 if page.body.contains("action=\"/consent\"") => {
                page = submit(app, agent, &page, "/consent", &[("decision", "approve")]).await;
            }
            _ => panic!("flow stopped at {} {}", page.status, page.body),
        }
    }
    panic!("too many steps")
}

async fn item_03_consent_applies_the_second_factor_rules_of_roles_and_acr_values(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.mfa.required_roles = vec!["admin".into()]).await;
    app.user("root", PW, "admin").await;
    app.user("bob", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let (verifier, challenge) = pkce();
    let plain = app.authorize_url("rp", &challenge, &[("scope", "openid")]);
    let mfa = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "openid"), ("acr_values", "mfa")],
    );
    let raw = |url: &str| url.split_once('?').unwrap().1.to_owned();
    let got_code = |p: &Page| p.location.as_deref().is_some_and(|l| l.starts_with(CB));

    // root's role requires a second factor and he has none: signing in ends on the set-up
    // page (his session stands, so he can set it up). A consent form of his own making gets
    // no code either.
    let agent = FormAgent::new();
    let page = password_step(&app, &agent, &plain, "root", PW).await;
    assert_eq!(page.status, 403, "{}", page.body);
    let forged = approve(&app, &agent, raw(&plain)).await;
    assert!(
        !got_code(&forged),
        "a password-only session of an MFA role got a code: {:?}",
        forged.location
    );

    // bob signs in with his password: a plain request gets its code (positive control) …
    let agent = FormAgent::new();
    let page = password_step(&app, &agent, &plain, "bob", PW).await;
    let id = id_token(&app, &agent, page, &verifier).await;
    assert_eq!(id["acr"], "pwd");
    // … one that asks for a second factor does not, also when approved directly.
    let forged = approve(&app, &agent, raw(&mfa)).await;
    assert!(
        !got_code(&forged),
        "acr_values=mfa answered with a password-only session: {:?}",
        forged.location
    );
    let approved = approve(&app, &agent, raw(&plain)).await;
    assert!(
        got_code(&approved),
        "{} {:?}",
        approved.status,
        approved.location
    );
}
