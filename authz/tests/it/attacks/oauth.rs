//! RFC 9700 / RFC 6749 / RFC 7636 / RFC 9207 attacks on the authorization server.

use testkit::agent::FormAgent;
use testkit::both_backends;

use super::{PW, assert_no_redirect, authorize_with_redirect, browser_app, code_for, q};
use crate::support::{Backend, CB, TestApp, expect_error, expect_token, pkce};
use authz::store::AuthMethod;

both_backends!(
    redirect_uri_prefix_match_is_refused,
    redirect_uri_suffix_and_path_traversal_are_refused,
    redirect_uri_case_change_is_refused,
    redirect_uri_percent_encoding_trick_is_refused,
    redirect_uri_userinfo_host_confusion_is_refused,
    unknown_client_is_not_an_open_redirector,
    pkce_missing_challenge_is_refused,
    pkce_plain_downgrade_is_refused,
    pkce_missing_verifier_is_refused,
    pkce_wrong_verifier_is_refused,
    code_replay_is_refused_and_revokes_the_grant,
    code_use_by_another_client_is_refused,
    code_with_other_redirect_uri_is_refused,
    concurrent_code_redemption_yields_one_token,
    mix_up_defence_iss_in_every_authorization_response,
    refresh_token_replay_revokes_the_family,
    concurrent_refresh_lets_exactly_one_win,
    refresh_token_of_another_client_is_refused,
    client_secret_in_query_string_is_not_accepted,
    dynamic_registration_cannot_mint_client_credentials,
);

/// RFC 9700 §4.1.3: a registered `https://…/cb` must not match `https://…/cb/evil` or `/c`.
async fn redirect_uri_prefix_match_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    assert_no_redirect(&authorize_with_redirect(
        &app,
        "http://127.0.0.1:7777/cb/evil",
    ))
    .await;
    assert_no_redirect(&authorize_with_redirect(&app, "http://127.0.0.1:7777/c")).await;
}

/// RFC 9700 §4.1.3, §2.1: exact string matching, no path normalisation.
async fn redirect_uri_suffix_and_path_traversal_are_refused(backend: Backend) {
    let app = browser_app(backend).await;
    assert_no_redirect(&authorize_with_redirect(
        &app,
        "http://127.0.0.1:7777/cb/../evil",
    ))
    .await;
    assert_no_redirect(&authorize_with_redirect(
        &app,
        "http://127.0.0.1:7777/cb?next=https://evil.example",
    ))
    .await;
    assert_no_redirect(&authorize_with_redirect(
        &app,
        "http://127.0.0.1:7777/cb#frag",
    ))
    .await;
}

/// RFC 9700 §2.1: no case folding of paths.
async fn redirect_uri_case_change_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    assert_no_redirect(&authorize_with_redirect(&app, "http://127.0.0.1:7777/CB")).await;
}

/// RFC 9700 §4.1.3: percent-encoded variants are different strings.
async fn redirect_uri_percent_encoding_trick_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    assert_no_redirect(&authorize_with_redirect(&app, "http://127.0.0.1:7777/%63b")).await;
    assert_no_redirect(&authorize_with_redirect(
        &app,
        "http://127.0.0.1:7777/cb%2F..%2Fevil",
    ))
    .await;
}

/// RFC 9700 §4.1.3: `host@evil` and look-alike hosts.
async fn redirect_uri_userinfo_host_confusion_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    assert_no_redirect(&authorize_with_redirect(
        &app,
        "http://127.0.0.1:7777@evil.example/cb",
    ))
    .await;
    assert_no_redirect(&authorize_with_redirect(
        &app,
        "http://127.0.0.1.evil.example:7777/cb",
    ))
    .await;
    assert_no_redirect(&authorize_with_redirect(&app, "http://localhost:7777/cb")).await;
}

/// RFC 9700 §4.11.2, RFC 6749 §4.1.2.1: an unknown client gets a page, never a redirect.
async fn unknown_client_is_not_an_open_redirector(backend: Backend) {
    let app = browser_app(backend).await;
    let url = authorize_with_redirect(&app, "https://evil.example/cb")
        .replace("client_id=rp", "client_id=ghost");
    assert_no_redirect(&url).await;
}

