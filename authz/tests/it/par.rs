//! Pushed authorization requests (RFC 9126), end to end: the client pushes with reqwest (the
//! oauth2/openidconnect crates have no PAR support), the browser is a `FormAgent` on the real
//! sign-in and consent pages, the code is redeemed at `/token`. Every refusal has its positive
//! control beside it.

use serde_json::Value;
use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, CB, MCP, TestApp, expect_error, expect_token, pkce, query};
use authz::identity::admin;
use authz::store::{AuthMethod, ClientSettings, GrantType};

both_backends!(
    pushed_request_end_to_end,
    public_client_pushes_with_its_client_id,
    replayed_request_uri_is_refused,
    expired_request_uri_is_refused,
    request_uri_of_another_client_is_refused,
    client_requiring_par_cannot_use_plain_authorize,
    server_wide_par_requirement,
    invalid_params_at_par_get_the_authorize_errors,
    tampered_pushed_parameters_are_refused_in_later_steps,
);

const PW: &str = "correct horse battery staple";

type Form<'a> = Vec<(&'a str, &'a str)>;

/// A confidential browser client "rp" (Basic auth), optionally required to push; its secret.
async fn rp(app: &TestApp, id: &str, require_par: bool) -> String {
    let (_, secret) = admin::add_client(
        app.state.client_services(),
        "test",
        Some(id.to_owned()),
        ClientSettings {
            name: format!("{id} app"),
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uris: vec![CB.to_owned()],
            scopes: shared::ScopeSet::parse("openid profile notes:read").unwrap(),
            resources: vec![MCP.to_owned()],
            require_pushed_authorization_requests: require_par,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    secret.unwrap().expose().to_owned()
}

fn params<'a>(challenge: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("redirect_uri", CB),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "st-par"),
        ("scope", "openid notes:read"),
        ("nonce", "n-0S6_WzA2Mj"),
    ];
    p.extend_from_slice(extra);
    p
}

async fn push(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.http.post(app.url("/par")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

/// Push for `client_id` (Basic with `secret`): the request_uri.
async fn push_ok(app: &TestApp, client_id: &str, secret: &str, challenge: &str) -> String {
    let r = push(app, Some((client_id, secret)), &params(challenge, &[])).await;
    assert_eq!(r.status(), 201, "RFC 9126 §2.2: 201 Created");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    uri
}

fn authorize_with(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .finish();
    app.url(&format!("/authorize?{q}"))
}

async fn pushed_request_end_to_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    let secret = rp(&app, "rp", false).await;
    let meta: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        meta["pushed_authorization_request_endpoint"],
        app.url("/par")
    );
    assert_eq!(meta["require_pushed_authorization_requests"], false);

    let (verifier, challenge) = pkce();
    let uri = push_ok(&app, "rp", &secret, &challenge).await;
    // Stored hashed only.
    let raw = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM par_requests WHERE uri_hash = '{uri}'"
        ))
        .await;
    assert_eq!(raw, 0);
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM par_requests").await, 1);

    // The browser goes to /authorize with only client_id and request_uri; the sign-in and
    // consent steps carry the pushed request on after it is spent.
    let agent = FormAgent::new();
    let back = app
        .browser_sign_in(&agent, &authorize_with(&app, "rp", &uri), "alice", PW)
        .await;
    assert_eq!(back["state"], "st-par");
    assert_eq!(back["iss"], app.base);
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM par_requests").await, 0);
    let r = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &back["code"]),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
            Some(("rp", &secret)),
        )
        .await;
    let body = expect_token(r).await;
    assert!(body["id_token"].is_string(), "openid was pushed");
    let claims = app
        .verify(body["access_token"].as_str().unwrap(), MCP)
        .await;
    assert_eq!(claims.client_id, "rp");
    assert!(app.audit_kinds().await.iter().any(|k| k == "par.pushed"));
}

