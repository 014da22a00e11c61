//! Passkeys in a real browser: Chromium with a virtual WebAuthn authenticator (WebDriver
//! §11.3) registers a passkey from `/account/passkeys`, signs in with it username-less, and
//! uses it as the second factor after the password; the sessions say how (`amr`); a forged
//! answer and a spent ceremony are refused, with the real sign-ins as positive controls.
//! WebAuthn needs a domain (not an IP address) as RP ID, so this server's issuer is
//! `http://localhost:<port>` (a secure context).

use authz::clock::Clock;
use authz::identity::totp;
use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;
use testkit::webdriver::Browser;

use crate::pages::{click, sign_out, submit, wait_find, wait_h1};
use crate::support::{Backend, TestApp};
use crate::two_factor::unbase32;

both_backends!(passkeys_register_sign_in_and_second_factor_in_chromium);

const PW: &str = "correct horse battery staple";

async fn password(b: &Browser, site: &str, next: &str) {
    b.goto(&format!("{site}/account/login?next={next}"))
        .await
        .unwrap();
    let user = wait_find(b, "#username").await;
    b.send_keys(&user, "alice").await.unwrap();
    let pw = wait_find(b, "#password").await;
    b.send_keys(&pw, PW).await.unwrap();
    submit(b, "form[action=\"/login\"] button[type=submit]").await;
}

/// The `amr` of alice's newest browser session.
async fn newest_amr(app: &TestApp, user_id: &str) -> Vec<String> {
    let sessions = app.state.store.user_sessions(user_id).await.unwrap();
    sessions
        .iter()
        .filter(|s| s.client_id.is_none())
        .max_by_key(|s| (s.created_at, s.sid.clone()))
        .map(|s| s.amr.clone())
        .unwrap_or_default()
}

async fn passkeys_register_sign_in_and_second_factor_in_chromium(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    let site = app.base.replace("127.0.0.1", "localhost");
    let alice = app.user("alice", PW, "user").await;
    let b = Browser::start().await.unwrap();
    let authenticator = b.add_virtual_authenticator().await.unwrap();

    // Register: password sign-in, then the passkey page's button.
    password(&b, &site, "%2Faccount%2Fpasskeys").await;
    wait_h1(&b, "Passkeys").await;
    let name = wait_find(&b, "#passkey-name").await;
    b.send_keys(&name, "test authenticator").await.unwrap();
    click(&b, "#passkey-add").await;
    let notice = b.text(&wait_find(&b, ".notice-ok").await).await.unwrap();
    assert!(notice.contains("passkey was added"), "{notice}");
    assert_eq!(b.find_all("#passkeys tbody tr").await.unwrap().len(), 1);
    let held = b.virtual_credentials(&authenticator).await.unwrap();
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "discoverable: {held}"
    );
    sign_out(&b).await;

    // Username-less sign-in with it: two factors in one (RFC 8176 hwk + user verification).
    b.goto(&format!("{site}/account/login")).await.unwrap();
    click(&b, "#passkey-signin").await;
    wait_h1(&b, "Your account").await;
    let amr = newest_amr(&app, &alice).await;
    assert_eq!(amr, ["hwk", "mfa", "user"], "{amr:?}");
    let kinds = app.audit_kinds().await;
    assert!(kinds.iter().any(|k| k == "passkey.added"));
    sign_out(&b).await;

    // After the username: the same username-less options as for any name (issue 24 item 4);
    // the passkey names its user.
    b.goto(&format!("{site}/account/login")).await.unwrap();
    let user = wait_find(&b, "#username").await;
    b.send_keys(&user, "alice").await.unwrap();
    click(&b, "#passkey-signin").await;
    wait_h1(&b, "Your account").await;
    assert_eq!(newest_amr(&app, &alice).await, ["hwk", "mfa", "user"]);
    sign_out(&b).await;

    // As the second factor: with TOTP on, the code page offers the passkey instead.
    let user = app.state.store.get_user(&alice).await.unwrap().unwrap();
    let e = app.two_factor_begin(&user).await.unwrap();
    let secret = unbase32(&e.secret_base32);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    app.two_factor_confirm(&user, &code).await.unwrap();
    password(&b, &site, "%2Faccount").await;
    wait_h1(&b, "Enter your code").await;
    click(&b, "#passkey-second").await;
    wait_h1(&b, "Your account").await;
    let amr = newest_amr(&app, &alice).await;
    assert_eq!(amr, ["hwk", "mfa", "pwd"], "{amr:?}");
    b.quit().await;

    // Refusals over HTTP: a forged answer, and a ceremony that was never started (or spent).
    let agent = FormAgent::new();
    let login = agent.get(&format!("{site}/account/login")).await;
    let mut fields = hidden_inputs(&login.body);
    fields.push(("ceremony".into(), "not-a-ceremony".into()));
    fields.push(("mode".into(), "discoverable".into()));
    fields.push((
        "credential".into(),
        r#"{"id":"AAAA","rawId":"AAAA","type":"public-key","extensions":{},
           "response":{"authenticatorData":"AAAA","clientDataJSON":"AAAA","signature":"AAAA","userHandle":null}}"#
            .into(),
    ));
    let refused = agent
        .post_form(&format!("{site}/login/passkey"), &fields)
        .await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("could not be verified"),
        "{}",
        refused.body
    );
    assert!(agent.cookie("authz_session").is_none());
    // Options for a name without passkeys look like username-less ones (no enumeration).
    let mut ask = hidden_inputs(&login.body)
        .into_iter()
        .filter(|(n, _)| n == "csrf" || n == "next")
        .collect::<Vec<_>>();
    ask.push(("username".into(), "nobody".into()));
    let options = agent
        .post_form(&format!("{site}/login/passkey/options"), &ask)
        .await;
    assert_eq!(options.status, 200, "{}", options.body);
    let v: serde_json::Value = serde_json::from_str(&options.body).unwrap();
    assert_eq!(v["mode"], "discoverable");
    // A spent ceremony: the same id twice finds nothing the second time.
    let id = v["ceremony"].as_str().unwrap();
    let hash = shared::crypto::sha256_hex(id);
    let now = app.clock.now();
    let first = app
        .state
        .store
        .take_ceremony(&hash, "auth-discoverable", now)
        .await
        .unwrap();
    assert!(first.is_some());
    let again = app
        .state
        .store
        .take_ceremony(&hash, "auth-discoverable", now)
        .await
        .unwrap();
    assert!(again.is_none(), "a ceremony is taken once");
}
