//! The device authorization grant (RFC 8628), end to end: the device side is the
//! `openidconnect` crate's device flow, the user's browser a `FormAgent` on the real `/device`
//! pages (signed in through the real sign-in). Every refusal has its positive control beside it.

use std::time::Duration;

use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
use openidconnect::{
    ClientId, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse, Scope, TokenResponse,
};
use serde_json::Value;
use testkit::agent::{FormAgent, Page, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, MCP, TestApp, expect_error, expect_token, jwt_claims};
use authz::store::{AuthMethod, GrantType};

both_backends!(
    openidconnect_device_flow_end_to_end,
    user_code_refusals_wrong_expired_used,
    polling_too_fast_gets_slow_down_and_a_longer_interval,
    expired_device_code_gets_expired_token,
    denied_request_gets_access_denied,
    client_without_the_grant_is_refused,
    metadata_lists_the_device_flow_only_when_enabled,
    code_entry_is_rate_limited_per_session,
    device_grant_is_a_session_that_revocation_ends,
    the_tokens_say_how_the_approver_signed_in,
);

const PW: &str = "correct horse battery staple";

/// A public device client "tv" (device code + refresh), and the user alice.
pub(crate) async fn setup(app: &TestApp) {
    app.user("alice", PW, "user").await;
    app.client(
        "tv",
        AuthMethod::None,
        &[GrantType::DeviceCode, GrantType::RefreshToken],
        "openid notes:read notes:write offline_access",
        &[MCP],
    )
    .await;
}

