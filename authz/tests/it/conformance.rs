//! The OpenID conformance findings (basic and config OP plans, adapted to a code + PKCE-only
//! provider): one test per failed module, named after it, each with its positive control.

use testkit::agent::{FormAgent, Page, hidden_inputs};
use testkit::both_backends;

use crate::support::{AFTER_LOGOUT, Backend, CB, TestApp, expect_error, expect_token, pkce, query};
use authz::store::AuthMethod;

both_backends!(
    oidcc_ensure_redirect_uri_in_authorization_request,
    oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported,
    rfc6749_error_charset,
    logout_post_from_rp,
    logout_hint_for_another_session,
    prompt_select_account,
    id_token_hint_other_user,
    oidcc_codereuse_30seconds,
);

const ALICE: (&str, &str) = ("alice", "correct horse battery staple");
const BOB: (&str, &str) = ("bob", "tr0ub4dor and three more words");

/// Alice and Bob, and the public client "rp" (loopback redirect, so consent is asked each time).
async fn setup(app: &TestApp) {
    app.user(ALICE.0, ALICE.1, "user").await;
    app.user(BOB.0, BOB.1, "user").await;
    app.code_client(
        "rp",
        AuthMethod::None,
        "openid profile notes:read offline_access",
    )
    .await;
}

/// Sign `who` in through the pages of `agent` and redeem the code: the token response.
async fn tokens_for(app: &TestApp, agent: &FormAgent, who: (&str, &str)) -> serde_json::Value {
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[
            ("scope", "openid notes:read offline_access"),
            ("nonce", "n"),
        ],
    );
    let back = app.browser_sign_in(agent, &url, who.0, who.1).await;
    expect_token(app.redeem("rp", &back["code"], &verifier).await).await
}

/// Follow same-site redirects from `page` (at most five); the first off-site redirect or page.
async fn follow(app: &TestApp, agent: &FormAgent, mut page: Page) -> Page {
    for _ in 0..5 {
        match page.location.clone() {
            Some(loc) if loc.starts_with('/') => page = agent.get(&app.url(&loc)).await,
            _ => break,
        }
    }
    page
}

fn is_page_not_redirect(page: &Page, status: u16) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(page.location.is_none(), "redirected to {:?}", page.location);
}

/// OIDC Core §3.1.2.1/§3.1.2.2: an OpenID request must carry `redirect_uri`, even for a client
/// with one registered URI; a plain OAuth request may still use the single-URI default.
async fn oidcc_ensure_redirect_uri_in_authorization_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    let without = |scope: &str| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", "rp")
            .append_pair("scope", scope)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        app.url(&format!("/authorize?{}", q.finish()))
    };
    let page = agent.get(&without("openid notes:read")).await;
    is_page_not_redirect(&page, 400);
    assert!(page.body.contains("redirect_uri"), "{}", page.body);
    // Controls: plain OAuth without it, and OpenID with it, reach the login page.
    let plain = agent.get(&without("notes:read")).await;
    assert_eq!(plain.status, 200);
    assert!(plain.body.contains("action=\"/login\""));
    let with = agent
        .get(&app.authorize_url("rp", &challenge, &[("scope", "openid")]))
        .await;
    assert!(with.body.contains("action=\"/login\""));
}

/// OIDC Core §6.2 / §3.1.2.6: `request_uri` is answered `request_uri_not_supported`, `request`
/// `request_not_supported`, at the client's redirect URI; metadata says neither is supported.
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    for (param, code) in [
        ("request_uri", "request_uri_not_supported"),
        ("request", "request_not_supported"),
    ] {
        let url = app.authorize_url(
            "rp",
            &challenge,
            &[("scope", "openid"), (param, "https://rp.example/req.jwt")],
        );
        let page = agent.get(&url).await;
        assert_eq!(page.status, 303, "{param}");
        let loc = page.location.unwrap();
        assert!(loc.starts_with(CB));
        let q = query(&loc);
        assert_eq!(q["error"], code, "{param}");
        assert_eq!(q["state"], "st-123");
    }
    let meta: serde_json::Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(meta["request_uri_parameter_supported"], false);
    assert_eq!(meta["request_parameter_supported"], false);
}