async fn public_client_pushes_with_its_client_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.code_client("cli", AuthMethod::None, "notes:read").await;
    let (verifier, challenge) = pkce();
    let mut form = params(&challenge, &[("client_id", "cli")]);
    form.retain(|(k, _)| *k != "nonce");
    form.iter_mut()
        .filter(|(k, _)| *k == "scope")
        .for_each(|p| p.1 = "notes:read");
    let r = push(&app, None, &form).await;
    assert_eq!(r.status(), 201);
    let uri: Value = r.json().await.unwrap();
    let agent = FormAgent::new();
    let url = authorize_with(&app, "cli", uri["request_uri"].as_str().unwrap());
    let back = app.browser_sign_in(&agent, &url, "alice", PW).await;
    let body = expect_token(app.redeem("cli", &back["code"], &verifier).await).await;
    assert!(body["access_token"].is_string());
    // Without any client_id, nobody is authenticated.
    form.retain(|(k, _)| *k != "client_id");
    expect_error(push(&app, None, &form).await, 401, "invalid_client").await;
}

async fn replayed_request_uri_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = rp(&app, "rp", false).await;
    let (_, challenge) = pkce();
    let uri = push_ok(&app, "rp", &secret, &challenge).await;
    let url = authorize_with(&app, "rp", &uri);
    // Positive control: the first use shows the sign-in page.
    let first = FormAgent::new().get(&url).await;
    assert_eq!(first.status, 200);
    assert!(first.body.contains("action=\"/login\""));
    // RFC 9126 §4: single use.
    let again = FormAgent::new().get(&url).await;
    assert_eq!(again.status, 400);
    assert!(
        again.body.contains("Sign-in request expired"),
        "{}",
        again.body
    );
    assert!(again.location.is_none(), "a page, never a redirect");
}

async fn expired_request_uri_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = rp(&app, "rp", false).await;
    let (_, challenge) = pkce();
    // Positive control: used within expires_in.
    let uri = push_ok(&app, "rp", &secret, &challenge).await;
    app.clock.advance(59);
    let ok = FormAgent::new()
        .get(&authorize_with(&app, "rp", &uri))
        .await;
    assert_eq!(ok.status, 200);
    // After it: refused.
    let uri = push_ok(&app, "rp", &secret, &challenge).await;
    app.clock.advance(61);
    let late = FormAgent::new()
        .get(&authorize_with(&app, "rp", &uri))
        .await;
    assert_eq!(late.status, 400);
    assert!(late.body.contains("Sign-in request expired"));
}

async fn request_uri_of_another_client_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = rp(&app, "rp", false).await;
    rp(&app, "other", false).await;
    let (_, challenge) = pkce();
    let uri = push_ok(&app, "rp", &secret, &challenge).await;
    // The request_uri is bound to the client that pushed it (RFC 9126 §4).
    let wrong = FormAgent::new()
        .get(&authorize_with(&app, "other", &uri))
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("Sign-in request expired"));
    let missing = FormAgent::new()
        .get(&app.url(&format!(
            "/authorize?request_uri={}",
            form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
        )))
        .await;
    assert_eq!(
        missing.status, 400,
        "client_id is required with request_uri"
    );
    // Positive control: not spent by the wrong client; its own client can use it.
    let own = FormAgent::new()
        .get(&authorize_with(&app, "rp", &uri))
        .await;
    assert_eq!(own.status, 200);
}

async fn client_requiring_par_cannot_use_plain_authorize(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    let secret = rp(&app, "strict", true).await;
    let (verifier, challenge) = pkce();
    // Plain /authorize: refused, told at its registered redirect URI (RFC 9126 §6).
    let plain = app.authorize_url("strict", &challenge, &[("scope", "notes:read")]);
    let r = FormAgent::new().get(&plain).await;
    assert_eq!(r.status, 303);
    let q = query(&r.location.unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("pushed"), "{q:?}");
    // Positive control: pushed, the whole flow works (through login and consent).
    let uri = push_ok(&app, "strict", &secret, &challenge).await;
    let back = app
        .browser_sign_in(
            &FormAgent::new(),
            &authorize_with(&app, "strict", &uri),
            "alice",
            PW,
        )
        .await;
    let r = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &back["code"]),
                ("redirect_uri", CB),
                ("code_verifier", &verifier),
            ],
            Some(("strict", &secret)),
        )
        .await;
    expect_token(r).await;
}

