//! Two-factor sign-in through the real pages (issue 17), on both backends: the code page after
//! the password, codes counted toward the per-user lockout and never accepted twice, recovery
//! codes once each, `amr`/`acr` in the tokens and discovery, `acr_values=mfa` stepping up,
//! `[mfa] required_roles`, the new password after an administrator's reset, and the console's
//! sign-in rules (redirects, CSRF, `next` kept on this site, the 403 page, re-authentication).

use authz::clock::Clock;
use authz::identity::admin::{PasswordChange, change_password};
use authz::identity::totp;
use authz::store::{AuthMethod, User};
use serde_json::Value;
use shared::secret::Password;
use testkit::agent::{FormAgent, Page, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, TestApp, expect_token, jwt_claims, pkce, query};
use crate::two_factor::unbase32;

both_backends!(
    the_code_page_follows_the_password_and_tokens_say_otp,
    code_failures_lock_the_account_like_passwords,
    acr_values_mfa_steps_up_and_roles_can_require_it,
    an_admin_reset_makes_the_user_choose_a_new_password,
    console_sign_in_rules,
);

const PW: &str = "correct horse battery staple";

/// Enrol `username` (already created) and return a function giving the current code.
async fn enrol(app: &TestApp, username: &str) -> (User, Vec<u8>, Vec<String>) {
    let user = app
        .state
        .store
        .get_user_by_username(username)
        .await
        .unwrap()
        .unwrap();
    let e = app.two_factor_begin(&user).await.unwrap();
    let secret = unbase32(&e.secret_base32);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    let recovery = app.two_factor_confirm(&user, &code).await.unwrap();
    // The confirming code is spent: move to the next step for the sign-ins.
    app.clock.advance(totp::STEP_SECS);
    (user, secret, recovery)
}

fn code_now(app: &TestApp, secret: &[u8]) -> String {
    totp::code_at(secret, totp::step_at(app.clock.now()))
}

/// Open `url` and submit the password form; the page that follows (a code page, a redirect).
async fn password_step(app: &TestApp, agent: &FormAgent, url: &str, user: &str, pw: &str) -> Page {
    let page = agent.get(url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("action=\"/login\""), "{}", page.body);
    let mut fields = hidden_inputs(&page.body);
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), pw.into()));
    agent.post_form(&app.url("/login"), &fields).await
}

async fn code_step(app: &TestApp, agent: &FormAgent, code_page: &Page, code: &str) -> Page {
    assert!(
        code_page.body.contains("action=\"/login/code\""),
        "a code page: {} {}",
        code_page.status,
        code_page.body
    );
    let mut fields = hidden_inputs(&code_page.body);
    fields.push(("code".into(), code.into()));
    agent.post_form(&app.url("/login/code"), &fields).await
}

/// Follow redirects on this server and approve consent; the client's redirect.
async fn finish_flow(app: &TestApp, agent: &FormAgent, mut page: Page) -> String {
    for _ in 0..5 {
        match page.status {
            303 | 302 => {
                let loc = page.location.clone().unwrap();
                if !loc.starts_with('/') {
                    return loc;
                }
                page = agent.get(&app.url(&loc)).await;
            }
            200 if page.body.contains("action=\"/consent\"") => {
                let mut fields = hidden_inputs(&page.body);
                fields.push(("decision".into(), "approve".into()));
                page = agent.post_form(&app.url("/consent"), &fields).await;
            }
            _ => panic!("flow stopped at {} {}", page.status, page.body),
        }
    }
    panic!("too many steps")
}

/// Redeem the code of a client redirect: the token response.
async fn tokens(app: &TestApp, location: &str, verifier: &str) -> Value {
    let q = query(location);
    expect_token(app.redeem("rp", &q["code"], verifier).await).await
}

