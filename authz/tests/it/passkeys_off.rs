//! A server built without the cargo feature `passkeys` (`--no-default-features`: no
//! webauthn-rs, no OpenSSL; docs/architecture.md, decision record "One crypto stack"): the
//! sign-in and code pages offer no passkey and load no script, the account has no passkey
//! page, and every passkey route is not found. (The remedies that remove stored passkeys do
//! not depend on the feature: `round3::browser_reauth` checks them in either build.) Compiled
//! only without the feature; the default build runs `passkeys` instead.

use testkit::agent::FormAgent;
use testkit::both_backends;

use crate::support::{Backend, TestApp, console_agent, password_sign_in, turn_on_totp};

both_backends!(without_the_feature_no_page_offers_a_passkey_and_the_routes_are_gone);

const PW: &str = "correct horse battery staple";

async fn without_the_feature_no_page_offers_a_passkey_and_the_routes_are_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;

    // The sign-in page: the password form, no passkey button, no script.
    let agent = FormAgent::new();
    let login = agent.get(&app.url("/account/login")).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.body.contains("action=\"/login\""), "positive control");
    assert!(!login.body.contains("passkey"), "{}", login.body);
    assert!(!login.body.contains("<script"), "{}", login.body);

    // The code page (two-factor on): no "Use a passkey instead".
    let user = app.state.store.get_user(&alice).await.unwrap().unwrap();
    turn_on_totp(&app, &user).await;
    let code_page = password_sign_in(&app, &agent, &login, "alice", PW).await;
    assert_eq!(code_page.status, 200, "{}", code_page.body);
    assert!(code_page.body.contains("name=\"code\""), "positive control");
    assert!(!code_page.body.contains("passkey"), "{}", code_page.body);
    assert!(!code_page.body.contains("<script"), "{}", code_page.body);

    // The account: no Passkeys link, no page; the passkey routes are not found.
    app.user("bob", PW, "user").await;
    let console = console_agent(&app, "bob", PW).await;
    let account = console.get(&app.url("/account")).await;
    assert_eq!(account.status, 200, "{}", account.body);
    assert!(
        account.body.contains("href=\"/account/sessions\""),
        "positive control"
    );
    assert!(
        !account.body.contains("/account/passkeys"),
        "{}",
        account.body
    );
    for path in ["/account/passkeys", "/static/passkeys.js"] {
        assert_eq!(console.get(&app.url(path)).await.status, 404, "{path}");
    }
    let none: [(String, String); 0] = [];
    for path in [
        "/account/passkeys",
        "/account/passkeys/options",
        "/account/passkeys/x/delete",
        "/login/passkey/options",
        "/login/passkey",
    ] {
        let page = console.post_form(&app.url(path), &none).await;
        assert_eq!(page.status, 404, "{path}");
    }
}
