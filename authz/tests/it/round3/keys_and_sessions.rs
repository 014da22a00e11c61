//! The adversarial review of issue 25 (reproduced against the binaries), one test per finding,
//! each beside its positive control:
//!
//! - F1: an API key asked for through the management API (the MCP tool's way, by token
//!   exchange) follows the one re-authentication rule, as the console does: from a stale
//!   sign-in it is refused with RFC 9470's `insufficient_user_authentication` and `max_age`.
//! - F2: "End sessions" (administrator) and "Sign out other sessions" (the user) reach the
//!   sessions past their lifetime too: a browser can no longer use them, but the refresh
//!   tokens of the grants made through them still worked after the remedy.
//! - F3: answers of the management API (a new key's secret) are never stored by a cache.
//! - R2-1 (the review of the merged renovation): a request with two `Authorization` headers
//!   was authenticated by the first, so a proxy reading the last one would see another party;
//!   refused now, as two `DPoP` headers are.
//! - R4-2: `/token` told an unknown client id ("client authentication failed") from a known one
//!   presented with another method ("this client must authenticate with …"), so anyone could
//!   list the clients and their methods; the method is named now only to a caller who proved
//!   the client's secret.
//! - Review 5 F1: the same oracle through a `private_key_jwt` client: any assertion, even
//!   `a.b.c`, was refused with its reason ("malformed JWT", "no key … matches its kid", "its
//!   jwks_uri could not be fetched: …"), an unknown client with the generic answer. Every
//!   refusal of an assertion is the generic answer now; the reason goes to the audit log.

use serde_json::json;
use testkit::agent::FormAgent;
use testkit::both_backends;

use super::browser_reauth::{PW, STALE, post, signed_in};
use super::flows::{grant_through_rp, refreshed};
use crate::attacks::grants::{exchange, login, s, setup};
use crate::support::{Backend, TestApp, expect_token};
use authz::store::AuthMethod;

both_backends!(
    f1_an_api_key_through_the_management_api_needs_a_recent_sign_in,
    f2_ending_sessions_reaches_sessions_past_their_lifetime,
    f3_management_api_answers_are_not_stored,
    r2_1_two_authorization_headers_are_refused,
    r4_2_token_refusals_do_not_tell_which_clients_exist,
    review_5_f1_a_private_key_jwt_client_is_not_told_apart_from_an_unknown_one,
);

/// alice's management token (token exchange by "rs") from a password sign-in made now.
async fn management_token(app: &TestApp, rs: &str, subject: &str) -> String {
    let t = expect_token(exchange(app, rs, subject, "keys:write notes:read").await).await;
    s(&t, "access_token")
}

async fn create_key(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": name, "scope": "notes:read" }))
        .send()
        .await
        .unwrap()
}

async fn f1_an_api_key_through_the_management_api_needs_a_recent_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs = setup(&app).await;
    let alice = app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let user = login(&app, "keys:write notes:read offline_access").await;

    // Positive control: right after the sign-in, the key is made.
    let mgmt = management_token(&app, &rs, &s(&user, "access_token")).await;
    let fresh = create_key(&app, &mgmt, "fresh").await;
    assert_eq!(fresh.status(), 201, "{}", fresh.text().await.unwrap());

    // Past the re-authentication window, with a live grant (a refreshed token, exchanged
    // again): refused, with the step-up challenge, and nothing is stored.
    app.clock.advance(STALE);
    let r = app.refresh("cli", &s(&user, "refresh_token"), &[]).await;
    let again = expect_token(r).await;
    let stale_mgmt = management_token(&app, &rs, &s(&again, "access_token")).await;
    let stale = create_key(&app, &stale_mgmt, "planted").await;
    assert_eq!(stale.status(), 401);
    let challenge = stale
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    let max_age = app.state.config.console.reauth_secs;
    assert!(
        challenge.contains(&format!("max_age={max_age}")),
        "{challenge}"
    );
    let body: serde_json::Value = stale.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_user_authentication", "{body}");
    let keys = app
        .state
        .store
        .list_clients_owned_by(&alice.id)
        .await
        .unwrap();
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["fresh"], "only the control's key");

    // The same token still does what needs no fresh sign-in: listing keys.
    let list = app
        .http
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(&stale_mgmt)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);

    // Signed in again: made.
    let user = login(&app, "keys:write notes:read").await;
    let mgmt = management_token(&app, &rs, &s(&user, "access_token")).await;
    assert_eq!(create_key(&app, &mgmt, "again").await.status(), 201);
}

