//! The login and consent pages as a browser meets them: security headers, cookies, CSRF,
//! generic failures, lockout, escaping.

use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, TestApp, pkce};
use authz::store::AuthMethod;

both_backends!(
    pages_carry_security_headers_and_safe_cookies,
    login_and_consent_forms_require_csrf,
    login_failures_are_generic_and_lockout_is_per_username,
);

async fn pages_carry_security_headers_and_safe_cookies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[]);
    let login = agent.get(&url).await;
    assert_eq!(login.status, 200);
    let h = &login.headers;
    assert_eq!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .split("; ")
            .take(2)
            .collect::<Vec<_>>(),
        ["default-src 'self'", "frame-ancestors 'none'"]
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csrf_cookie = h["set-cookie"].to_str().unwrap();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
    // Labels for every input; no inline script or style (the CSP would block them anyway):
    // the one script is the passkey helper, from this server, and the form works without it.
    for id in ["username", "password"] {
        assert!(login.body.contains(&format!("<label for=\"{id}\"")));
    }
    let scripts: Vec<&str> = login.body.split("<script").skip(1).collect();
    assert_eq!(scripts.len(), 1, "{}", login.body);
    assert!(scripts[0].starts_with(" src=\"/static/passkeys.js\" defer></script>"));
    assert!(!login.body.contains("style="));
    let js = app
        .http
        .get(app.url("/static/passkeys.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        app.http
            .get(app.url("/static/style.css"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    // After signing in: the session cookie is HttpOnly + SameSite=Lax, every POST was a 303.
    let mut fields = hidden_inputs(&login.body);
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), "correct horse battery staple".into()));
    let after = agent.post_form(&app.url("/login"), &fields).await;
    assert_eq!(after.status, 303);
    let session = after.headers["set-cookie"].to_str().unwrap();
    assert!(
        session.starts_with("authz_session=")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
    );
    assert!(
        !after.location.unwrap().contains("password"),
        "credentials never in URLs"
    );

    // With an https issuer: __Host- prefix and Secure (RFC 6265bis §4.1.3.2).
    let secure =
        TestApp::spawn_with(backend, |c| c.issuer = "https://auth.example.com".into()).await;
    secure
        .code_client("rp", AuthMethod::None, "notes:read")
        .await;
    let page = FormAgent::new()
        .get(&secure.authorize_url("rp", &challenge, &[]))
        .await;
    let c = page.headers["set-cookie"].to_str().unwrap();
    assert!(
        c.starts_with("__Host-authz_csrf=") && c.contains("; Secure") && c.contains("Path=/"),
        "{c}"
    );
}

async fn login_and_consent_forms_require_csrf(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[]);
    let agent = FormAgent::new();
    let login = agent.get(&url).await;
    let fields = hidden_inputs(&login.body);
    let with = |name: &str, value: &str| {
        let mut f: Vec<(String, String)> =
            fields.iter().filter(|(k, _)| k != name).cloned().collect();
        f.push((name.into(), value.into()));
        f.push(("username".into(), "alice".into()));
        f.push(("password".into(), "correct horse battery staple".into()));
        f
    };
    // A forged token, or a valid page's token from another browser (no cookie): refused.
    let forged = agent
        .post_form(&app.url("/login"), &with("csrf", "forged"))
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.contains("expired"));
    let stranger = FormAgent::new();
    assert_eq!(
        stranger
            .post_form(&app.url("/login"), &with("csrf", &fields[0].1))
            .await
            .status,
        403
    );
    // The consent form is protected the same way.
    let ok = agent.post_form(&app.url("/login"), &with("x", "y")).await;
    assert_eq!(ok.status, 303);
    let consent = agent.get(&app.url(ok.location.as_deref().unwrap())).await;
    assert!(consent.body.contains("action=\"/consent\""));
    let mut f: Vec<(String, String)> = hidden_inputs(&consent.body)
        .into_iter()
        .filter(|(k, _)| k != "csrf")
        .collect();
    f.push(("csrf".into(), "forged".into()));
    f.push(("decision".into(), "approve".into()));
    assert_eq!(agent.post_form(&app.url("/consent"), &f).await.status, 403);
}

async fn login_failures_are_generic_and_lockout_is_per_username(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.user("bob", "another long passphrase here", "user")
        .await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[]);
    let attempt = |user: &'static str, pw: &'static str| {
        let app = &app;
        let url = url.clone();
        async move {
            match FormAgent::new()
                .sign_in(&app.base, &url, user, pw, "approve")
                .await
            {
                Ok(loc) => Ok(loc),
                Err(page) => Err(page.body),
            }
        }
    };
    let wrong = attempt("alice", "wrong password").await.unwrap_err();
    let unknown = attempt("nobody", "wrong password").await.unwrap_err();
    assert!(wrong.contains("The username or password is incorrect."));
    assert!(unknown.contains("The username or password is incorrect."));
    assert!(wrong.contains("role=\"alert\""));
    // Five failures lock the name, whether or not it exists; the right password does not help.
    for _ in 0..4 {
        attempt("alice", "wrong password").await.unwrap_err();
        attempt("nobody", "wrong password").await.unwrap_err();
    }
    let locked = attempt("alice", "correct horse battery staple")
        .await
        .unwrap_err();
    assert!(
        locked.contains("Too many failed sign-in attempts"),
        "{locked}"
    );
    let locked_unknown = attempt("nobody", "wrong password").await.unwrap_err();
    assert!(locked_unknown.contains("Too many failed sign-in attempts"));
    // Other users are unaffected; the lock ends.
    assert!(attempt("bob", "another long passphrase here").await.is_ok());
    app.clock.advance(61);
    assert!(
        attempt("alice", "correct horse battery staple")
            .await
            .is_ok()
    );
    let events = app.audit_events().await;
    assert!(events.iter().any(|e| e.kind == "login.locked"));
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("correct horse") && !text.contains("wrong password"));
}