/// `POST /device_authorization` as client `tv`.
async fn start(app: &TestApp, client_id: &str, scope: &str) -> reqwest::Response {
    app.http
        .post(app.url("/device_authorization"))
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn start_ok(app: &TestApp) -> Value {
    let r = start(app, "tv", "notes:read offline_access").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

pub(crate) async fn poll(app: &TestApp, device_code: &str) -> reqwest::Response {
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

/// Sign `user` in through the real pages, arriving at `path` (e.g. `/device?user_code=…`):
/// the page found there.
async fn signed_in_at(app: &TestApp, agent: &FormAgent, path: &str, user: &str) -> Page {
    let first = agent.get(&app.url(path)).await;
    assert_eq!(first.status, 303, "not signed in: to the sign-in page");
    let login_url = first.location.clone().unwrap();
    assert!(
        login_url.starts_with("/account/login?next=%2Fdevice"),
        "{login_url}"
    );
    let login = agent.get(&app.url(&login_url)).await;
    let mut fields = hidden_inputs(&login.body);
    fields.push(("username".into(), user.into()));
    fields.push(("password".into(), PW.into()));
    let done = agent.post_form(&app.url("/login"), &fields).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = done.location.unwrap();
    assert!(
        back.starts_with("/device"),
        "back to the device page: {back}"
    );
    agent.get(&app.url(&back)).await
}

/// Submit the code entry form with `code`.
async fn enter(app: &TestApp, agent: &FormAgent, entry_page: &Page, code: &str) -> Page {
    let mut fields: Vec<(String, String)> = hidden_inputs(&entry_page.body)
        .into_iter()
        .filter(|(k, _)| k == "csrf")
        .collect();
    fields.push(("user_code".into(), code.into()));
    agent.post_form(&app.url("/device"), &fields).await
}

/// Submit the confirmation page's `decision`.
async fn decide(app: &TestApp, agent: &FormAgent, confirm: &Page, decision: &str) -> Page {
    let mut fields = hidden_inputs(&confirm.body);
    fields.push(("decision".into(), decision.into()));
    agent.post_form(&app.url("/device/decide"), &fields).await
}

/// Approve `user_code` as alice in a fresh browser.
pub(crate) async fn approve(app: &TestApp, user_code: &str, decision: &str) -> Page {
    let agent = FormAgent::new();
    let entry = signed_in_at(app, &agent, "/device", "alice").await;
    assert_eq!(entry.status, 200);
    let confirm = enter(app, &agent, &entry, user_code).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("action=\"/device/decide\""));
    decide(app, &agent, &confirm, decision).await
}

async fn openidconnect_device_flow_end_to_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.base.clone()).unwrap(),
        &app.oidc(),
    )
    .await
    .unwrap();
    let raw: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let endpoint = raw["device_authorization_endpoint"].as_str().unwrap();
    assert_eq!(endpoint, app.url("/device_authorization"));
    let client = CoreClient::from_provider_metadata(meta, ClientId::new("tv".into()), None)
        .set_device_authorization_url(DeviceAuthorizationUrl::new(endpoint.into()).unwrap());
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("notes:read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&app.oidc())
        .await
        .unwrap();
    // RFC 8628 §3.2, §6.1: XXXX-XXXX from the no-vowel alphabet; the page and its complete form.
    let code = details.user_code().secret().clone();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert!(
        code.chars()
            .filter(|c| *c != '-')
            .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{code}"
    );
    assert_eq!(details.verification_uri().as_str(), app.url("/device"));
    let complete = details
        .verification_uri_complete()
        .unwrap()
        .secret()
        .clone();
    assert_eq!(complete, app.url(&format!("/device?user_code={code}")));
    assert_eq!(details.interval(), Duration::from_secs(5));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    // The device code is stored hashed, never as it is.
    let device_code = details.device_code().secret().clone();
    let stored = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM device_codes WHERE device_hash = '{device_code}' \
             OR user_code_hash = '{code}'"
        ))
        .await;
    assert_eq!(stored, 0);

    // Not yet approved: authorization_pending (RFC 8628 §3.5).
    expect_error(poll(&app, &device_code).await, 400, "authorization_pending").await;

    // The user opens the complete URI: signs in, the form comes filled in, confirms.
    let agent = FormAgent::new();
    let entry = signed_in_at(&app, &agent, &format!("/device?user_code={code}"), "alice").await;
    assert_eq!(entry.status, 200);
    assert!(
        entry.body.contains(&format!("value=\"{code}\"")),
        "prefilled"
    );
    let confirm = enter(&app, &agent, &entry, &code).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("tv (test)"), "the client's name");
    assert!(confirm.body.contains("notes:read"));
    assert!(
        confirm
            .body
            .contains(authz::policy::scope::describe("notes:read")),
        "scopes in words"
    );
    let done = decide(&app, &agent, &confirm, "approve").await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Device connected"), "{}", done.body);

    // The device polls (the library; its sleep moves the server's clock on).
    app.clock.advance(5);
    let clock = app.clock.clone();
    let tokens = client
        .exchange_device_access_token(&details)
        .unwrap()
        .request_async(
            &app.oidc(),
            move |d: Duration| {
                clock.advance(d.as_secs() as i64);
                async {}
            },
            None,
        )
        .await
        .unwrap();
    let claims = app.verify(tokens.access_token().secret(), MCP).await;
    assert_eq!(claims.client_id, "tv");
    assert!(claims.sid.is_some(), "bound to a grant session");
    assert!(tokens.refresh_token().is_some(), "offline_access");
    // openidconnect asks for `openid` itself: an ID token (no nonce in the device flow).
    let id_token = tokens.id_token().expect("id_token with openid");
    let id_claims = id_token
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(id_claims.audiences()[0].as_str(), "tv");
    let scope = tokens.scopes().unwrap();
    assert!(scope.iter().any(|s| s.as_str() == "notes:read"));

    // Issued once: the next poll is refused.
    app.clock.advance(5);
    expect_error(poll(&app, &device_code).await, 400, "invalid_grant").await;
    let kinds = app.audit_kinds().await;
    for k in [
        "device.authorization_started",
        "device.approved",
        "device.token_issued",
    ] {
        assert!(kinds.iter().any(|x| x == k), "audit {k}: {kinds:?}");
    }
}

