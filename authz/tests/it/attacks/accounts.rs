//! Sign-in and registration under attack (issue 11): lockouts that survive concurrency,
//! redirect URIs that smuggle a second one, password hashing that sheds load instead of eating
//! memory, IPv6 rate-limit budgets, silent codes for public native clients, and secrets in
//! `Debug`. Each test says which defect it pins; each rejection has its positive control.

use std::sync::Arc;

use serde_json::{Value, json};
use testkit::agent::FormAgent;
use testkit::both_backends;

use super::grants::{PW, s, setup};
use crate::support::{Backend, CB, TestApp, expect_error, expect_token, pkce, query};
use authz::store::AuthMethod;

both_backends!(
    concurrent_wrong_passwords_count_every_attempt,
    concurrent_wrong_passwords_on_the_login_form_count_too,
    redirect_uris_with_control_characters_are_refused,
    a_full_hashing_queue_sheds_sign_ins_with_503,
    ipv6_addresses_of_one_slash_64_share_a_rate_limit,
    public_native_clients_never_get_a_code_without_the_user,
    registration_and_key_secrets_never_show_in_debug,
);

fn password_form(password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "password".to_owned()),
        ("client_id", "cli".to_owned()),
        ("username", "alice".to_owned()),
        ("password", password.to_owned()),
        ("scope", "notes:read".to_owned()),
    ]
}