/// RFC 6749 §4.1.2.1 / §5.2 (RFC 6750 §3): `error_description` holds only %x20-21 / %x23-5B /
/// %x5D-7E, in JSON bodies, error redirects and challenges alike.
async fn rfc6749_error_charset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let legal = |d: &str| {
        d.chars()
            .all(|c| matches!(c, ' '..='!' | '#'..='[' | ']'..='~'))
    };
    let mut seen = Vec::new();
    // Token endpoint errors, among them the two the run found (§ in an RFC reference).
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read")]);
    let back = app.browser_sign_in(&agent, &url, ALICE.0, ALICE.1).await;
    let forms: Vec<Vec<(&str, &str)>> = vec![
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", "rp"),
            ("code", &back["code"]),
            ("redirect_uri", CB),
            (
                "code_verifier",
                "wrong-wrong-wrong-wrong-wrong-wrong-wrong-wrong",
            ),
        ],
        vec![("grant_type", "authorization_code"), ("client_id", "rp")],
        vec![("grant_type", "urn:\"quoted\"\\grant"), ("client_id", "rp")],
        vec![
            ("grant_type", "refresh_token"),
            ("client_id", "rp"),
            ("refresh_token", "x"),
        ],
        vec![("grant_type", "password"), ("client_id", "rp")],
        vec![("client_id", "rp")],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
        ],
    ];
    for form in &forms {
        let resp = app.token(form, None).await;
        let body: serde_json::Value = resp.json().await.unwrap();
        seen.push(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    // Authorization errors at the redirect URI, among them a client-chosen quoted value.
    for extra in [
        ("prompt", "bogus\"value\""),
        ("response_mode", "fragment"),
        ("scope", "no-such-scope"),
        ("max_age", "-1"),
        ("resource", "https://unknown.example/"),
    ] {
        let page = agent
            .get(&app.authorize_url("rp", &challenge, &[extra]))
            .await;
        let loc = page
            .location
            .unwrap_or_else(|| panic!("{extra:?}: {}", page.body));
        seen.push(query(&loc)["error_description"].clone());
    }
    // A bearer challenge.
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    seen.push(body["error_description"].as_str().unwrap().to_owned());
    let described = challenge.split("error_description=\"").nth(1).unwrap();
    seen.push(described.trim_end_matches('"').to_owned());
    assert_eq!(seen.len(), 14);
    for d in &seen {
        assert!(!d.is_empty(), "an empty description in {seen:?}");
        assert!(legal(d), "illegal character in {d:?}");
    }
    // The text still says what it said: the section reference reads "section".
    assert!(
        seen[0].contains("RFC 7636 section 4.6"),
        "verifier mismatch described as {:?}",
        seen[0]
    );
    assert!(seen.iter().any(|d| d.contains("'bogus")), "{seen:?}");
}

/// RP-Initiated Logout §2: the RP may POST its logout request (no CSRF token of ours); the
/// session ends as with GET. Our own confirmation form still needs its CSRF token.
async fn logout_post_from_rp(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let agent = FormAgent::new();
    let tokens = tokens_for(&app, &agent, ALICE).await;
    let access = tokens["access_token"].as_str().unwrap();
    let fields = |hint: &str| -> Vec<(String, String)> {
        vec![
            ("id_token_hint".into(), hint.to_owned()),
            ("post_logout_redirect_uri".into(), AFTER_LOGOUT.into()),
            ("state".into(), "bye".into()),
        ]
    };
    // Control: our confirmation step without the CSRF token is still refused.
    let mut forged = fields(tokens["id_token"].as_str().unwrap());
    forged.push(("decision".into(), "logout".into()));
    assert_eq!(
        agent.post_form(&app.url("/logout"), &forged).await.status,
        403
    );
    assert_eq!(app.userinfo_status(access).await, 200);
    // The RP's POST, the session cookie present: ended at once, back to the RP with state.
    let done = agent
        .post_form(
            &app.url("/logout"),
            &fields(tokens["id_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(&*format!("{AFTER_LOGOUT}?state=bye"))
    );
    assert_eq!(app.userinfo_status(access).await, 401);

    // A cross-site POST carries no SameSite=Lax cookie: continued as a GET, which does.
    let again = tokens_for(&app, &agent, ALICE).await;
    let access = again["access_token"].as_str().unwrap();
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = cookieless
        .post(app.url("/logout"))
        .form(&fields(again["id_token"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let next = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(next.starts_with("/logout?"), "{next}");
    assert_eq!(app.userinfo_status(access).await, 200, "nothing ended yet");
    let page = agent.get(&app.url(&next)).await;
    assert_eq!(
        page.location.as_deref(),
        Some(&*format!("{AFTER_LOGOUT}?state=bye"))
    );
    assert_eq!(app.userinfo_status(access).await, 401);
    // An unregistered return address in a POST is refused with a page, like the GET.
    let mut bad = fields(again["id_token"].as_str().unwrap());
    bad[1].1 = "https://evil.example/".into();
    is_page_not_redirect(&agent.post_form(&app.url("/logout"), &bad).await, 400);
}

/// RP-Initiated Logout §2: a browser holding Bob's session that follows a link with Alice's ID
/// token ends nobody's session without asking, and never Alice's.
async fn logout_hint_for_another_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let alice_browser = FormAgent::new();
    let alice = tokens_for(&app, &alice_browser, ALICE).await;
    let bob_browser = FormAgent::new();
    let bob = tokens_for(&app, &bob_browser, BOB).await;
    let link = app.url(&format!(
        "/logout?id_token_hint={}",
        alice["id_token"].as_str().unwrap()
    ));
    let page = bob_browser.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    for t in [&alice, &bob] {
        assert_eq!(
            app.userinfo_status(t["access_token"].as_str().unwrap())
                .await,
            200
        );
    }
    // Confirming ends the browser's own session (Bob's), never the one the hint names.
    let mut fields = hidden_inputs(&page.body);
    fields.push(("decision".into(), "logout".into()));
    assert_eq!(
        bob_browser
            .post_form(&app.url("/logout"), &fields)
            .await
            .status,
        200
    );
    assert_eq!(
        app.userinfo_status(bob["access_token"].as_str().unwrap())
            .await,
        401
    );
    assert_eq!(
        app.userinfo_status(alice["access_token"].as_str().unwrap())
            .await,
        200
    );
    // Control: Alice's own browser with her own hint signs her out at once.
    let own = alice_browser.get(&link).await;
    assert_eq!(own.status, 200, "no redirect: none was asked for");
    assert!(own.body.contains("signed out"), "{}", own.body);
    assert_eq!(
        app.userinfo_status(alice["access_token"].as_str().unwrap())
            .await,
        401
    );
}

/// OIDC Core §3.1.2.1 `prompt=select_account`: the signed-in user is asked to continue or to
/// use another account; with `prompt=none` no choice can be made.
async fn prompt_select_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let agent = FormAgent::new();
    tokens_for(&app, &agent, ALICE).await;
    let (_, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "openid"), ("prompt", "select_account")],
    );
    let page = agent.get(&url).await;
    assert_eq!(page.status, 200);
    assert!(page.location.is_none(), "a code was issued without asking");
    assert!(page.body.contains("Continue as alice"), "{}", page.body);
    let links: Vec<String> = page
        .body
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| h.starts_with("/authorize?"))
        .map(testkit::agent::unescape)
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    // Continue: on to the consent page as Alice (the client's identity is not assured).
    let cont = follow(&app, &agent, agent.get(&app.url(&links[0])).await).await;
    assert!(cont.body.contains("action=\"/consent\""), "{}", cont.body);
    assert!(cont.body.contains("alice"));
    // Another account: the login page; Bob signs in and the code is his.
    let other = agent.get(&app.url(&links[1])).await;
    assert!(other.body.contains("action=\"/login\""), "{}", other.body);
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "openid"), ("prompt", "select_account login")],
    );
    let back = app.browser_sign_in(&agent, &url, BOB.0, BOB.1).await;
    let bob = expect_token(app.redeem("rp", &back["code"], &verifier).await).await;
    let claims = app
        .verify(bob["access_token"].as_str().unwrap(), crate::support::MCP)
        .await;
    assert_eq!(
        claims.sub,
        app.state
            .store
            .get_user_by_username("bob")
            .await
            .unwrap()
            .unwrap()
            .id
    );
    // prompt=none cannot ask.
    let none = agent
        .get(&app.authorize_url("rp", &challenge, &[("prompt", "none select_account")]))
        .await;
    assert_eq!(
        query(&none.location.unwrap())["error"],
        "account_selection_required"
    );
}