/// alice signed in to a browser, with rp's refresh token from it; then the clock passes the
/// session's absolute lifetime (the grant lives on: positive control).
async fn grant_past_the_session_lifetime(app: &TestApp) -> (FormAgent, String) {
    let agent = signed_in(app, "alice").await;
    let rt = grant_through_rp(app, &agent).await;
    app.clock
        .advance(app.state.config.browser.session_absolute_secs + 60);
    let rt = refreshed(app, &rt)
        .await
        .expect("the grant outlives the browser session's lifetime");
    (agent, rt)
}

async fn f2_ending_sessions_reaches_sessions_past_their_lifetime(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice", PW, "user").await;
    app.user("root", PW, "admin").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read offline_access")
        .await;

    // The administrator's "End sessions".
    let (_, rt) = grant_past_the_session_lifetime(&app).await;
    let admin = signed_in(&app, "root").await;
    let url = format!("/admin/users/{alice}/end-sessions");
    let done = post(&app, &admin, &url, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        refreshed(&app, &rt).await.is_none(),
        "admin: the grant ended"
    );

    // The user's "Sign out other sessions", from a new sign-in: the old session is listed,
    // and ending the others ends its grant.
    let (_, rt) = grant_past_the_session_lifetime(&app).await;
    let me = signed_in(&app, "alice").await;
    let page = me.get(&app.url("/account/sessions")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("/account/sessions/others"),
        "the other session is offered for sign-out: {}",
        page.body
    );
    let done = post(&app, &me, "/account/sessions/others", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(
        refreshed(&app, &rt).await.is_none(),
        "user: the grant ended"
    );
    let page = me.get(&app.url("/account")).await;
    assert_eq!(page.status, 200, "the current session stays");
}

async fn f3_management_api_answers_are_not_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs = setup(&app).await;
    let user = login(&app, "keys:write notes:read").await;
    let mgmt = management_token(&app, &rs, &s(&user, "access_token")).await;
    let cache = |r: &reqwest::Response| {
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let made = create_key(&app, &mgmt, "bot").await;
    assert_eq!(made.status(), 201);
    assert_eq!(
        cache(&made).as_deref(),
        Some("no-store"),
        "a new key's secret"
    );
    let list = app
        .http
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(&mgmt)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(cache(&list).as_deref(), Some("no-store"), "the key list");
    // Control: a public, cacheable document keeps its own caching.
    let jwks = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    assert_ne!(
        cache(&jwks).as_deref(),
        Some("no-store"),
        "the JWKS is cacheable"
    );
}

async fn r2_1_two_authorization_headers_are_refused(backend: Backend) {
    use base64::Engine;
    let app = TestApp::spawn(backend).await;
    let secret = app.service_client("svc", "notes:read").await;
    let basic = |s: &str| {
        let raw = format!("svc:{s}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    let token = |headers: Vec<String>| {
        let app = &app;
        async move {
            let mut req = app.http.post(app.url("/token")).form(&[
                ("grant_type", "client_credentials"),
                ("scope", "notes:read"),
            ]);
            for h in headers {
                req = req.header("authorization", h);
            }
            req.send().await.unwrap()
        }
    };
    // Positive control: one header, the right secret.
    let one = token(vec![basic(&secret)]).await;
    let access = expect_token(one).await;
    // Two headers, whichever comes first: refused.
    for pair in [
        vec![basic(&secret), basic("wrong")],
        vec![basic("wrong"), basic(&secret)],
    ] {
        let r = token(pair).await;
        crate::support::expect_error(r, 400, "invalid_request").await;
    }
    // At a resource endpoint too (RFC 6750 §3.1).
    let bearer = format!("Bearer {}", s(&access, "access_token"));
    let two = app
        .http
        .get(app.url("/userinfo"))
        .header("authorization", &bearer)
        .header("authorization", "Bearer x")
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 400);
}

async fn r4_2_token_refusals_do_not_tell_which_clients_exist(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.service_client("svc", "notes:read").await;
    let token = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut form = form;
            form.push(("grant_type", "client_credentials".into()));
            let r = app.http.post(app.url("/token")).form(&form);
            r.send().await.unwrap()
        }
    };
    // The probes an outsider can make without any secret, for a client that exists ("svc",
    // client_secret_basic) and one that does not: the same answer, word for word.
    for (probe, form) in [
        ("none", vec![]),
        (
            "client_secret_post",
            vec![("client_secret", "guess".to_owned())],
        ),
    ] {
        let mut answers = Vec::new();
        for id in ["svc", "nobody"] {
            let mut form = form.clone();
            form.push(("client_id", id.to_owned()));
            answers
                .push(crate::support::expect_error(token(form).await, 401, "invalid_client").await);
        }
        assert_eq!(
            answers[0], answers[1],
            "{probe}: a known client id is told apart"
        );
    }
    // Positive controls: the client's own secret through the wrong method is told which method
    // to use (it proved it is the client), and through the right one gets a token.
    let wrong_method = vec![
        ("client_id", "svc".to_owned()),
        ("client_secret", secret.clone()),
    ];
    let told = crate::support::expect_error(token(wrong_method).await, 401, "invalid_client").await;
    assert!(told.contains("client_secret_basic"), "{told}");
    let right = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    expect_token(right).await;
}

