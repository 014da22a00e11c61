//! `Cache-Control: no-store` (`authz_web::layers`: one layer writes it for every response
//! marked never-cached). Each answer that carries a secret or a verdict about one request says
//! so — token (with `Pragma: no-cache`, RFC 6749 §5.1), PAR, device authorization,
//! introspection, revocation, registration, UserInfo, a refused DPoP proof, the pages, and every
//! JSON error wherever it happens (with `Pragma`, §5.2). The positive controls: the public
//! documents (discovery, JWKS, the stylesheet), the probes, a CORS preflight and a `405` keep
//! their own caching, exactly as before the layer.

use reqwest::Response;
use reqwest::header::{CACHE_CONTROL, PRAGMA};
use serde_json::Value;
use testkit::agent::FormAgent;
use testkit::both_backends;

use crate::support::{Backend, MCP, TestApp, expect_token};
use authz::store::{AuthMethod, GrantType};

both_backends!(
    secrets_and_verdicts_are_never_cached,
    errors_are_never_cached_anywhere,
    public_documents_keep_their_own_caching,
);

const PW: &str = "correct horse battery staple";

/// The response's `Cache-Control` and `Pragma`.
fn caching(r: &Response) -> (Option<&str>, Option<&str>) {
    let h = |name| r.headers().get(name).and_then(|v| v.to_str().ok());
    (h(CACHE_CONTROL), h(PRAGMA))
}

/// `no-store`, and `Pragma: no-cache` exactly when `pragma`.
#[track_caller]
fn assert_no_store(r: &Response, pragma: bool, what: &str) {
    let expected = (Some("no-store"), pragma.then_some("no-cache"));
    assert_eq!(caching(r), expected, "{what}: {}", r.status());
}

async fn secrets_and_verdicts_are_never_cached(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bot = app.bot("notes:read").await;
    // Token: success and refusals alike, with Pragma (RFC 6749 §5.1).
    let r = app
        .token(&[("grant_type", "client_credentials")], Some(("bot", &bot)))
        .await;
    assert_no_store(&r, true, "token");
    let access = expect_token(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A refused DPoP proof: no-store only (as it always was).
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth("bot", Some(&bot))
        .header("DPoP", "not-a-proof")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_no_store(&r, false, "refused DPoP proof");
    // Introspection and revocation (RFC 7662 §2.2, RFC 7009 §2.2).
    let rs = app.exchange_client("notes:read").await;
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(&rs))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_no_store(&r, false, "introspect");
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("bot", Some(&bot))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_no_store(&r, false, "revoke");
    // PAR (RFC 9126 §2.2) and device authorization (RFC 8628 §3.2).
    let secret = app
        .code_client("rp", AuthMethod::ClientSecretBasic, "openid notes:read")
        .await
        .unwrap();
    let (_, challenge) = testkit::pkce();
    let r = app
        .http
        .post(app.url("/par"))
        .basic_auth("rp", Some(&secret))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", crate::support::CB),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", "openid notes:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_no_store(&r, false, "par");
    app.client(
        "tv",
        AuthMethod::None,
        &[GrantType::DeviceCode],
        "notes:read",
        &[MCP],
    )
    .await;
    let r = app
        .http
        .post(app.url("/device_authorization"))
        .form(&[("client_id", "tv"), ("scope", "notes:read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_no_store(&r, false, "device authorization");
    // Registration (RFC 7591 §3.2.1: the answer carries a secret).
    let r = app
        .http
        .post(app.url("/register"))
        .json(&serde_json::json!({ "redirect_uris": ["https://app.example.com/cb"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_no_store(&r, false, "register");
    // UserInfo (OIDC Core §5.3.2), with a user's token from the code flow.
    app.user("alice", PW, "user").await;
    app.code_client("web", AuthMethod::None, "openid notes:read")
        .await;
    let (verifier, challenge) = testkit::pkce();
    let url = app.authorize_url("web", &challenge, &[("scope", "openid")]);
    let q = app
        .browser_sign_in(&FormAgent::new(), &url, "alice", PW)
        .await;
    let user_token: Value = expect_token(app.redeem("web", &q["code"], &verifier).await).await;
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(user_token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_no_store(&r, false, "userinfo");
    // A page (the browser's answers all are).
    let r = app.http.get(app.url("/authorize")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_no_store(&r, false, "authorize page");
}

async fn errors_are_never_cached_anywhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let post = |path: &'static str| app.http.post(app.url(path)).form(&[("x", "y")]);
    for (path, status) in [
        ("/token", 400),
        ("/par", 401),
        ("/device_authorization", 401),
        ("/introspect", 401),
        ("/revoke", 401),
        ("/ssf/poll", 401),
        ("/resource-events", 401),
    ] {
        let r = post(path).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_no_store(&r, true, path);
    }
    let r = app
        .http
        .post(app.url("/register"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_no_store(&r, true, "register");
    for path in ["/userinfo", "/api/v1/api-keys", "/ssf/stream"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_no_store(&r, true, path);
    }
    // Not found, anywhere.
    let r = app.http.get(app.url("/nowhere")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_no_store(&r, true, "not found");
}

async fn public_documents_keep_their_own_caching(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, cache) in [
        (
            "/.well-known/openid-configuration",
            Some("public, max-age=300"),
        ),
        (
            "/.well-known/oauth-authorization-server",
            Some("public, max-age=300"),
        ),
        ("/static/style.css", Some("public, max-age=3600")),
        ("/.well-known/ssf-configuration", None),
        ("/healthz", None),
    ] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(caching(&r), (cache, None), "{path}");
    }
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let (cache, pragma) = caching(&r);
    assert!(cache.unwrap().starts_with("public, max-age="), "{cache:?}");
    assert_eq!(pragma, None);
    // A CORS preflight of the token endpoint and a method it does not serve: answered in front
    // of the handler, so not marked.
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(caching(&r), (None, None), "preflight");
    let r = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(caching(&r), (None, None), "405");
}