/// OIDC Core §3.1.2.1 `id_token_hint`: only the user it names may be signed in for the
/// request; `prompt=none` for someone else is `login_required`, not a code for the wrong user.
async fn id_token_hint_other_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    // A second client, to present a hint issued to another one.
    app.code_client("web", AuthMethod::ClientSecretBasic, "openid notes:read")
        .await;
    let alice_hint = tokens_for(&app, &FormAgent::new(), ALICE).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob's browser.
    let agent = FormAgent::new();
    let bob = tokens_for(&app, &agent, BOB).await;
    let bob_hint = bob["id_token"].as_str().unwrap().to_owned();
    let (_, challenge) = pkce();
    let ask = |hint: &str, prompt: Option<&str>| {
        let mut extra = vec![("scope", "openid"), ("id_token_hint", hint)];
        if let Some(p) = prompt {
            extra.push(("prompt", p));
        }
        // Hints were issued to "rp".
        app.authorize_url("rp", &challenge, &extra)
    };
    let silent = agent.get(&ask(&alice_hint, Some("none"))).await;
    let q = query(&silent.location.expect("an error redirect"));
    assert_eq!(q["error"], "login_required");
    assert!(!q.contains_key("code"));
    // Control: Bob's own hint passes the account check (then consent is needed for "rp").
    let own = agent.get(&ask(&bob_hint, Some("none"))).await;
    assert_eq!(query(&own.location.unwrap())["error"], "consent_required");
    // Without prompt=none: the login page; Bob may not sign in for Alice's hint, Alice may.
    let page = agent.get(&ask(&alice_hint, None)).await;
    assert!(page.body.contains("action=\"/login\""), "{}", page.body);
    let refused = agent
        .sign_in(&app.base, &ask(&alice_hint, None), BOB.0, BOB.1, "approve")
        .await
        .unwrap_err();
    assert!(
        refused.body.contains("different account"),
        "{}",
        refused.body
    );
    let loc = agent
        .sign_in(
            &app.base,
            &ask(&alice_hint, None),
            ALICE.0,
            ALICE.1,
            "approve",
        )
        .await
        .unwrap();
    assert!(query(&loc).contains_key("code"));
    // A hint we did not issue (or issued to another client) is refused.
    let forged = agent.get(&ask("eyJhbGciOiJub25lIn0.e30.", None)).await;
    assert_eq!(query(&forged.location.unwrap())["error"], "invalid_request");
    let web = agent
        .get(&app.url(&format!(
            "/authorize?response_type=code&client_id=web&redirect_uri={}&scope=openid&\
             code_challenge={challenge}&code_challenge_method=S256&id_token_hint={bob_hint}",
            form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>()
        )))
        .await;
    assert_eq!(query(&web.location.unwrap())["error"], "invalid_request");
}

