//! Attacks through the browser: CSRF, clickjacking, redirects after POST, leaking credentials,
//! session fixation, brute force and enumeration, escaping, rate limits.

use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use super::{PW, browser_app};
use crate::support::{Backend, TestApp, pkce};
use authz::store::AuthMethod;

both_backends!(
    login_csrf_without_token_is_refused,
    consent_csrf_from_another_browser_is_refused,
    clickjacking_is_blocked_on_every_page,
    every_post_answers_with_303_or_a_page,
    credentials_never_appear_in_urls_or_referers,
    session_fixation_a_new_session_at_every_login,
    brute_force_locks_the_username_not_other_users_or_sessions,
    login_does_not_reveal_which_usernames_exist,
    html_in_client_names_is_rendered_escaped,
    form_floods_get_429_with_retry_after,
    spoofed_forwarded_for_does_not_dodge_limits,
    a_forged_forwarded_for_line_before_the_proxys_is_not_believed,
);

async fn login_page(app: &TestApp, agent: &FormAgent) -> Vec<(String, String)> {
    let (_, challenge) = pkce();
    let page = agent.get(&app.authorize_url("rp", &challenge, &[])).await;
    assert_eq!(page.status, 200);
    hidden_inputs(&page.body)
}

fn with_credentials(mut fields: Vec<(String, String)>) -> Vec<(String, String)> {
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PW.into()));
    fields
}

/// RFC 9700 §4.7, OWASP login CSRF: a forged login POST (no token, or a token without the
/// matching cookie) does nothing.
async fn login_csrf_without_token_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let agent = FormAgent::new();
    let fields = login_page(&app, &agent).await;
    let without: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    let r = agent
        .post_form(&app.url("/login"), &with_credentials(without))
        .await;
    assert_eq!(r.status, 403);
    assert!(agent.cookie("authz_session").is_none());
    let forger = FormAgent::new();
    assert_eq!(
        forger
            .post_form(&app.url("/login"), &with_credentials(fields))
            .await
            .status,
        403
    );
}

/// RFC 9700 §4.7: a consent approval planted from another browser is refused.
async fn consent_csrf_from_another_browser_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let victim = FormAgent::new();
    let fields = login_page(&app, &victim).await;
    let r = victim
        .post_form(&app.url("/login"), &with_credentials(fields))
        .await;
    let consent = victim.get(&app.url(r.location.as_deref().unwrap())).await;
    assert!(consent.body.contains("action=\"/consent\""));
    // The attacker has its own csrf cookie/token pair, not the victim's.
    let attacker = FormAgent::new();
    let mut forged: Vec<_> = hidden_inputs(&consent.body)
        .into_iter()
        .filter(|(k, _)| k != "csrf")
        .collect();
    forged.extend(
        login_page(&app, &attacker)
            .await
            .into_iter()
            .filter(|(k, _)| k == "csrf"),
    );
    forged.push(("decision".into(), "approve".into()));
    assert_eq!(
        victim.post_form(&app.url("/consent"), &forged).await.status,
        403
    );
}

/// RFC 9700 §4.16: pages cannot be framed (CSP frame-ancestors and X-Frame-Options).
async fn clickjacking_is_blocked_on_every_page(backend: Backend) {
    let app = browser_app(backend).await;
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    for url in [
        app.authorize_url("rp", &challenge, &[]),
        app.url("/authorize?client_id=ghost"),
        app.url("/logout"),
    ] {
        let p = agent.get(&url).await;
        assert!(
            p.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{url}"
        );
        assert_eq!(p.headers["x-frame-options"], "DENY");
        assert_eq!(p.headers["cache-control"], "no-store");
    }
}

/// RFC 9700 §4.12: never 307 after a POST that carried credentials.
async fn every_post_answers_with_303_or_a_page(backend: Backend) {
    let app = browser_app(backend).await;
    let agent = FormAgent::new();
    let fields = login_page(&app, &agent).await;
    let r = agent
        .post_form(&app.url("/login"), &with_credentials(fields))
        .await;
    assert_eq!(r.status, 303);
    let consent = agent.get(&app.url(r.location.as_deref().unwrap())).await;
    let mut f = hidden_inputs(&consent.body);
    f.push(("decision".into(), "approve".into()));
    assert_eq!(agent.post_form(&app.url("/consent"), &f).await.status, 303);
}

