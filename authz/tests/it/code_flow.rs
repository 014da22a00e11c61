//! Authorization code + PKCE (RFC 6749 §4.1, RFC 7636), OpenID Connect (ID token, UserInfo),
//! driven through the real login and consent pages.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use testkit::agent::FormAgent;
use testkit::both_backends;

use crate::support::{Backend, CB, MCP, TestApp, expect_error, expect_token, pkce, query};
use authz::store::AuthMethod;

both_backends!(
    openidconnect_code_flow_with_pkce_id_token_and_userinfo,
    code_is_single_use_and_replay_revokes_its_grant,
    pkce_is_required_and_s256_only,
    code_is_bound_to_client_redirect_and_expiry,
    untrusted_client_or_redirect_gets_a_page_not_a_redirect,
    consent_is_remembered_denial_returns_access_denied,
    prompt_and_max_age_are_honoured,
    id_tokens_are_rs256_even_when_access_tokens_are_not,
    native_cli_always_asks_and_userinfo_releases_email,
);

/// The whole flow as a real OIDC relying party (openidconnect) sees it: discovery, PKCE,
/// nonce, the login and consent pages, code exchange, ID token signature + nonce + at_hash,
/// UserInfo; the access token is for the MCP server.
async fn openidconnect_code_flow_with_pkce_id_token_and_userinfo(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client(
        "rp",
        AuthMethod::None,
        "openid profile email notes:read offline_access",
    )
    .await;
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.base.clone()).unwrap(),
        &app.oidc(),
    )
    .await
    .unwrap();
    let client = CoreClient::from_provider_metadata(meta, ClientId::new("rp".into()), None)
        .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("notes:read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let agent = FormAgent::new();
    let back = app
        .browser_sign_in(
            &agent,
            url.as_str(),
            "alice",
            "correct horse battery staple",
        )
        .await;
    assert_eq!(back["state"], *csrf.secret());
    assert_eq!(back["iss"], app.base, "RFC 9207 iss");
    let tokens = client
        .exchange_code(AuthorizationCode::new(back["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&app.oidc())
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("id_token with openid");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).unwrap();
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected), "at_hash");
    assert!(claims.auth_time().is_some());
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );
    let raw: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.to_string().split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(raw["sid"].as_str().unwrap().starts_with("sid_"));
    let at = app.verify(tokens.access_token().secret(), MCP).await;
    assert_eq!(at.sid.as_deref(), raw["sid"].as_str());
    assert_eq!(at.scope, "notes:read openid profile");
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&app.oidc())
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), at.sub);
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));
    // Without offline_access and without client policy: no refresh token.
    assert!(tokens.refresh_token().is_none());
    let kinds = app.audit_kinds().await;
    for k in [
        "session.started",
        "login.succeeded",
        "consent.granted",
        "code.issued",
        "token.issued",
    ] {
        assert!(kinds.iter().any(|x| x == k), "missing audit {k}: {kinds:?}");
    }
}

async fn code_is_single_use_and_replay_revokes_its_grant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("rp", AuthMethod::None, "notes:read offline_access")
        .await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read offline_access")]);
    let back = app
        .browser_sign_in(
            &FormAgent::new(),
            &url,
            "alice",
            "correct horse battery staple",
        )
        .await;
    let tokens = expect_token(app.redeem("rp", &back["code"], &verifier).await).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    // RFC 6749 §4.1.2: a code used twice is refused and what it produced is revoked.
    expect_error(
        app.redeem("rp", &back["code"], &verifier).await,
        400,
        "invalid_grant",
    )
    .await;
    expect_error(
        app.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "rp"),
                ("refresh_token", &refresh),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(app.audit_kinds().await.iter().any(|k| k == "code.replayed"));
    // Two concurrent redemptions of one fresh code: at most one token.
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read")]);
    let back = app
        .browser_sign_in(
            &FormAgent::new(),
            &url,
            "alice",
            "correct horse battery staple",
        )
        .await;
    let (a, b) = tokio::join!(
        app.redeem("rp", &back["code"], &verifier),
        app.redeem("rp", &back["code"], &verifier)
    );
    let ok = [a.status().as_u16(), b.status().as_u16()]
        .iter()
        .filter(|s| **s == 200)
        .count();
    assert_eq!(ok, 1);
}