/// RFC 6749 §4.1.2: a code replayed 30 s later revokes what it issued, access token included,
/// at userinfo and introspection; another grant of the same user keeps working.
async fn oidcc_codereuse_30seconds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let rs = app.exchange_client("notes:read").await;
    let agent = FormAgent::new();
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "openid notes:read offline_access")],
    );
    let back = app.browser_sign_in(&agent, &url, ALICE.0, ALICE.1).await;
    let first = expect_token(app.redeem("rp", &back["code"], &verifier).await).await;
    let access = first["access_token"].as_str().unwrap();
    // Another browser, another session of the same user: must survive.
    let other = tokens_for(&app, &FormAgent::new(), ALICE).await;
    let other_access = other["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo_status(access).await, 200);
    assert_eq!(app.introspect(&rs, access).await["active"], true);

    app.clock.advance(30);
    expect_error(
        app.redeem("rp", &back["code"], &verifier).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.userinfo_status(access).await, 401);
    assert_eq!(app.introspect(&rs, access).await["active"], false);
    expect_error(
        app.refresh("rp", first["refresh_token"].as_str().unwrap(), &[])
            .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.userinfo_status(other_access).await, 200);
    assert_eq!(app.introspect(&rs, other_access).await["active"], true);
    assert!(app.audit_kinds().await.iter().any(|k| k == "code.replayed"));
}