async fn review_5_f1_a_private_key_jwt_client_is_not_told_apart_from_an_unknown_one(
    backend: Backend,
) {
    use authz::clock::Clock;
    use authz::store::GrantType;
    let app = TestApp::spawn(backend).await;
    let (pem, jwk) = testkit::https::es256_key("k1");
    let keys = json!({ "keys": [jwk] });
    app.private_key_jwt_client("signed", &keys, &[GrantType::ClientCredentials])
        .await;
    let now = app.clock.now();
    let claims = |id: &str, jti: &str| json!({ "iss": id, "sub": id, "aud": app.base, "exp": now + 60, "iat": now, "jti": jti });
    let token = |id: &'static str, assertion: String| {
        let app = &app;
        async move {
            let form = [("grant_type", "client_credentials"), ("client_id", id)];
            app.token_with_assertion(&form, &assertion).await
        }
    };
    let forged = |id, kid, jti| {
        crate::idp::sign(
            &testkit::https::es256_key(kid).0,
            None,
            kid,
            &claims(id, jti),
        )
    };
    // What an outsider can send without the client's key: garbage, and a signed assertion
    // naming another kid or the right kid with another key. For the client and for an unknown
    // id: the same answer, word for word.
    for (probe, signed, unknown) in [
        ("garbage", "a.b.c".to_owned(), "a.b.c".to_owned()),
        (
            "other kid",
            forged("signed", "k9", "j1"),
            forged("nobody", "k9", "j2"),
        ),
        (
            "other key",
            forged("signed", "k1", "j3"),
            forged("nobody", "k1", "j4"),
        ),
    ] {
        let known =
            crate::support::expect_error(token("signed", signed).await, 401, "invalid_client")
                .await;
        // The operator learns why (the audit log).
        let why = app.last_client_auth_failure().await;
        assert!(why.contains("client assertion"), "{probe}: {why}");
        let other =
            crate::support::expect_error(token("nobody", unknown).await, 401, "invalid_client")
                .await;
        assert_eq!(
            known, other,
            "{probe}: a private_key_jwt client is told apart"
        );
    }
    // Positive control: the client's own assertion gets a token.
    let own = crate::idp::sign(&pem, None, "k1", &claims("signed", "j5"));
    expect_token(token("signed", own).await).await;
}
