//! Issue 24 findings: see `round3/mod.rs`. The smaller browser items: the multi-factor rule
//! for API-key creation (3), passkey options that say nothing about a name (4), one user-code
//! limiter for `/device` and `/device/decide` (5), API keys with several scopes from the
//! console form (8), and administrators who revoke API keys but never take them over (9).

use authz::clients::api_keys;
use authz::clock::Clock;
use authz::identity::admin::rotate_client_secret;
use authz::identity::totp;
use authz::store::{AuthMethod, GrantType};
use serde_json::Value;
use testkit::agent::{FormAgent, Page, hidden_inputs};
use testkit::both_backends;
use testkit::webdriver::Browser;

use crate::pages::{click, sign_out, submit, wait_find, wait_h1};
use crate::support::{
    Backend, TestApp, assert_form, expect_error, expect_token, jwt_claims, password_sign_in,
    submit_form, turn_on_totp,
};

both_backends!(
    item_03_password_only_session_of_an_mfa_role_cannot_create_an_api_key,
    item_04_passkey_options_do_not_tell_which_names_hold_passkeys,
    item_05_user_code_guesses_through_device_decide_share_the_session_limit,
    item_08_api_key_form_with_two_scopes_ticked_creates_a_key_with_both,
    item_09_an_admin_cannot_rotate_the_secret_of_a_users_api_key,
    item_03_password_grant_refuses_a_role_that_requires_mfa,
);

const PW: &str = "correct horse battery staple";

/// Open `path` not signed in, sign `user` in with the password on the page it leads to, and
/// return the page the sign-in comes back to.
async fn signed_in_at(app: &TestApp, agent: &FormAgent, path: &str, user: &str) -> Page {
    let first = agent.get(&app.url(path)).await;
    assert_eq!(first.status, 303, "not signed in: to the sign-in page");
    let login = agent
        .get(&app.url(first.location.as_deref().unwrap()))
        .await;
    let done = password_sign_in(app, agent, &login, user, PW).await;
    assert_eq!(done.status, 303, "{}", done.body);
    agent.get(&app.url(done.location.as_deref().unwrap())).await
}

/// A browser signed in to the console as `user` with the password alone.
async fn signed_in(app: &TestApp, user: &str) -> FormAgent {
    let agent = FormAgent::new();
    let page = signed_in_at(app, &agent, "/account", user).await;
    assert_eq!(page.status, 200, "{}", page.body);
    agent
}

/// The text of `html` after `marker`, up to the next tag.
fn after(html: &str, marker: &str) -> String {
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"))
        + marker.len();
    html[start..].split('<').next().unwrap().trim().to_owned()
}

/// Create an API key from `/account/api-keys` with `scopes` ticked: the page shown.
async fn create_key(app: &TestApp, agent: &FormAgent, scopes: &[&str]) -> Page {
    let mut extra = vec![("name", "report bot"), ("days", "30")];
    extra.extend(scopes.iter().map(|s| ("scope", *s)));
    submit_form(app, agent, "/account/api-keys", "/account/api-keys", &extra).await
}

async fn owned_keys(app: &TestApp, user_id: &str) -> Vec<authz::store::Client> {
    app.state
        .store
        .list_clients_owned_by(user_id)
        .await
        .unwrap()
}

