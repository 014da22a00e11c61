//! Metadata (RFC 8414), the OIDC discovery path, JWKS and CORS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    ClientId, ClientSecret, IssuerUrl, JsonWebKey, JsonWebKeySetUrl, OAuth2TokenResponse, Scope,
    TokenUrl,
};
use serde::Deserialize;
use serde_json::Value;

use crate::support::{Backend, TestApp};
use testkit::both_backends;

both_backends!(
    probes_say_live_and_ready_and_when_the_database_is_gone,
    metadata_documents_are_identical_and_accurate,
    jwks_is_public_and_parsable,
    openidconnect_discovers_and_uses_the_server
);

/// The RFC 8414 fields, typed and validated by openidconnect's own types.
#[derive(Debug, Deserialize)]
struct Discovered {
    issuer: IssuerUrl,
    token_endpoint: TokenUrl,
    jwks_uri: JsonWebKeySetUrl,
    grant_types_supported: Vec<CoreGrantType>,
    token_endpoint_auth_methods_supported: Vec<CoreClientAuthMethod>,
    scopes_supported: Vec<Scope>,
}

/// Discovery as an openidconnect client does it: metadata → JWKS (`JsonWebKeySet::fetch_async`,
/// which checks status and content type) → a client built only from discovered values → a token
/// whose signature openidconnect's own JWK code verifies.
async fn openidconnect_discovers_and_uses_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.bot("notes:read").await;
    let d: Discovered = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(d.issuer.as_str(), app.base);
    assert!(
        d.grant_types_supported
            .contains(&CoreGrantType::ClientCredentials)
    );
    assert!(
        d.token_endpoint_auth_methods_supported
            .contains(&CoreClientAuthMethod::ClientSecretBasic)
    );
    assert!(
        d.scopes_supported
            .contains(&Scope::new("notes:read".into()))
    );
    let jwks = CoreJsonWebKeySet::fetch_async(&d.jwks_uri, &app.oidc())
        .await
        .unwrap();
    let client = CoreClient::new(ClientId::new("bot".into()), d.issuer.clone(), jwks.clone())
        .set_client_secret(ClientSecret::new(secret))
        .set_token_uri(d.token_endpoint.clone());
    let resp = client
        .exchange_client_credentials()
        .request_async(&app.oidc())
        .await
        .unwrap();
    let token = resp.access_token().secret();
    let (signing_input, sig) = token.rsplit_once('.').unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == Some(kid.as_str()))
        .unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    key.verify_signature(
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        signing_input.as_bytes(),
        &sig,
    )
    .unwrap();
    let mut tampered = sig.clone();
    tampered[0] ^= 1;
    assert!(
        key.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            signing_input.as_bytes(),
            &tampered
        )
        .is_err()
    );
}

async fn metadata_documents_are_identical_and_accurate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    assert!(
        a.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let a_text = a.text().await.unwrap();
    let b_text = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        a_text, b_text,
        "both well-known paths serve the same document"
    );
    let m: Value = serde_json::from_str(&a_text).unwrap();
    // RFC 8414 §3.3: byte-identical issuer.
    assert_eq!(m["issuer"].as_str().unwrap(), app.base);
    assert_eq!(m["token_endpoint"], format!("{}/token", app.base));
    assert_eq!(m["jwks_uri"], format!("{}/.well-known/jwks.json", app.base));
    let grants: Vec<&str> = m["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        grants,
        [
            "client_credentials",
            "password",
            "refresh_token",
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            // RFC 8628, on by default (`AUTHZ_DEVICE_FLOW`).
            "urn:ietf:params:oauth:grant-type:device_code"
        ]
    );
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("userinfo_endpoint", "/userinfo"),
        ("end_session_endpoint", "/logout"),
        ("registration_endpoint", "/register"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
    ] {
        assert_eq!(m[field], format!("{}{path}", app.base), "{field}");
    }
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        m["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let scopes = m["scopes_supported"].as_array().unwrap();
    for s in [
        "profile:read",
        "notes:read",
        "notes:write",
        "keys:write",
        "audit:read",
        "security:read",
        "offline_access",
        "openid",
    ] {
        assert!(scopes.iter().any(|v| v == s), "scopes_supported lacks {s}");
    }
    // Only implemented things are listed: no request objects, no front-channel logout.
    assert_eq!(m["request_parameter_supported"], false);
    assert_eq!(m["request_uri_parameter_supported"], false);
    // Every advertised endpoint answers.
    let jwks = app
        .http
        .get(m["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    let tok = app
        .http
        .post(m["token_endpoint"].as_str().unwrap())
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        tok.status(),
        401,
        "the token endpoint exists and demands client authentication"
    );
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
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public, max-age=")
    );
    let text = r.text().await.unwrap();
    // A real OIDC client library accepts it.
    let set: CoreJsonWebKeySet = serde_json::from_str(&text).unwrap();
    assert_eq!(set.keys().len(), 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    let key = &v["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(
        key.get("d").is_none() && key.get("p").is_none(),
        "no private material"
    );
    let cors = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .header("Origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cors.headers()["access-control-allow-origin"], "*");
}

/// `/healthz`: the process is up; `/readyz`: the database answers and keys are loaded. With the
/// database gone, the server is live but not ready (503), so a balancer stops routing to it.
async fn probes_say_live_and_ready_and_when_the_database_is_gone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ready: serde_json::Value = app.get_json("/readyz").await;
    assert_eq!(
        ready,
        serde_json::json!({ "status": "ready", "database": "up", "keys": "loaded" })
    );
    app.state.store.close().await;
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "down");
    assert_eq!(body["status"], "unavailable");
    let live = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200, "the process is still up");
}