async fn pkce_is_required_and_s256_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    let agent = FormAgent::new();
    // No challenge / plain: error back to the client with state and iss (RFC 9207).
    let no_pkce = app.url(&format!(
        "/authorize?response_type=code&client_id=rp&redirect_uri={}&state=s1",
        urlenc(CB)
    ));
    for url in [
        no_pkce.clone(),
        format!("{no_pkce}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        format!(
            "{no_pkce}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain"
        ),
        format!("{no_pkce}&code_challenge=short&code_challenge_method=S256"),
    ] {
        let page = agent.get(&url).await;
        assert_eq!(page.status, 303, "{url}");
        let q = query(page.location.as_deref().unwrap());
        assert_eq!(q["error"], "invalid_request");
        assert_eq!(q["state"], "s1");
        assert_eq!(q["iss"], app.base);
        assert!(!q["error_description"].is_empty());
    }
    // A code whose verifier is missing or wrong is refused.
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read")]);
    let back = app
        .browser_sign_in(&agent, &url, "alice", "correct horse battery staple")
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "rp"),
        ("code", back["code"].as_str()),
        ("redirect_uri", CB),
    ];
    expect_error(app.token(&form, None).await, 400, "invalid_request").await;
    let (other, _) = pkce();
    expect_error(
        app.redeem("rp", &back["code"], &other).await,
        400,
        "invalid_grant",
    )
    .await;
    // The failed attempt spent the code: the right verifier is now too late.
    expect_error(
        app.redeem("rp", &back["code"], &verifier).await,
        400,
        "invalid_grant",
    )
    .await;
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn code_is_bound_to_client_redirect_and_expiry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    app.code_client("other", AuthMethod::None, "notes:read")
        .await;
    let agent = FormAgent::new();
    let sign_in = |challenge: String| {
        let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read")]);
        let agent = &agent;
        let app = &app;
        async move {
            app.browser_sign_in(agent, &url, "alice", "correct horse battery staple")
                .await
        }
    };
    // Another client cannot redeem it.
    let (verifier, challenge) = pkce();
    let back = sign_in(challenge).await;
    expect_error(
        app.redeem("other", &back["code"], &verifier).await,
        400,
        "invalid_grant",
    )
    .await;
    // The redirect_uri must be the one of the request.
    let (verifier, challenge) = pkce();
    let back = sign_in(challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "rp"),
        ("code", back["code"].as_str()),
        ("redirect_uri", "http://127.0.0.1:7777/cb2"),
        ("code_verifier", verifier.as_str()),
    ];
    expect_error(app.token(&form, None).await, 400, "invalid_grant").await;
    // Codes live 60 s.
    let (verifier, challenge) = pkce();
    let back = sign_in(challenge).await;
    app.clock.advance(61);
    expect_error(
        app.redeem("rp", &back["code"], &verifier).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn untrusted_client_or_redirect_gets_a_page_not_a_redirect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.code_client("rp", AuthMethod::None, "notes:read").await;
    let (_, challenge) = pkce();
    let agent = FormAgent::new();
    let good = app.authorize_url("rp", &challenge, &[]);
    let cases = [
        good.replace("client_id=rp", "client_id=nobody"),
        good.replace(&urlenc(CB), &urlenc("https://evil.example.com/cb")),
        good.replace(&urlenc(CB), &urlenc("http://127.0.0.1:7777/cb/../evil")),
        good.replace(&urlenc(CB), &urlenc("http://127.0.0.1:7777/CB")),
        good.replace("client_id=rp", "client_id=rp&client_id=rp"),
    ];
    for url in cases {
        let page = agent.get(&url).await;
        assert_eq!(page.status, 400, "{url}");
        assert!(
            page.location.is_none(),
            "never redirect to an untrusted URI"
        );
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.body.contains("<h1>"));
    }
    // Loopback redirects may use any port (RFC 8252 §7.3).
    let other_port = good.replace(&urlenc(CB), &urlenc("http://127.0.0.1:51234/cb"));
    assert_eq!(agent.get(&other_port).await.status, 200);
}

/// Remembered consent (for a confidential client: its identity is assured, RFC 8252 §8.6).
async fn consent_is_remembered_denial_returns_access_denied(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client(
        "rp",
        AuthMethod::ClientSecretBasic,
        "notes:read notes:write profile:read",
    )
    .await;
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read")]);
    let denied = agent
        .sign_in(
            &app.base,
            &url,
            "alice",
            "correct horse battery staple",
            "deny",
        )
        .await
        .unwrap();
    let q = query(&denied);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    // Approve once: the same scope later skips the page; a wider scope asks again.
    app.browser_sign_in(&agent, &url, "alice", "correct horse battery staple")
        .await;
    let again = agent.get(&url).await;
    assert_eq!(again.status, 303, "consent remembered, session reused");
    assert!(query(again.location.as_deref().unwrap()).contains_key("code"));
    let wider = app.authorize_url("rp", &challenge, &[("scope", "notes:read notes:write")]);
    let page = agent.get(&wider).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("action=\"/consent\""));
    assert!(page.body.contains("Create secure notes for you"));
    assert!(page.body.contains("127.0.0.1"), "redirect host shown");
    let forced = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "notes:read"), ("prompt", "consent")],
    );
    assert!(
        agent
            .get(&forced)
            .await
            .body
            .contains("action=\"/consent\"")
    );
    let none = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "notes:read notes:write"), ("prompt", "none")],
    );
    let q = query(agent.get(&none).await.location.as_deref().unwrap());
    assert_eq!(q["error"], "consent_required");
}