fn pkce_url(app: &TestApp, extra: &str) -> String {
    let cb: String = form_urlencoded::byte_serialize(CB.as_bytes()).collect();
    app.url(&format!(
        "/authorize?response_type=code&client_id=rp&redirect_uri={cb}&state=s{extra}"
    ))
}

async fn assert_error_redirect(app: &TestApp, url: &str, code: &str) {
    let page = FormAgent::new().get(url).await;
    assert_eq!(page.status, 303, "{url}");
    let p = q(page.location.as_deref().unwrap());
    assert_eq!(p["error"], code);
    assert_eq!(p["iss"], app.base);
}

/// RFC 9700 §2.1.1, RFC 7636 §4.4.1: PKCE is required for every client.
async fn pkce_missing_challenge_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    assert_error_redirect(&app, &pkce_url(&app, ""), "invalid_request").await;
}

/// RFC 9700 §2.1.1: `plain` (or no method, which means plain) is a downgrade.
async fn pkce_plain_downgrade_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let c = "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert_error_redirect(&app, &pkce_url(&app, c), "invalid_request").await;
    assert_error_redirect(
        &app,
        &pkce_url(&app, &format!("{c}&code_challenge_method=plain")),
        "invalid_request",
    )
    .await;
}

/// RFC 7636 §4.5: a code issued with a challenge needs the verifier.
async fn pkce_missing_verifier_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let (code, _) = code_for(&app, "notes:read").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "rp"),
        ("code", code.as_str()),
        ("redirect_uri", CB),
    ];
    expect_error(app.token(&form, None).await, 400, "invalid_request").await;
}

/// RFC 7636 §4.6: the verifier must hash to the challenge (an intercepted code is useless).
async fn pkce_wrong_verifier_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let (code, _) = code_for(&app, "notes:read").await;
    let (attacker, _) = pkce();
    expect_error(
        app.redeem("rp", &code, &attacker).await,
        400,
        "invalid_grant",
    )
    .await;
}

/// RFC 6749 §4.1.2, RFC 9700 §4.5: a code works once; a replay revokes what it produced.
async fn code_replay_is_refused_and_revokes_the_grant(backend: Backend) {
    let app = browser_app(backend).await;
    let (code, verifier) = code_for(&app, "notes:read offline_access").await;
    let t = expect_token(app.redeem("rp", &code, &verifier).await).await;
    expect_error(
        app.redeem("rp", &code, &verifier).await,
        400,
        "invalid_grant",
    )
    .await;
    let rt = t["refresh_token"].as_str().unwrap();
    expect_error(
        app.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "rp"),
                ("refresh_token", rt),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
}

/// RFC 6749 §4.1.3: a code is bound to the client it was issued to.
async fn code_use_by_another_client_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    app.code_client("attacker", AuthMethod::None, "notes:read")
        .await;
    let (code, verifier) = code_for(&app, "notes:read").await;
    expect_error(
        app.redeem("attacker", &code, &verifier).await,
        400,
        "invalid_grant",
    )
    .await;
}

/// RFC 6749 §4.1.3: `redirect_uri` at the token endpoint must equal the request's.
async fn code_with_other_redirect_uri_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let (code, verifier) = code_for(&app, "notes:read").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "rp"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:7778/cb"),
        ("code_verifier", verifier.as_str()),
    ];
    expect_error(app.token(&form, None).await, 400, "invalid_grant").await;
}

/// RFC 9700 §4.5 (race): two simultaneous redemptions of one code → at most one token.
async fn concurrent_code_redemption_yields_one_token(backend: Backend) {
    let app = browser_app(backend).await;
    let (code, verifier) = code_for(&app, "notes:read").await;
    let (a, b, c) = tokio::join!(
        app.redeem("rp", &code, &verifier),
        app.redeem("rp", &code, &verifier),
        app.redeem("rp", &code, &verifier)
    );
    let ok = [a, b, c].iter().filter(|r| r.status() == 200).count();
    assert_eq!(ok, 1);
}

/// RFC 9207, RFC 9700 §4.4: every authorization response (success and error) names the issuer.
async fn mix_up_defence_iss_in_every_authorization_response(backend: Backend) {
    let app = browser_app(backend).await;
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read")]);
    let ok = app
        .browser_sign_in(&FormAgent::new(), &url, "alice", PW)
        .await;
    assert_eq!(ok["iss"], app.base);
    let denied = FormAgent::new()
        .sign_in(&app.base, &url, "alice", PW, "deny")
        .await
        .unwrap();
    assert_eq!(q(&denied)["iss"], app.base);
    let meta: serde_json::Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
}