async fn user_code_refusals_wrong_expired_used(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let agent = FormAgent::new();
    let entry = signed_in_at(&app, &agent, "/device", "alice").await;

    // Wrong code: the form again, with a message.
    let wrong = enter(&app, &agent, &entry, "BBBB-BBBB").await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.body.contains("That code is not valid"),
        "{}",
        wrong.body
    );
    let not_ours = enter(&app, &agent, &entry, "AEIO-U123").await;
    assert_eq!(not_ours.status, 400);
    // Positive control: a real code, typed in lower case without the dash, is found.
    let d = start_ok(&app).await;
    let code = d["user_code"].as_str().unwrap().to_owned();
    let typed = code.replace('-', "").to_lowercase();
    let confirm = enter(&app, &agent, &entry, &typed).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains(&code), "the code shown to compare");

    // Used code: approved once, then entered again.
    let done = decide(&app, &agent, &confirm, "approve").await;
    assert!(done.body.contains("Device connected"));
    let again = enter(&app, &agent, &entry, &code).await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("Code already used"), "{}", again.body);
    // Deciding the same code a second time is refused as well.
    let twice = decide(&app, &agent, &confirm, "approve").await;
    assert!(twice.body.contains("Code already used"), "{}", twice.body);

    // Expired code: after expires_in (positive control: before it, it is found).
    let d = start_ok(&app).await;
    let code = d["user_code"].as_str().unwrap().to_owned();
    app.clock.advance(599);
    let fresh_agent = FormAgent::new();
    let entry = signed_in_at(&app, &fresh_agent, "/device", "alice").await;
    let ok = enter(&app, &fresh_agent, &entry, &code).await;
    assert_eq!(ok.status, 200, "not yet expired");
    app.clock.advance(2);
    let expired = enter(&app, &fresh_agent, &entry, &code).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("Code expired"), "{}", expired.body);
    // And it can no longer be approved from the page already shown.
    let late = decide(&app, &fresh_agent, &ok, "approve").await;
    assert!(late.body.contains("Code expired"), "{}", late.body);
    assert!(
        app.audit_kinds()
            .await
            .iter()
            .any(|k| k == "device.user_code_failed")
    );
}

async fn polling_too_fast_gets_slow_down_and_a_longer_interval(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let d = start_ok(&app).await;
    let dc = d["device_code"].as_str().unwrap().to_owned();
    expect_error(poll(&app, &dc).await, 400, "authorization_pending").await;
    // Again at once: slow_down, and the interval of this code is now 10 s (RFC 8628 §3.5).
    app.clock.advance(1);
    expect_error(poll(&app, &dc).await, 400, "slow_down").await;
    let interval = app
        .sql_count("SELECT interval_secs FROM device_codes")
        .await;
    assert_eq!(interval, 10);
    // 5 s is now too soon as well; the interval grows again.
    app.clock.advance(5);
    expect_error(poll(&app, &dc).await, 400, "slow_down").await;
    // Positive control: waiting the (new) interval is fine.
    app.clock.advance(15);
    expect_error(poll(&app, &dc).await, 400, "authorization_pending").await;
    // Approved: the next poll in time gets the tokens.
    let done = approve(&app, d["user_code"].as_str().unwrap(), "approve").await;
    assert!(done.body.contains("Device connected"));
    app.clock.advance(15);
    let body = expect_token(poll(&app, &dc).await).await;
    assert!(body["access_token"].is_string());
}

async fn expired_device_code_gets_expired_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let old = start_ok(&app).await;
    app.clock.advance(601);
    let dc = old["device_code"].as_str().unwrap();
    expect_error(poll(&app, dc).await, 400, "expired_token").await;
    // An approval cannot revive it either.
    let late = approve_expired(&app, old["user_code"].as_str().unwrap()).await;
    assert!(late.body.contains("Code expired"));
    // Positive control: a fresh one is pending.
    let fresh = start_ok(&app).await;
    let dc = fresh["device_code"].as_str().unwrap();
    expect_error(poll(&app, dc).await, 400, "authorization_pending").await;
    // Unknown device codes are invalid_grant.
    expect_error(poll(&app, "not-a-device-code").await, 400, "invalid_grant").await;
}