async fn the_code_page_follows_the_password_and_tokens_say_otp(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.user("bob", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let (_, secret, recovery) = enrol(&app, "alice").await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "openid notes:read")]);

    // The password alone signs nobody in: the code page comes, and no session cookie yet.
    let agent = FormAgent::new();
    let code_page = password_step(&app, &agent, &url, "alice", PW).await;
    assert_eq!(code_page.status, 200);
    assert!(agent.cookie("authz_session").is_none());
    // A wrong code: the page again, with a message.
    let good = code_now(&app, &secret);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    let again = code_step(&app, &agent, &code_page, wrong).await;
    assert!(again.body.contains("not valid"), "{}", again.body);
    // The right one: on to consent and the client.
    let next = code_step(&app, &agent, &again, &good).await;
    assert_eq!(next.status, 303, "{}", next.body);
    let loc = finish_flow(&app, &agent, next).await;
    let t = tokens(&app, &loc, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(id["acr"], "mfa");
    let at = jwt_claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(at["acr"], "mfa");

    // The same code in another sign-in (another browser) is refused: a replay.
    let other = FormAgent::new();
    let page = password_step(&app, &other, &url, "alice", PW).await;
    let replay = code_step(&app, &other, &page, &good).await;
    assert_eq!(replay.status, 200);
    assert!(replay.body.contains("not valid"), "{}", replay.body);
    // A recovery code works once …
    let ok = code_step(&app, &other, &replay, &recovery[0]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let third = FormAgent::new();
    let page = password_step(&app, &third, &url, "alice", PW).await;
    let used = code_step(&app, &third, &page, &recovery[0]).await;
    assert!(
        used.body.contains("not valid"),
        "a recovery code works once"
    );
    let kinds = app.audit_kinds().await;
    for k in [
        "mfa.code_replayed",
        "mfa.recovery_code_used",
        "mfa.code_failed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k}: {kinds:?}");
    }

    // Positive control beside it: bob, without two-factor, signs in with the password alone
    // and his tokens say so.
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "openid notes:read")]);
    let agent = FormAgent::new();
    let next = password_step(&app, &agent, &url, "bob", PW).await;
    assert_eq!(next.status, 303, "no code page for bob");
    let loc = finish_flow(&app, &agent, next).await;
    let t = tokens(&app, &loc, &verifier).await;
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["acr"], "pwd");

    // Discovery lists the classes and the claims.
    let meta: Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        meta["acr_values_supported"],
        serde_json::json!(["pwd", "mfa"])
    );
    for c in ["amr", "acr"] {
        assert!(
            meta["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == c),
            "{c} in claims_supported"
        );
    }
}

async fn code_failures_lock_the_account_like_passwords(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.browser.login_max_failures = 3).await;
    app.user("alice", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let (_, secret, _) = enrol(&app, "alice").await;
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "openid")]);
    let agent = FormAgent::new();
    let mut page = password_step(&app, &agent, &url, "alice", PW).await;
    let good = code_now(&app, &secret);
    let wrong = if good == "000000" { "111111" } else { "000000" };
    // The password counted once; two wrong codes spend the budget of three.
    for _ in 0..2 {
        page = code_step(&app, &agent, &page, wrong).await;
    }
    assert!(
        page.body.contains("sign-in is paused"),
        "locked after the budget: {}",
        page.body
    );
    // Now even the right password and code do not get in.
    let agent = FormAgent::new();
    let locked = password_step(&app, &agent, &url, "alice", PW).await;
    assert!(locked.body.contains("sign-in is paused"), "{}", locked.body);
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "login.locked"));

    // Positive control: after the lock, the password and a fresh code sign in.
    app.clock.advance(3600);
    let agent = FormAgent::new();
    let page = password_step(&app, &agent, &url, "alice", PW).await;
    let ok = code_step(&app, &agent, &page, &code_now(&app, &secret)).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
}

async fn acr_values_mfa_steps_up_and_roles_can_require_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.mfa.required_roles = vec!["admin".into()]).await;
    app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let (verifier, challenge) = pkce();
    let plain = app.authorize_url("rp", &challenge, &[("scope", "openid")]);
    let mfa = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "openid"), ("acr_values", "mfa")],
    );

    // alice has no second factor: acr_values=mfa cannot be met; she is told how to set it up.
    let agent = FormAgent::new();
    let page = password_step(&app, &agent, &mfa, "alice", PW).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("/account/two-factor"), "{}", page.body);
    // … while the same request without acr_values goes through (positive control).
    let loc = finish_flow(&app, &agent, agent.get(&plain).await).await;
    assert!(query(&loc).contains_key("code"));

    // She sets it up; her password-only session is not enough for acr_values=mfa: step up.
    let (_, secret, _) = enrol(&app, "alice").await;
    let step_up = agent.get(&mfa).await;
    assert!(
        step_up.body.contains("action=\"/login\""),
        "login again: {}",
        step_up.body
    );
    let mut fields = hidden_inputs(&step_up.body);
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PW.into()));
    let code_page = agent.post_form(&app.url("/login"), &fields).await;
    let next = code_step(&app, &agent, &code_page, &code_now(&app, &secret)).await;
    let loc = finish_flow(&app, &agent, next).await;
    let t = tokens(&app, &loc, &verifier).await;
    assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["acr"], "mfa");

    // root's role requires two-factor: without it, no code for any client, but the account
    // page stays reachable to set it up.
    let agent = FormAgent::new();
    let page = password_step(&app, &agent, &plain, "root", PW).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("Set up two-factor sign-in"));
    let again = agent.get(&plain).await;
    assert_eq!(again.status, 403, "still refused: {}", again.body);
    let account = agent.get(&app.url("/account/two-factor")).await;
    assert_eq!(account.status, 200, "{}", account.body);
}