/// `n` password grants at once with a wrong password; their statuses.
async fn burst(app: &TestApp, n: usize, password: &str) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let http = app.http.clone();
            let url = app.url("/token");
            let form = password_form(password);
            tokio::spawn(async move {
                http.post(url)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Regression (issue 11, item 2): 30 concurrent wrong passwords counted as one (read, argon2,
/// write back old + 1), so the right password right after got a token (fails on the code
/// before the fix: 200).
async fn concurrent_wrong_passwords_count_every_attempt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    // Positive control: the right password works, and a few failures do not lock.
    expect_token(app.token(&as_pairs(&password_form(PW)), None).await).await;
    assert!(
        burst(&app, 3, "wrong guess")
            .await
            .iter()
            .all(|s| *s == 400)
    );
    expect_token(app.token(&as_pairs(&password_form(PW)), None).await).await;
    // The burst: every attempt counts, so the budget of 5 is spent and the name is locked.
    // Attempts beyond the budget are not even checked: 503, retry in a moment.
    let statuses = burst(&app, 30, "wrong guess").await;
    assert!(
        statuses.iter().all(|s| *s == 400 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 400).count() >= 5,
        "{statuses:?}"
    );
    let d = expect_error(
        app.token(&as_pairs(&password_form(PW)), None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(d.contains("too many failed sign-in attempts"), "{d}");
    let key = authz::crypto::sha256_hex("alice");
    let t = app.state.store.get_throttle(&key).await.unwrap().unwrap();
    assert!(t.locked_until.unwrap() > app.state.now());
    // At most the budget was checked against argon2; the rest were refused unchecked.
    let checked = app
        .audit_events()
        .await
        .iter()
        .filter(|e| e.kind == "login.failed" && e.details["reason"] == "bad_password")
        .count();
    assert!(checked <= 3 + 5, "{checked} guesses were checked");

    // N concurrent failures count N (a budget high enough not to lock).
    let app = TestApp::spawn_with(backend, |c| c.browser.login_max_failures = 100).await;
    setup(&app).await;
    burst(&app, 20, "wrong guess").await;
    let t = app.state.store.get_throttle(&key).await.unwrap().unwrap();
    assert_eq!(t.failures, 20);
    expect_token(app.token(&as_pairs(&password_form(PW)), None).await).await;
    assert!(
        app.state.store.get_throttle(&key).await.unwrap().is_none(),
        "a success clears the count"
    );
}

fn as_pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A login form, ready to submit with `password`.
async fn login_fields(app: &TestApp, agent: &FormAgent, password: &str) -> Vec<(String, String)> {
    let (_, challenge) = pkce();
    let page = agent.get(&app.authorize_url("rp", &challenge, &[])).await;
    let mut f = testkit::agent::hidden_inputs(&page.body);
    f.push(("username".into(), "alice".into()));
    f.push(("password".into(), password.into()));
    f
}

/// Regression (issue 11, item 2): the same race through the login form (fails on the code
/// before the fix: the right password signed in).
async fn concurrent_wrong_passwords_on_the_login_form_count_too(backend: Backend) {
    let app = Arc::new(super::browser_app(backend).await);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let agent = FormAgent::new();
            let f = login_fields(&app, &agent, "wrong guess").await;
            agent.post_form(&app.url("/login"), &f).await.status
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(
            status == 200 || status == 503,
            "the login page again, or busy: {status}"
        );
    }
    let agent = FormAgent::new();
    let f = login_fields(&app, &agent, PW).await;
    let page = agent.post_form(&app.url("/login"), &f).await;
    assert!(
        page.body.contains("Too many failed sign-in attempts"),
        "{}",
        page.status
    );
    // Positive control: a fresh app, one mistake, then the right password signs in.
    let app = super::browser_app(backend).await;
    let agent = FormAgent::new();
    let f = login_fields(&app, &agent, "wrong guess").await;
    agent.post_form(&app.url("/login"), &f).await;
    let f = login_fields(&app, &agent, PW).await;
    assert_eq!(agent.post_form(&app.url("/login"), &f).await.status, 303);
}

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Regression (issue 11, item 3): `"https://a.example/cb\nhttp://evil.example/cb"` registered
/// (the url crate drops `\n` while parsing, and the list was stored newline-joined, so it read
/// back as two URIs, the second never validated). Fails on the code before the fix: 201.
async fn redirect_uris_with_control_characters_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.browser.registration_per_minute = 100).await;
    for bad in [
        "https://a.example/cb\nhttp://evil.example/cb",
        "https://a.example/cb\r\nhttp://evil.example/cb",
        "https://a.exa\tmple/cb",
        "https://a.example/c b",
        "https://A.example/cb",
    ] {
        let r = register(&app, json!({ "redirect_uris": [bad] })).await;
        expect_error(r, 400, "invalid_redirect_uri").await;
        let r = register(
            &app,
            json!({ "redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": [bad] }),
        )
        .await;
        expect_error(r, 400, "invalid_redirect_uri").await;
    }
    // Positive control, and the stored form: a JSON array, exactly as registered.
    let uris = ["https://a.example/cb", "http://127.0.0.1:8765/callback"];
    let r = register(&app, json!({ "redirect_uris": uris })).await;
    assert_eq!(r.status(), 201);
    let id = s(&r.json().await.unwrap(), "client_id");
    let stored = app
        .sql_text(&format!(
            "SELECT redirect_uris FROM clients WHERE id = '{id}'"
        ))
        .await
        .unwrap();
    let stored: Vec<String> = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored, uris);
    // The CLI applies the same rule.
    let (ok, _, err) = crate::cli::authz(
        &app,
        &[
            "client",
            "add",
            "--name",
            "smuggler",
            "--grant",
            "authorization_code",
            "--redirect-uri",
            "https://a.example/cb\nhttp://evil.example/cb",
        ],
        None,
    );
    assert!(!ok, "the CLI accepted a redirect URI with a newline");
    assert!(err.contains("control characters"), "{err}");
}

/// Issue 11, item 4: when every hashing worker is busy and the queue is full, a sign-in is
/// shed at once — 503 + `Retry-After` in the RFC 6749 §5.2 shape on `/token`, a page on the
/// login form — instead of waiting without bound (before the fix every request queued).
async fn a_full_hashing_queue_sheds_sign_ins_with_503(backend: Backend) {
    let app = Arc::new(
        TestApp::spawn_with(backend, |c| {
            c.argon2 = authz::config::Argon2Config {
                m_cost: 4 * 1024,
                t_cost: 48,
                p_cost: 1,
                workers: 1,
                queue: 0,
            };
            c.browser.login_max_failures = 100;
        })
        .await,
    );
    setup(&app).await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    for form_login in [false, true] {
        // Occupy the only worker.
        let busy = {
            let app = app.clone();
            tokio::spawn(async move {
                app.token(&as_pairs(&password_form(PW)), None)
                    .await
                    .status()
                    .as_u16()
            })
        };
        while app.state.passwords.waiting() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        if form_login {
            let agent = FormAgent::new();
            let f = login_fields(&app, &agent, PW).await;
            let page = agent.post_form(&app.url("/login"), &f).await;
            assert_eq!(page.status, 503);
            assert!(page.headers.contains_key("retry-after"));
            assert!(page.body.contains("Busy right now"));
        } else {
            let r = app.token(&as_pairs(&password_form(PW)), None).await;
            assert_eq!(r.headers()["retry-after"], "1");
            expect_error(r, 503, "temporarily_unavailable").await;
        }
        // The admitted one completes (positive control).
        assert_eq!(busy.await.unwrap(), 200);
    }
}