async fn server_wide_par_requirement(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.par.required = true).await;
    let meta: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["require_pushed_authorization_requests"], true);
    let secret = rp(&app, "rp", false).await;
    let (_, challenge) = pkce();
    let r = FormAgent::new()
        .get(&app.authorize_url("rp", &challenge, &[]))
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(query(&r.location.unwrap())["error"], "invalid_request");
    // Positive control.
    let uri = push_ok(&app, "rp", &secret, &challenge).await;
    let ok = FormAgent::new()
        .get(&authorize_with(&app, "rp", &uri))
        .await;
    assert_eq!(ok.status, 200);
}

async fn invalid_params_at_par_get_the_authorize_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = rp(&app, "rp", false).await;
    let basic = Some(("rp", secret.as_str()));
    let (_, challenge) = pkce();
    // Positive control.
    let ok = push(&app, basic, &params(&challenge, &[])).await;
    assert_eq!(ok.status(), 201);
    let without = |name: &'static str| {
        let mut p = params(&challenge, &[]);
        p.retain(|(k, _)| *k != name);
        p
    };
    let with = |name: &'static str, value: &'static str| {
        let mut p = params(&challenge, &[]);
        p.retain(|(k, _)| *k != name);
        p.push((name, value));
        p
    };
    let cases: Vec<(Form<'_>, u16, &str)> = vec![
        (without("code_challenge"), 400, "invalid_request"),
        (
            with("code_challenge_method", "plain"),
            400,
            "invalid_request",
        ),
        (
            with("response_type", "token"),
            400,
            "unsupported_response_type",
        ),
        (with("scope", "openid audit:read"), 400, "invalid_scope"),
        (
            with("resource", "https://elsewhere.example/"),
            400,
            "invalid_target",
        ),
        (
            with("redirect_uri", "https://evil.example/cb"),
            400,
            "invalid_request",
        ),
        (without("redirect_uri"), 400, "invalid_request"),
        (with("prompt", "bogus"), 400, "invalid_request"),
        (
            with("request_uri", "urn:ietf:params:oauth:request_uri:x"),
            400,
            "invalid_request",
        ),
        (with("client_id", "other"), 400, "invalid_request"),
    ];
    for (form, status, code) in cases {
        let r = push(&app, basic, &form).await;
        let d = expect_error(r, status, code).await;
        assert!(!d.is_empty(), "{code} explains itself");
    }
    // Wrong credentials: invalid_client.
    let r = push(&app, Some(("rp", "wrong")), &params(&challenge, &[])).await;
    expect_error(r, 401, "invalid_client").await;
    // Only the valid push was stored.
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM par_requests").await, 1);
}

async fn tampered_pushed_parameters_are_refused_in_later_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    let secret = rp(&app, "strict", true).await;
    let (_, challenge) = pkce();
    let uri = push_ok(&app, "strict", &secret, &challenge).await;
    let agent = FormAgent::new();
    let login = agent.get(&authorize_with(&app, "strict", &uri)).await;
    assert_eq!(login.status, 200);
    let fields = hidden_inputs(&login.body);
    let request = fields
        .iter()
        .find(|(k, _)| k == "request")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(request.contains("par_ticket="), "{request}");
    let submit = |request: String| {
        let mut f: Vec<(String, String)> = fields
            .iter()
            .filter(|(k, _)| k != "request")
            .cloned()
            .collect();
        f.push(("request".into(), request));
        f.push(("username".into(), "alice".into()));
        f.push(("password".into(), PW.into()));
        f
    };
    // The scope changed in the carried request: the ticket no longer matches.
    let tampered = request.replace("notes%3Aread", "profile");
    assert_ne!(tampered, request);
    let r = agent.post_form(&app.url("/login"), &submit(tampered)).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Sign-in request expired"), "{}", r.body);
    // Without the ticket it is a plain request, which this client may not send.
    let stripped: String = request.split("&par_ticket=").next().unwrap().to_owned();
    let r = agent.post_form(&app.url("/login"), &submit(stripped)).await;
    assert_eq!(r.status, 303);
    assert_eq!(query(&r.location.unwrap())["error"], "invalid_request");
    // Positive control: the request as carried signs in and continues.
    let r = agent.post_form(&app.url("/login"), &submit(request)).await;
    assert_eq!(r.status, 303);
    assert!(r.location.unwrap().starts_with("/authorize?"));
}
