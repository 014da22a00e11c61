//! Metadata (RFC 8414), the OIDC discovery path, JWKS and CORS.

use openidconnect::core::CoreJsonWebKeySet;
use serde_json::Value;

use crate::both_backends;
use crate::support::{Backend, TestApp};

both_backends!(metadata_documents_are_identical_and_accurate, jwks_is_public_and_parsable);

async fn metadata_documents_are_identical_and_accurate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(a.status(), 200);
    assert!(a.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let a_text = a.text().await.unwrap();
    let b_text = app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().text().await.unwrap();
    assert_eq!(a_text, b_text, "both well-known paths serve the same document");
    let m: Value = serde_json::from_str(&a_text).unwrap();
    // RFC 8414 §3.3: byte-identical issuer.
    assert_eq!(m["issuer"].as_str().unwrap(), app.base);
    assert_eq!(m["token_endpoint"], format!("{}/token", app.base));
    assert_eq!(m["jwks_uri"], format!("{}/.well-known/jwks.json", app.base));
    let grants: Vec<&str> = m["grant_types_supported"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(grants, ["client_credentials", "password", "refresh_token"]);
    let scopes = m["scopes_supported"].as_array().unwrap();
    for s in ["profile:read", "notes:read", "notes:write", "keys:write", "audit:read", "security:read", "offline_access"] {
        assert!(scopes.iter().any(|v| v == s), "scopes_supported lacks {s}");
    }
    // Only implemented things are listed: no authorization endpoint yet, so no response types.
    assert!(m.get("authorization_endpoint").is_none());
    assert_eq!(m["response_types_supported"], serde_json::json!([]));
    // Every advertised endpoint answers.
    let jwks = app.http.get(m["jwks_uri"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    let tok = app.http.post(m["token_endpoint"].as_str().unwrap()).form(&[("grant_type", "password")]).send().await.unwrap();
    assert_eq!(tok.status(), 401, "the token endpoint exists and demands client authentication");
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

async fn jwks_is_public_and_parsable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .header("Origin", "https://third-party.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["content-type"], "application/jwk-set+json");
    assert!(r.headers()["cache-control"].to_str().unwrap().starts_with("public, max-age="));
    let text = r.text().await.unwrap();
    // A real OIDC client library accepts it.
    let set: CoreJsonWebKeySet = serde_json::from_str(&text).unwrap();
    assert_eq!(set.keys().len(), 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    let key = &v["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key.get("d").is_none() && key.get("p").is_none(), "no private material");
    let cors = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .header("Origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cors.headers()["access-control-allow-origin"], "*");
}