async fn item_03_password_only_session_of_an_mfa_role_cannot_create_an_api_key(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.mfa.required_roles = vec!["user".into()]).await;
    let alice = app.user("alice", PW, "user").await;
    let reader = app.user("reader", PW, "readonly").await;

    // alice's role must sign in with a second factor; she has none yet, so her console
    // session is password-only (the console lets her in to set one up) …
    let me = signed_in(&app, "alice").await;
    let refused = create_key(&app, &me, &["notes:read"]).await;
    // … and that session creates no key (a year-long credential): a page says what to do.
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("Set up two-factor sign-in")
            && refused.body.contains("/account/two-factor"),
        "{}",
        refused.body
    );
    assert!(!refused.body.contains("new-key-secret"));
    assert!(owned_keys(&app, &alice).await.is_empty(), "no key was made");

    // Positive control: a role that is not listed creates one with the password alone.
    let other = signed_in(&app, "reader").await;
    let ok = create_key(&app, &other, &["notes:read"]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("id=\"new-key-secret\""), "{}", ok.body);
    assert_eq!(owned_keys(&app, &reader).await.len(), 1);

    // Positive control: alice sets up TOTP and signs in with the password and a code.
    let user = app.state.store.get_user(&alice).await.unwrap().unwrap();
    let secret = turn_on_totp(&app, &user).await;
    let agent = FormAgent::new();
    let login = agent.get(&app.url("/account/login")).await;
    let code_page = password_sign_in(&app, &agent, &login, "alice", PW).await;
    assert_form(&code_page, "/login/code");
    let mut fields = hidden_inputs(&code_page.body);
    let code = totp::code_at(&secret, totp::step_at(app.clock.now()));
    fields.push(("code".into(), code));
    let done = agent.post_form(&app.url("/login/code"), &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let created = create_key(&app, &agent, &["notes:read"]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("id=\"new-key-secret\""));
    assert_eq!(owned_keys(&app, &alice).await.len(), 1);
}

/// The JSON's shape: the same keys and kinds of value, whatever the values.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        other => other.clone(),
    }
}