async fn approve_expired(app: &TestApp, user_code: &str) -> Page {
    let agent = FormAgent::new();
    let entry = signed_in_at(app, &agent, "/device", "alice").await;
    enter(app, &agent, &entry, user_code).await
}

async fn denied_request_gets_access_denied(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let denied = start_ok(&app).await;
    let page = approve(&app, denied["user_code"].as_str().unwrap(), "deny").await;
    assert!(page.body.contains("Request denied"), "{}", page.body);
    let dc = denied["device_code"].as_str().unwrap();
    expect_error(poll(&app, dc).await, 400, "access_denied").await;
    // It stays denied.
    app.clock.advance(10);
    expect_error(poll(&app, dc).await, 400, "access_denied").await;
    // Positive control: an approved one issues.
    let ok = start_ok(&app).await;
    approve(&app, ok["user_code"].as_str().unwrap(), "approve").await;
    let body = expect_token(poll(&app, ok["device_code"].as_str().unwrap()).await).await;
    assert!(body["refresh_token"].is_string());
    assert!(app.audit_kinds().await.iter().any(|k| k == "device.denied"));
}

async fn client_without_the_grant_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    app.code_client("web", AuthMethod::None, "notes:read").await;
    expect_error(
        start(&app, "web", "notes:read").await,
        400,
        "unauthorized_client",
    )
    .await;
    // Nor may it poll with another client's device code.
    let d = start_ok(&app).await;
    let dc = d["device_code"].as_str().unwrap();
    let r = app
        .token(
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", "web"),
                ("device_code", dc),
            ],
            None,
        )
        .await;
    expect_error(r, 400, "unauthorized_client").await;
    // Unknown clients fail authentication; scopes beyond the client's are refused.
    expect_error(
        start(&app, "nobody", "notes:read").await,
        401,
        "invalid_client",
    )
    .await;
    expect_error(start(&app, "tv", "audit:read").await, 400, "invalid_scope").await;
    // Positive control: the device client itself.
    let ok = start(&app, "tv", "notes:read").await;
    assert_eq!(ok.status(), 200);
}

async fn metadata_lists_the_device_flow_only_when_enabled(backend: Backend) {
    let on = TestApp::spawn(backend).await;
    let m: Value = on.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        m["device_authorization_endpoint"],
        on.url("/device_authorization")
    );
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == GrantType::DeviceCode.as_str()));
    drop(on);
    let off = TestApp::spawn_with(backend, |c| c.device.enabled = false).await;
    let m: Value = off.get_json("/.well-known/openid-configuration").await;
    assert!(m.get("device_authorization_endpoint").is_none());
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(!grants.iter().any(|g| g == GrantType::DeviceCode.as_str()));
    let r = off
        .http
        .post(off.url("/device_authorization"))
        .form(&[("client_id", "tv")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        off.http
            .get(off.url("/device"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn code_entry_is_rate_limited_per_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let d = start_ok(&app).await;
    let agent = FormAgent::new();
    let entry = signed_in_at(&app, &agent, "/device", "alice").await;
    // 5 entries a minute per session (the default): wrong guesses use them up…
    for _ in 0..5 {
        let r = enter(&app, &agent, &entry, "BBBB-BBBB").await;
        assert_eq!(r.status, 400);
    }
    // …and then even the right code waits.
    let limited = enter(&app, &agent, &entry, d["user_code"].as_str().unwrap()).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    // Positive control: a minute later it is accepted.
    app.clock.advance(61);
    let ok = enter(&app, &agent, &entry, d["user_code"].as_str().unwrap()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

async fn device_grant_is_a_session_that_revocation_ends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    let d = start_ok(&app).await;
    approve(&app, d["user_code"].as_str().unwrap(), "approve").await;
    let body = expect_token(poll(&app, d["device_code"].as_str().unwrap()).await).await;
    let claims = app
        .verify(body["access_token"].as_str().unwrap(), MCP)
        .await;
    let sid = claims.sid.unwrap();
    // A grant session of the device's own (not the approving browser's).
    let live = format!(
        "SELECT COUNT(*) FROM sessions WHERE sid = '{sid}' AND client_id = 'tv' \
         AND ended_at IS NULL"
    );
    assert_eq!(app.sql_count(&live).await, 1);
    // Positive control: the refresh token works…
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = app
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "tv"),
                ("refresh_token", &rt),
            ],
            None,
        )
        .await;
    let refreshed = expect_token(refreshed).await;
    // …until it is revoked (RFC 7009): the grant session ends with it.
    let next = refreshed["refresh_token"].as_str().unwrap();
    let r = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", next), ("client_id", "tv")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.sql_count(&live).await, 0);
    let after = app
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "tv"),
                ("refresh_token", next),
            ],
            None,
        )
        .await;
    expect_error(after, 400, "invalid_grant").await;
}