async fn an_admin_reset_makes_the_user_choose_a_new_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let user = app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let temporary = Password::new("temporary password 12345");
    let reset = PasswordChange::AdminReset { temporary: true };
    change_password(app.state.identity(), "root", &user, &temporary, reset)
        .await
        .unwrap();
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "openid")]);
    let agent = FormAgent::new();
    let page = password_step(&app, &agent, &url, "alice", temporary.expose()).await;
    assert!(
        page.body.contains("action=\"/login/password\""),
        "{}",
        page.body
    );
    assert!(agent.cookie("authz_session").is_none(), "not signed in yet");
    let submit = |new: &str, confirm: &str| {
        let mut fields = hidden_inputs(&page.body);
        fields.push(("new_password".into(), new.into()));
        fields.push(("confirm".into(), confirm.into()));
        fields
    };
    // Too short, or not repeated: the page again.
    let short = agent
        .post_form(&app.url("/login/password"), &submit("short", "short"))
        .await;
    assert!(short.body.contains("cannot be used"), "{}", short.body);
    let mismatch = agent
        .post_form(
            &app.url("/login/password"),
            &submit("a brand new passphrase", "another passphrase"),
        )
        .await;
    assert!(mismatch.body.contains("not the same"));
    let ok = agent
        .post_form(
            &app.url("/login/password"),
            &submit("a brand new passphrase", "a brand new passphrase"),
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let loc = finish_flow(&app, &agent, ok).await;
    tokens(&app, &loc, &verifier).await;
    let after = app.state.store.get_user(&user.id).await.unwrap().unwrap();
    assert!(!after.password_change_required);
    // The temporary password no longer works; the new one does.
    let agent = FormAgent::new();
    let page = password_step(&app, &agent, &url, "alice", temporary.expose()).await;
    assert!(page.body.contains("incorrect"));
    let page = password_step(&app, &agent, &url, "alice", "a brand new passphrase").await;
    assert_eq!(page.status, 303);
}

async fn console_sign_in_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    // Not signed in: the console sends the browser to sign in and come back.
    let agent = FormAgent::new();
    let page = agent.get(&app.url("/account/apps")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/account/login?next=%2Faccount%2Fapps")
    );
    // `next` stays on this site's console.
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil",
        "/authorize?x",
    ] {
        let q: String = form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let page = agent
            .get(&app.url(&format!("/account/login?next={q}")))
            .await;
        assert!(
            page.body.contains("name=\"next\" value=\"/account\""),
            "{evil}: {}",
            page.body
        );
    }
    let login = agent
        .get(&app.url("/account/login?next=%2Fadmin%2Fusers"))
        .await;
    assert!(login.body.contains("value=\"/admin/users\""));
    let mut fields = hidden_inputs(&login.body);
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PW.into()));
    let signed = agent.post_form(&app.url("/login"), &fields).await;
    assert_eq!(signed.location.as_deref(), Some("/admin/users"));
    // A non-admin gets the 403 page on /admin; the account page is hers.
    let admin = agent.get(&app.url("/admin")).await;
    assert_eq!(admin.status, 403);
    assert!(admin.body.contains("Administrators only"));
    let account = agent.get(&app.url("/account")).await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("alice"));
    // A console form without the CSRF token changes nothing.
    let no_csrf = agent
        .post_form(
            &app.url("/account/password"),
            &[
                ("password".into(), PW.into()),
                ("new_password".into(), "another long passphrase".into()),
                ("confirm".into(), "another long passphrase".into()),
            ],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    let still = password_step(
        &app,
        &FormAgent::new(),
        &app.url("/account/login"),
        "alice",
        PW,
    )
    .await;
    assert_eq!(still.status, 303, "the password did not change");

    // An admin's change needs a recent sign-in: after 10 minutes, sign in again first.
    let root = FormAgent::new();
    let page = password_step(
        &app,
        &root,
        &app.url("/account/login?next=%2Fadmin"),
        "root",
        PW,
    )
    .await;
    assert_eq!(page.location.as_deref(), Some("/admin"));
    let users = root.get(&app.url("/admin/users")).await;
    assert_eq!(users.status, 200, "{}", users.body);
    let alice = app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let disable = format!("/admin/users/{}/disable", alice.id);
    let csrf = hidden_inputs(&users.body)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap();
    app.clock.advance(11 * 60);
    let stale = root
        .post_form(&app.url(&disable), std::slice::from_ref(&csrf))
        .await;
    assert_eq!(stale.status, 303);
    assert!(
        stale
            .location
            .as_deref()
            .unwrap()
            .starts_with("/account/login?reauth=1"),
        "{:?}",
        stale.location
    );
    assert!(
        app.state
            .store
            .get_user(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .is_enabled(),
        "nothing changed"
    );
    // Signed in again: the same change goes through.
    let again = password_step(
        &app,
        &root,
        &app.url("/account/login?reauth=1&next=%2Fadmin%2Fusers"),
        "root",
        PW,
    )
    .await;
    assert_eq!(again.status, 303);
    let users = root.get(&app.url("/admin/users")).await;
    let csrf = hidden_inputs(&users.body)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap();
    let done = root.post_form(&app.url(&disable), &[csrf]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        !app.state
            .store
            .get_user(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .is_enabled()
    );
}
