//! CORS for browser-based clients (MCP Inspector and other `fetch()` clients): preflights
//! answered 204 on the cookie-less endpoints, the grant on actual answers (errors and
//! challenges included), and never on the pages or the management API.

use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(
    cookieless_endpoints_answer_preflights_and_grant_any_origin,
    configured_origins_only_and_never_on_pages_or_the_api,
);

const INSPECTOR: &str = "http://localhost:6274";

/// `OPTIONS path` as a browser preflight from `origin` for `method` with `headers`.
async fn preflight(
    app: &TestApp,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
}

async fn cookieless_endpoints_answer_preflights_and_grant_any_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (path, method) in [
        ("/token", "POST"),
        ("/register", "POST"),
        ("/revoke", "POST"),
        ("/userinfo", "GET"),
        ("/.well-known/oauth-authorization-server", "GET"),
        ("/.well-known/openid-configuration", "GET"),
        ("/.well-known/jwks.json", "GET"),
    ] {
        let resp = preflight(
            &app,
            path,
            INSPECTOR,
            method,
            "authorization, content-type, mcp-protocol-version",
        )
        .await;
        assert_eq!(resp.status(), 204, "{path}");
        assert_eq!(
            header(&resp, "access-control-allow-origin").as_deref(),
            Some("*"),
            "{path}"
        );
        let methods = header(&resp, "access-control-allow-methods").unwrap();
        assert!(
            methods.contains(&method.to_ascii_lowercase()),
            "{path}: {methods}"
        );
        let allowed = header(&resp, "access-control-allow-headers").unwrap();
        for h in ["authorization", "content-type", "mcp-protocol-version"] {
            assert!(allowed.contains(h), "{path}: {allowed}");
        }
        assert!(header(&resp, "access-control-allow-credentials").is_none());
    }
    // The actual answers carry the grant too, an error and a 401 challenge included, and the
    // challenge is readable.
    let resp = app
        .http
        .post(app.url("/token"))
        .header("origin", INSPECTOR)
        .form(&[("grant_type", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .header("origin", INSPECTOR)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(
        header(&resp, "access-control-expose-headers")
            .unwrap()
            .contains("www-authenticate")
    );
    // Introspection is for resource servers: no grant unless configured.
    let resp = preflight(&app, "/introspect", INSPECTOR, "POST", "authorization").await;
    assert!(header(&resp, "access-control-allow-origin").is_none());
    let open = TestApp::spawn_with(backend, |c| c.cors_introspect = true).await;
    let resp = preflight(&open, "/introspect", INSPECTOR, "POST", "authorization").await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}

async fn configured_origins_only_and_never_on_pages_or_the_api(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.cors_origins = vec![INSPECTOR.to_owned()];
    })
    .await;
    let listed = preflight(&app, "/token", INSPECTOR, "POST", "content-type").await;
    assert_eq!(listed.status(), 204);
    assert_eq!(
        header(&listed, "access-control-allow-origin").as_deref(),
        Some(INSPECTOR)
    );
    assert!(header(&listed, "vary").unwrap().contains("origin"));
    for hostile in ["https://evil.example", "http://localhost:6275", "null"] {
        let resp = preflight(&app, "/token", hostile, "POST", "content-type").await;
        assert!(
            header(&resp, "access-control-allow-origin").is_none(),
            "{hostile}"
        );
        let resp = app
            .http
            .get(app.url("/.well-known/jwks.json"))
            .header("origin", hostile)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            header(&resp, "access-control-allow-origin").is_none(),
            "{hostile}"
        );
    }
    // The pages (cookies, CSRF) and the management API never get CORS, from any origin.
    let star = TestApp::spawn(backend).await;
    for (path, method) in [
        ("/authorize", "GET"),
        ("/login", "POST"),
        ("/consent", "POST"),
        ("/logout", "POST"),
        ("/api/v1/api-keys", "GET"),
    ] {
        let resp = preflight(&star, path, INSPECTOR, method, "authorization").await;
        assert_ne!(resp.status(), 204, "{path}");
        assert!(
            header(&resp, "access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    // A bad configuration entry is refused at start.
    let mut config = authz::config::Config {
        cors_origins: vec!["https://app.example/path".to_owned()],
        ..Default::default()
    };
    assert!(config.validate().is_err());
    config.cors_origins = vec!["https://app.example".to_owned(), "*".to_owned()];
    assert!(config.validate().is_ok());
}