/// The device's tokens carry the `amr` of the browser sign-in that approved them: password
/// and TOTP code for alice (two-factor on), the password alone for bob.
async fn the_tokens_say_how_the_approver_signed_in(backend: Backend) {
    use authz::clock::Clock;
    use authz::identity::totp;
    let app = TestApp::spawn(backend).await;
    setup(&app).await;
    app.user("bob", PW, "user").await;
    let alice = app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let e = app.two_factor_begin(&alice).await.unwrap();
    let secret = crate::two_factor::unbase32(&e.secret_base32);
    let code = |app: &TestApp| totp::code_at(&secret, totp::step_at(app.clock.now()));
    app.two_factor_confirm(&alice, &code(&app)).await.unwrap();
    app.clock.advance(totp::STEP_SECS);

    // alice: password, then the code, then the device page.
    let d = start_ok(&app).await;
    let agent = FormAgent::new();
    let first = agent.get(&app.url("/device")).await;
    let login = agent
        .get(&app.url(first.location.as_deref().unwrap()))
        .await;
    let mut fields = hidden_inputs(&login.body);
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), PW.into()));
    let code_page = agent.post_form(&app.url("/login"), &fields).await;
    assert!(
        code_page.body.contains("action=\"/login/code\""),
        "{}",
        code_page.body
    );
    let mut fields = hidden_inputs(&code_page.body);
    fields.push(("code".into(), code(&app)));
    let back = agent.post_form(&app.url("/login/code"), &fields).await;
    let entry = agent.get(&app.url(back.location.as_deref().unwrap())).await;
    let confirm = enter(&app, &agent, &entry, d["user_code"].as_str().unwrap()).await;
    let done = decide(&app, &agent, &confirm, "approve").await;
    assert!(done.body.contains("Device connected"), "{}", done.body);
    app.clock.advance(10);
    let t = expect_token(poll(&app, d["device_code"].as_str().unwrap()).await).await;
    let at = jwt_claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], serde_json::json!(["pwd", "otp"]), "{at}");
    assert_eq!(at["acr"], "mfa");

    // Positive control: bob approves with his password alone.
    let d = start_ok(&app).await;
    let agent = FormAgent::new();
    let entry = signed_in_at(&app, &agent, "/device", "bob").await;
    let confirm = enter(&app, &agent, &entry, d["user_code"].as_str().unwrap()).await;
    decide(&app, &agent, &confirm, "approve").await;
    app.clock.advance(10);
    let t = expect_token(poll(&app, d["device_code"].as_str().unwrap()).await).await;
    let at = jwt_claims(t["access_token"].as_str().unwrap());
    assert_eq!(at["amr"], serde_json::json!(["pwd"]), "{at}");
    assert_eq!(at["acr"], "pwd");
}