/// `prompt` and `max_age` (a confidential client, so `prompt=none` can succeed silently).
async fn prompt_and_max_age_are_honoured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("rp", AuthMethod::ClientSecretBasic, "notes:read")
        .await;
    let agent = FormAgent::new();
    let (_, challenge) = pkce();
    let none = app.authorize_url("rp", &challenge, &[("prompt", "none")]);
    let q = query(agent.get(&none).await.location.as_deref().unwrap());
    assert_eq!(q["error"], "login_required");
    let url = app.authorize_url("rp", &challenge, &[]);
    app.browser_sign_in(&agent, &url, "alice", "correct horse battery staple")
        .await;
    // Signed in: prompt=none now works silently.
    let q = query(agent.get(&none).await.location.as_deref().unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    // prompt=login and an exceeded max_age show the login page again; signing in finishes.
    for extra in [("prompt", "login"), ("max_age", "30")] {
        app.clock.advance(31);
        let url = app.authorize_url("rp", &challenge, &[extra]);
        let page = agent.get(&url).await;
        assert!(page.body.contains("action=\"/login\""), "{extra:?}");
        app.browser_sign_in(&agent, &url, "alice", "correct horse battery staple")
            .await;
    }
    // Idle timeout: an hour without use ends the session.
    app.clock.advance(3601);
    assert!(agent.get(&url).await.body.contains("action=\"/login\""));
}

/// OIDC Core §15.1: RS256 must be available for ID tokens, whatever signs access tokens.
async fn id_tokens_are_rs256_even_when_access_tokens_are_not(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, |c| c.signing_alg = authz::keys::SigningAlg::Es256).await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "openid notes:read"), ("nonce", "n")],
    );
    let back = app
        .browser_sign_in(
            &FormAgent::new(),
            &url,
            "alice",
            "correct horse battery staple",
        )
        .await;
    let tokens = expect_token(app.redeem("rp", &back["code"], &verifier).await).await;
    let at = tokens["access_token"].as_str().unwrap();
    let id = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(at).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    let h = jsonwebtoken::decode_header(id).unwrap();
    assert_eq!(h.alg, jsonwebtoken::Algorithm::RS256);
    let jwks = app.jwks().await;
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(h.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["rp"]);
    v.set_issuer(&[&app.base]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(id, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["nonce"], "n");
    app.verify(at, MCP).await;
    let meta: serde_json::Value = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        meta["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    // Back to RS256 access tokens, pre-published: the extra ID-token key keeps signing ID
    // tokens until the new key takes over, and is retired when it does.
    let (next, _) = app
        .state
        .key_admin()
        .rotate_keys(
            "test",
            authz::keys::SigningAlg::Rs256,
            authz::keys::KeySwitch::AfterPrepublication,
        )
        .await
        .unwrap();
    let ks = app.state.keys.current();
    let (access, id_signer) = ks.signers(app.state.now());
    assert_ne!(access.kid(), next, "not signing before its time");
    assert_eq!(id_signer.alg(), authz::keys::SigningAlg::Rs256);
    app.clock.advance(121);
    app.state.reload_keys().await.unwrap();
    let ks = app.state.keys.current();
    assert_eq!(ks.active.kid(), next);
    assert_eq!(ks.id_token.kid(), ks.active.kid());
    let stored = app.state.store.all_keys().await.unwrap();
    assert!(
        stored
            .iter()
            .all(|k| k.purpose == authz::store::KeyPurpose::Access
                || k.status == authz::store::KeyStatus::Retired),
        "the ID-token key retired: {stored:?}"
    );
}

/// The seeded `mcp-cli` is native (loopback, any port) and public: nothing proves it is the
/// real CLI, so the user approves every sign-in (RFC 8252 §8.6; issue 11, item 14).
async fn native_cli_always_asks_and_userinfo_releases_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    authz::seed::seed_demo(&app.state).await.unwrap();
    let (verifier, challenge) = pkce();
    let redirect = "http://127.0.0.1:49152/callback";
    let url = app
        .authorize_url(
            "mcp-cli",
            &challenge,
            &[("scope", "openid email profile:read")],
        )
        .replace(
            &form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
            &form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
        );
    let agent = FormAgent::new();
    let login = agent.get(&url).await;
    assert!(
        login.body.contains("MCP command-line client"),
        "{}",
        login.body
    );
    let loc = agent
        .sign_in(&app.base, &url, "testuser", "TestPass123!", "approve")
        .await
        .unwrap();
    let q = query(&loc);
    assert!(loc.starts_with(redirect) && q.contains_key("code"), "{loc}");
    // Signed in and approved once: the next request still asks (no silent code).
    let again = agent.get(&url).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("action=\"/consent\""));
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "mcp-cli"),
        ("code", q["code"].as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", verifier.as_str()),
    ];
    let tokens = expect_token(app.token(&form, None).await).await;
    let info: serde_json::Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "testuser@example.com");
    assert!(
        info.get("preferred_username").is_none(),
        "profile scope not granted"
    );
}