async fn item_04_passkey_options_do_not_tell_which_names_hold_passkeys(backend: Backend) {
    // WebAuthn needs a domain as RP ID: the issuer is `http://localhost:<port>`.
    let app = TestApp::spawn_with(backend, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    let site = app.base.replace("127.0.0.1", "localhost");
    let alice = app.user("alice", PW, "user").await;
    app.user("bob", PW, "user").await;
    let b = Browser::start().await.unwrap();
    b.add_virtual_authenticator().await.unwrap();

    // alice registers a passkey (password sign-in, then the passkey page's button).
    b.goto(&format!("{site}/account/login?next=%2Faccount%2Fpasskeys"))
        .await
        .unwrap();
    b.send_keys(&wait_find(&b, "#username").await, "alice")
        .await
        .unwrap();
    b.send_keys(&wait_find(&b, "#password").await, PW)
        .await
        .unwrap();
    submit(&b, "form[action=\"/login\"] button[type=submit]").await;
    wait_h1(&b, "Passkeys").await;
    b.send_keys(&wait_find(&b, "#passkey-name").await, "laptop")
        .await
        .unwrap();
    click(&b, "#passkey-add").await;
    wait_find(&b, ".notice-ok").await;
    sign_out(&b).await;
    let ids: Vec<String> = app
        .state
        .store
        .user_passkeys(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.credential_id)
        .collect();
    assert_eq!(ids.len(), 1);

    // Anonymous callers ask for the options after typing a name: one with a passkey, one
    // without, one that does not exist.
    let agent = FormAgent::new();
    let login = agent.get(&format!("{site}/account/login")).await;
    let mut answers = Vec::new();
    for name in ["alice", "bob", "nobody"] {
        let mut ask: Vec<(String, String)> = hidden_inputs(&login.body)
            .into_iter()
            .filter(|(n, _)| n == "csrf" || n == "next")
            .collect();
        ask.push(("username".into(), name.into()));
        let r = agent
            .post_form(&format!("{site}/login/passkey/options"), &ask)
            .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        for id in &ids {
            assert!(
                !r.body.contains(id.as_str()),
                "{name}: the answer names alice's credential: {}",
                r.body
            );
        }
        let v: Value = serde_json::from_str(&r.body).unwrap();
        answers.push((name, v));
    }
    for (name, v) in &answers {
        assert_eq!(v["mode"], "discoverable", "{name}: {v}");
        assert_eq!(
            shape(v),
            shape(&answers[2].1),
            "{name} is answered like an unknown name"
        );
    }

    // Positive control: after typing the username, signing in with the passkey works.
    b.goto(&format!("{site}/account/login")).await.unwrap();
    b.send_keys(&wait_find(&b, "#username").await, "alice")
        .await
        .unwrap();
    click(&b, "#passkey-signin").await;
    wait_h1(&b, "Your account").await;
    b.quit().await;
    let sessions = app.state.store.user_sessions(&alice).await.unwrap();
    assert!(
        sessions
            .iter()
            .any(|s| s.client_id.is_none() && s.amr == ["hwk", "mfa", "user"]),
        "a passkey session for alice"
    );
}

/// `POST /device_authorization` as the public client "tv": its response.
async fn start_device(app: &TestApp) -> Value {
    let r = app
        .http
        .post(app.url("/device_authorization"))
        .form(&[("client_id", "tv"), ("scope", "notes:read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn poll(app: &TestApp, device_code: &str) -> reqwest::Response {
    app.token(
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "tv"),
            ("device_code", device_code),
        ],
        None,
    )
    .await
}

async fn item_05_user_code_guesses_through_device_decide_share_the_session_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.client(
        "tv",
        AuthMethod::None,
        &[GrantType::DeviceCode],
        "notes:read",
        &[crate::support::MCP],
    )
    .await;
    let d = start_device(&app).await;
    let right = d["user_code"].as_str().unwrap().to_owned();
    let device_code = d["device_code"].as_str().unwrap().to_owned();

    let agent = FormAgent::new();
    let entry = signed_in_at(&app, &agent, "/device", "alice").await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    let csrf: Vec<(String, String)> = hidden_inputs(&entry.body)
        .into_iter()
        .filter(|(k, _)| k == "csrf")
        .collect();
    let post = |path: &'static str, code: String, decision: Option<&'static str>| {
        let (agent, app) = (&agent, &app);
        let mut fields = csrf.clone();
        fields.push(("user_code".into(), code));
        if let Some(d) = decision {
            fields.push(("decision".into(), d.into()));
        }
        async move { agent.post_form(&app.url(path), &fields).await }
    };

    // Guesses straight at /device/decide (never through /device) use the session's budget
    // (5 a minute by default) …
    for _ in 0..5 {
        let r = post("/device/decide", "BBBB-BBBB".into(), Some("deny")).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    // … and then a hit is not tried: someone else's device is not denied by a guess.
    let hit = post("/device/decide", right.clone(), Some("deny")).await;
    assert_eq!(hit.status, 429, "{}", hit.body);
    // One limiter: /device waits too.
    let entered = post("/device", right.clone(), None).await;
    assert_eq!(entered.status, 429, "{}", entered.body);
    expect_error(poll(&app, &device_code).await, 400, "authorization_pending").await;

    // Positive control: within a minute's budget the right code works — four typos, the
    // code, then the decision on the code shown (that entry was counted once already).
    app.clock.advance(61);
    for _ in 0..4 {
        let r = post("/device", "BBBB-BBBB".into(), None).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let confirm = post("/device", right.clone(), None).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let mut fields = hidden_inputs(&confirm.body);
    fields.push(("decision".into(), "approve".into()));
    let done = agent.post_form(&app.url("/device/decide"), &fields).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);
    expect_token(poll(&app, &device_code).await).await;
}

async fn item_08_api_key_form_with_two_scopes_ticked_creates_a_key_with_both(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    let me = signed_in(&app, "alice").await;

    // Two boxes ticked: one `scope` field each.
    let created = create_key(&app, &me, &["notes:read", "notes:write"]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = after(&created.body, "id=\"new-key-id\">");
    let secret = after(&created.body, "id=\"new-key-secret\">");
    let keys = owned_keys(&app, &alice).await;
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].scopes.contains("notes:read") && keys[0].scopes.contains("notes:write"),
        "{}",
        keys[0].scopes
    );
    // Its token carries both.
    let body = expect_token(
        app.token(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "notes:read notes:write"),
            ],
            Some((&id, &secret)),
        )
        .await,
    )
    .await;
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    let scope = claims["scope"].as_str().unwrap();
    let mut got: Vec<&str> = scope.split(' ').collect();
    got.sort_unstable();
    assert_eq!(got, ["notes:read", "notes:write"], "{claims}");

    // The OAuth endpoints still refuse a repeated parameter (RFC 6749 §3.1).
    let repeated = app
        .http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=notes%3Aread&scope=notes%3Awrite")
        .send()
        .await
        .unwrap();
    let text = expect_error(repeated, 400, "invalid_request").await;
    assert!(text.contains("repeated"), "{text}");
    app.client(
        "tv",
        AuthMethod::None,
        &[GrantType::DeviceCode],
        "notes:read",
        &[crate::support::MCP],
    )
    .await;
    let repeated = app
        .http
        .post(app.url("/device_authorization"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=tv&scope=notes%3Aread&scope=notes%3Aread")
        .send()
        .await
        .unwrap();
    expect_error(repeated, 400, "invalid_request").await;
}

async fn item_09_an_admin_cannot_rotate_the_secret_of_a_users_api_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    let svc_secret = app.service_client("svc", "notes:read").await;
    let owner = app.state.store.get_user(&alice).await.unwrap().unwrap();
    let held = app.state.config.role_scopes(["user"]);
    let (_, proof) = app.recent_sign_in(&owner).await;
    let key = api_keys::create(
        app.state.client_services(),
        &owner,
        &proof,
        &held,
        "bot",
        "notes:read",
        Some(30),
    )
    .await
    .unwrap();
    let key_id = key.client_id.clone();
    let key_secret = key.client_secret.expose().to_owned();
    let works = |id: String, secret: String| {
        let app = &app;
        async move {
            app.token(
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "notes:read"),
                ],
                Some((&id, &secret)),
            )
            .await
            .status()
            .is_success()
        }
    };
    assert!(works(key_id.clone(), key_secret.clone()).await);

    // The admin console, asked to rotate alice's key (the button is not offered; the POST is
    // made by hand): refused with a message, and no secret shown.
    let admin = signed_in(&app, "root").await;
    let page = admin.get(&app.url("/admin/clients")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf: Vec<(String, String)> = hidden_inputs(&page.body)
        .into_iter()
        .filter(|(k, _)| k == "csrf")
        .take(1)
        .collect();
    let refused = admin
        .post_form(
            &app.url(&format!("/admin/clients/{key_id}/rotate-secret")),
            &csrf,
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("revoke the key"), "{}", refused.body);
    assert!(
        !refused.body.contains("client_secret\">"),
        "{}",
        refused.body
    );
    // The same function serves the CLI (`authz client rotate-secret`): refused there too.
    assert!(
        rotate_client_secret(
            &*app.state.store,
            &app.state.clients,
            &app.state.events,
            "cli",
            &key_id
        )
        .await
        .is_err()
    );
    // The key's own secret keeps working: nobody took it over.
    assert!(works(key_id.clone(), key_secret.clone()).await);
    assert!(
        app.audit_kinds()
            .await
            .iter()
            .any(|k| k == "client.secret_rotation_refused")
    );

    // Positive control: a confidential client's secret rotates (the new one works, the old
    // one no longer).
    let rotated = admin
        .post_form(&app.url("/admin/clients/svc/rotate-secret"), &csrf)
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = after(&rotated.body, "data-name=\"client_secret\">");
    assert!(!new.is_empty());
    assert!(works("svc".into(), new).await);
    assert!(!works("svc".into(), svc_secret).await);
}

/// The password grant is a password-only sign-in: a role listed in `[mfa] required_roles`
/// gets no token from it, enrolled or not (it would be a way around the console's rule).
async fn item_03_password_grant_refuses_a_role_that_requires_mfa(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.mfa.required_roles = vec!["user".into()]).await;
    app.user("alice", PW, "user").await;
    app.user("reader", PW, "readonly").await;
    let (none, grants) = (AuthMethod::None, [GrantType::Password]);
    app.client("cli", none, &grants, "notes:read", &[crate::support::MCP])
        .await;
    let grant = |user: &'static str| {
        app.http.post(app.url("/token")).form(&[
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", user),
            ("password", PW),
            ("scope", "notes:read"),
        ])
    };
    let refused = grant("alice").send().await.unwrap();
    let msg = expect_error(refused, 400, "invalid_grant").await;
    assert!(msg.contains("second factor"), "{msg}");
    // Positive control: a role that is not listed still gets its token.
    expect_token(grant("reader").send().await.unwrap()).await;
}