/// RFC 9700 §4.2.4, §4.3: no password, secret or code in a URL of ours; Referer suppressed.
async fn credentials_never_appear_in_urls_or_referers(backend: Backend) {
    let app = browser_app(backend).await;
    let agent = FormAgent::new();
    let fields = login_page(&app, &agent).await;
    let r = agent
        .post_form(&app.url("/login"), &with_credentials(fields))
        .await;
    let loc = r.location.unwrap();
    assert!(!loc.contains(PW) && !loc.contains("password"));
    let consent = agent.get(&app.url(&loc)).await;
    assert_eq!(consent.headers["referrer-policy"], "no-referrer");
    assert!(!consent.body.contains(PW));
}

/// OWASP session management: the session cookie after login is new, whatever came before.
async fn session_fixation_a_new_session_at_every_login(backend: Backend) {
    let app = browser_app(backend).await;
    let agent = FormAgent::new();
    let fields = login_page(&app, &agent).await;
    agent
        .post_form(&app.url("/login"), &with_credentials(fields))
        .await;
    let first = agent.cookie("authz_session").unwrap();
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("prompt", "login")]);
    let page = agent.get(&url).await;
    agent
        .post_form(
            &app.url("/login"),
            &with_credentials(hidden_inputs(&page.body)),
        )
        .await;
    let second = agent.cookie("authz_session").unwrap();
    assert_ne!(first, second);
    // The old session is over: presenting it gets the login page.
    let stale = FormAgent::new();
    let _ = stale.get(&app.url("/healthz")).await;
    let p = app
        .http
        .get(app.authorize_url("rp", &challenge, &[]))
        .header("cookie", format!("authz_session={first}"))
        .send()
        .await
        .unwrap();
    assert!(p.text().await.unwrap().contains("action=\"/login\""));
}

/// OWASP brute force: N failures lock the username (stored, for every replica); the lock
/// leaves other users and the user's existing sessions alone.
async fn brute_force_locks_the_username_not_other_users_or_sessions(backend: Backend) {
    let app = browser_app(backend).await;
    app.user("bob", "another long passphrase", "user").await;
    let signed_in = FormAgent::new();
    let fields = login_page(&app, &signed_in).await;
    signed_in
        .post_form(&app.url("/login"), &with_credentials(fields))
        .await;
    for _ in 0..5 {
        let a = FormAgent::new();
        let mut f = login_page(&app, &a).await;
        f.push(("username".into(), "alice".into()));
        f.push(("password".into(), "guess".into()));
        a.post_form(&app.url("/login"), &f).await;
    }
    let a = FormAgent::new();
    let locked = a
        .post_form(
            &app.url("/login"),
            &with_credentials(login_page(&app, &a).await),
        )
        .await;
    assert!(locked.body.contains("Too many failed sign-in attempts"));
    // Alice's existing browser session still works; Bob can sign in.
    let (_, challenge) = pkce();
    let page = signed_in
        .get(&app.authorize_url("rp", &challenge, &[]))
        .await;
    assert!(
        !page.body.contains("action=\"/login\""),
        "existing session unaffected"
    );
    let b = FormAgent::new();
    let mut f = login_page(&app, &b).await;
    f.push(("username".into(), "bob".into()));
    f.push(("password".into(), "another long passphrase".into()));
    assert_eq!(b.post_form(&app.url("/login"), &f).await.status, 303);
}

/// RFC 9700 §4.15 / OWASP: the same words for unknown users and wrong passwords.
async fn login_does_not_reveal_which_usernames_exist(backend: Backend) {
    let app = browser_app(backend).await;
    let mut bodies = Vec::new();
    for user in ["alice", "nobody-here"] {
        let a = FormAgent::new();
        let mut f = login_page(&app, &a).await;
        f.push(("username".into(), user.into()));
        f.push(("password".into(), "wrong password".into()));
        let r = a.post_form(&app.url("/login"), &f).await;
        let alert = r
            .body
            .split("role=\"alert\"")
            .nth(1)
            .unwrap()
            .split("</div>")
            .next()
            .unwrap()
            .to_owned();
        bodies.push(alert);
    }
    assert_eq!(bodies[0], bodies[1]);
}