async fn password_login(app: &TestApp) -> serde_json::Value {
    app.client(
        "cli",
        AuthMethod::None,
        &[
            authz::store::GrantType::Password,
            authz::store::GrantType::RefreshToken,
        ],
        "notes:read offline_access",
        &[crate::support::MCP],
    )
    .await;
    expect_token(
        app.token(
            &[
                ("grant_type", "password"),
                ("client_id", "cli"),
                ("username", "alice"),
                ("password", PW),
                ("scope", "notes:read offline_access"),
            ],
            None,
        )
        .await,
    )
    .await
}

fn refresh_form(rt: &str) -> [(&'static str, &str); 3] {
    [
        ("grant_type", "refresh_token"),
        ("client_id", "cli"),
        ("refresh_token", rt),
    ]
}

/// RFC 9700 §4.14.2: a used refresh token coming back means theft: the family is revoked.
async fn refresh_token_replay_revokes_the_family(backend: Backend) {
    let app = browser_app(backend).await;
    let t = password_login(&app).await;
    let old = t["refresh_token"].as_str().unwrap().to_owned();
    let next = expect_token(app.token(&refresh_form(&old), None).await).await;
    // Past the idempotent retry window (`refresh_retry_grace_secs`, 10 s) a replay is reuse.
    app.clock.advance(11);
    expect_error(
        app.token(&refresh_form(&old), None).await,
        400,
        "invalid_grant",
    )
    .await;
    let newer = next["refresh_token"].as_str().unwrap();
    expect_error(
        app.token(&refresh_form(newer), None).await,
        400,
        "invalid_grant",
    )
    .await;
}

/// RFC 9700 §4.14.2 (race): with the retry window off (`refresh_retry_grace_secs = 0`), two
/// simultaneous uses of one refresh token → exactly one wins, and the family is then revoked.
/// (With the window, the default, both get the same successor: `refresh::concurrent_*`.)
async fn concurrent_refresh_lets_exactly_one_win(backend: Backend) {
    let app = super::browser_app_with(backend, |c| c.refresh_retry_grace_secs = 0).await;
    let t = password_login(&app).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let form = refresh_form(rt);
    let (a, b) = tokio::join!(app.token(&form, None), app.token(&form, None));
    let (sa, sb) = (a.status().as_u16(), b.status().as_u16());
    assert_eq!(
        [sa, sb].iter().filter(|s| **s == 200).count(),
        1,
        "{sa} {sb}"
    );
    let winner = if sa == 200 { a } else { b };
    let next = expect_token(winner).await;
    // The loser's attempt counted as reuse: the winner's successor is revoked too.
    expect_error(
        app.token(&refresh_form(next["refresh_token"].as_str().unwrap()), None)
            .await,
        400,
        "invalid_grant",
    )
    .await;
}

/// RFC 6749 §6: a refresh token is bound to its client.
async fn refresh_token_of_another_client_is_refused(backend: Backend) {
    let app = browser_app(backend).await;
    let t = password_login(&app).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "rp"),
        ("refresh_token", rt),
    ];
    expect_error(app.token(&form, None).await, 400, "invalid_grant").await;
}

/// RFC 6749 §2.3.1, RFC 9700 §4.3: credentials never in URLs — the token endpoint reads the
/// body only, so a secret in the query string authenticates nothing.
async fn client_secret_in_query_string_is_not_accepted(backend: Backend) {
    let app = browser_app(backend).await;
    let secret = app.bot("notes:read").await;
    let r = app
        .http
        .post(app.url(&format!(
            "/token?client_id=bot&client_secret={secret}&grant_type=client_credentials"
        )))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.get("access_token").is_none());
}

/// RFC 7591 §5, RFC 9700 §2.4: self-registration cannot create a client_credentials or
/// password client (it would mint its own authority).
async fn dynamic_registration_cannot_mint_client_credentials(backend: Backend) {
    let app = browser_app(backend).await;
    for g in [
        "client_credentials",
        "password",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ] {
        let r = app.http.post(app.url("/register"))
            .json(&serde_json::json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["authorization_code", g] }))
            .send().await.unwrap();
        assert_eq!(r.status(), 400, "{g}");
    }
}