/// Regression (issue 11, item 12): each IPv6 address had its own budget, so a host with a /64
/// had unlimited ones (fails on the code before the fix: the 4th request was not refused).
async fn ipv6_addresses_of_one_slash_64_share_a_rate_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.rate_limits.token = 3;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let status = |xff: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/token"))
                .header("x-forwarded-for", xff)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for xff in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3"] {
        assert_ne!(status(xff).await, 429, "{xff}");
    }
    assert_eq!(
        status("2001:db8:1:2:ffff:ffff:ffff:ffff").await,
        429,
        "same /64"
    );
    assert_ne!(status("2001:db8:1:3::1").await, 429, "another /64");
}

/// Regression (issue 11, item 14): a public loopback client that skipped consent got codes
/// silently (`prompt=none`) from any local program (fails on the code before the fix: a code).
/// Public clients redirecting to loopback are always asked (RFC 8252 §8.6); the positive
/// control is a confidential client, whose identity its secret proves.
async fn public_native_clients_never_get_a_code_without_the_user(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.client_cache_secs = 0).await;
    app.user("alice", PW, "user").await;
    app.code_client("native", AuthMethod::None, "notes:read")
        .await;
    app.code_client("conf", AuthMethod::ClientSecretBasic, "notes:read")
        .await;
    // A row from before the rule: public and skipping consent.
    app.sql("UPDATE clients SET skip_consent = 1").await;
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    let url = app.authorize_url("native", &challenge, &[]);
    let loc = agent
        .sign_in(&app.base, &url, "alice", PW, "approve")
        .await
        .unwrap();
    assert!(query(&loc).contains_key("code"), "the user approved");
    let none = app.authorize_url("native", &challenge, &[("prompt", "none")]);
    let page = agent.get(&none).await;
    let q = query(page.location.as_deref().unwrap());
    assert_eq!(q["error"], "consent_required", "{q:?}");
    let page = agent.get(&url).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("action=\"/consent\""), "asked again");
    // Positive control: the confidential first-party client signs in silently.
    let conf = app.authorize_url("conf", &challenge, &[("prompt", "none")]);
    let loc = agent.get(&conf).await.location.unwrap();
    assert!(
        loc.starts_with(CB) && query(&loc).contains_key("code"),
        "{loc}"
    );
    // And a public client cannot be registered to skip consent at all.
    let e = authz::identity::admin::add_client(
        app.state.client_services(),
        "test",
        Some("native2".into()),
        authz::store::ClientSettings {
            name: "native 2".into(),
            auth_method: AuthMethod::None,
            grant_types: vec![authz::store::GrantType::AuthorizationCode],
            redirect_uris: vec![CB.into()],
            scopes: shared::ScopeSet::parse("notes:read").unwrap(),
            skip_consent: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("RFC 8252"), "{e}");
}

/// Regression (issue 11, item 15): the registration response and a created API key derived
/// `Debug` with their secrets in the clear.
async fn registration_and_key_secrets_never_show_in_debug(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reg = authz::clients::registration::register(
        app.state.client_services(),
        serde_json::from_value(json!({ "redirect_uris": ["https://a.example/cb"] })).unwrap(),
    )
    .await
    .unwrap();
    let secret = reg.client_secret.clone().unwrap();
    assert!(!format!("{reg:?}").contains(secret.expose()));
    assert_eq!(
        serde_json::to_value(&reg).unwrap()["client_secret"],
        secret.expose(),
        "the response still carries it"
    );
    let id = app.user("bob", PW, "user").await;
    let owner = app.state.store.get_user(&id).await.unwrap().unwrap();
    let asking = shared::ScopeSet::parse("keys:write notes:read").unwrap();
    let (_, signed_in) = app.recent_sign_in(&owner).await;
    let key = authz::clients::api_keys::create(
        app.state.client_services(),
        &owner,
        &signed_in,
        &asking,
        "bot",
        "notes:read",
        None,
    )
    .await
    .unwrap();
    assert!(!format!("{key:?}").contains(key.client_secret.expose()));
}