/// XSS: a client name with markup is shown as text on the login and consent pages.
async fn html_in_client_names_is_rendered_escaped(backend: Backend) {
    let app = browser_app(backend).await;
    let r: serde_json::Value = app.http.post(app.url("/register"))
        .json(&serde_json::json!({ "client_name": "<script>alert(1)</script>", "redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none" }))
        .send().await.unwrap().json().await.unwrap();
    let id = r["client_id"].as_str().unwrap();
    let (_, challenge) = pkce();
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code_challenge={challenge}&code_challenge_method=S256"
    ));
    let page = FormAgent::new().get(&url).await;
    assert!(!page.body.contains("<script>alert(1)</script>"));
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || page.body.contains("&#60;script&#62;")
    );
}

/// Rate limits: the login form per client IP → 429 with Retry-After (a page for browsers).
async fn form_floods_get_429_with_retry_after(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.rate_limits.login = 5).await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    let a = FormAgent::new();
    let mut last = None;
    for _ in 0..6 {
        let f = login_page(&app, &a).await;
        last = Some(a.post_form(&app.url("/login"), &f).await);
    }
    let r = last.unwrap();
    assert_eq!(r.status, 429);
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            > 0
    );
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The token endpoint has its own budget.
    let t = TestApp::spawn_with(backend, |c| c.rate_limits.token = 3).await;
    for i in 0..4 {
        let r = t
            .token(&[("grant_type", "client_credentials")], Some(("x", "y")))
            .await;
        assert_eq!(r.status() == 429, i == 3, "request {i}");
    }
}

/// X-Forwarded-For is believed only from configured proxies: a client cannot rotate fake
/// addresses to escape its limit.
async fn spoofed_forwarded_for_does_not_dodge_limits(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.rate_limits.token = 3).await;
    for i in 0..4 {
        let r = app
            .http
            .post(app.url("/token"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status() == 429, i == 3, "request {i}");
    }
    // Behind a trusted proxy (here: loopback), each forwarded client has its own budget.
    let proxied = TestApp::spawn_with(backend, |c| {
        c.rate_limits.token = 3;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for i in 0..6 {
        let r = proxied
            .http
            .post(proxied.url("/token"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 429, "request {i}");
    }
}

/// Regression (issue 15, found through HAProxy): a proxy that appends its own
/// `X-Forwarded-For` *line* after one the client sent (HAProxy's `option forwardfor`, RFC 7230
/// §3.2.2 allows several lines) left the client's forged line first — and only the first line
/// was read, so the forged address was believed for rate limits and audit records. All lines
/// are one list, read from the right.
async fn a_forged_forwarded_for_line_before_the_proxys_is_not_believed(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.rate_limits.token = 2;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // The client forges a new address each time; the proxy appends the real one (always the
    // same) on its own line.
    let send = |i: u8| {
        app.http
            .post(app.url("/token"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("x-forwarded-for", "198.51.100.7")
            .basic_auth("nobody", Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for i in 0..3u8 {
        let r = send(i).await.unwrap();
        assert_eq!(
            r.status() == 429,
            i == 2,
            "request {i}: one budget for the real client"
        );
    }
    let ips: Vec<Option<String>> = app
        .audit_events()
        .await
        .into_iter()
        .filter(|e| e.kind == "client.auth_failed")
        .map(|e| e.ip)
        .collect();
    assert_eq!(ips.len(), 2);
    assert!(
        ips.iter().all(|ip| ip.as_deref() == Some("198.51.100.7")),
        "audited as the real address: {ips:?}"
    );
    // Positive control: another real client behind the proxy has its own budget.
    let r = app
        .http
        .post(app.url("/token"))
        .header("x-forwarded-for", "198.51.100.8")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 429);
}
