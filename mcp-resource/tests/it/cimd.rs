//! A Client ID Metadata Document client end to end: the document on a local https host (its
//! certificate made for the test and trusted by `authz`), sign-in and consent through the
//! real pages, the code exchanged with PKCE, and an MCP tool call with the token.

use serde_json::{Value, json};
use testkit::https::{HttpsHost, Route};
use testkit::{both_backends, pkce};

use crate::support::{Backend, System, call_tool, text};

both_backends!(
    a_public_metadata_document_client_calls_a_tool,
    a_private_key_jwt_metadata_document_client_calls_a_tool,
);

async fn a_public_metadata_document_client_calls_a_tool(backend: Backend) {
    signs_in_and_calls_a_tool(backend, false).await;
}

async fn a_private_key_jwt_metadata_document_client_calls_a_tool(backend: Backend) {
    signs_in_and_calls_a_tool(backend, true).await;
}

/// The whole flow; with `private_key_jwt`, the document carries its key and the token request
/// a client assertion (RFC 7523).
async fn signs_in_and_calls_a_tool(backend: Backend, private_key_jwt: bool) {
    use authz::clock::Clock;
    let host = HttpsHost::start().await;
    let (roots, allowed) = (host.ca_pem.clone(), host.host_port());
    let sys = System::start_with_authz(backend, |c| {
        c.cimd.extra_roots = Some(roots);
        c.cimd.allowed_private_hosts = vec![allowed];
    })
    .await;
    let client_id = host.url("/mcp-client.json");
    let redirect_uri = "http://127.0.0.1:7999/callback";
    let (key, jwk) = testkit::https::es256_key("k1");
    let mut doc = json!({
        "client_id": client_id,
        "client_name": "Document MCP Client",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    if private_key_jwt {
        doc["token_endpoint_auth_method"] = json!("private_key_jwt");
        doc["jwks"] = json!({ "keys": [jwk] });
    }
    host.put("/mcp-client.json", Route::json(&doc));
    let meta = sys
        .get_json(&format!(
            "{}/.well-known/oauth-authorization-server",
            sys.authz_url
        ))
        .await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);

    let (verifier, challenge) = pkce();
    let code = sys
        .authorization_code(
            &client_id,
            redirect_uri,
            "profile:read",
            &challenge,
            "testuser",
        )
        .await;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", redirect_uri.to_owned()),
        ("code_verifier", verifier),
    ];
    if private_key_jwt {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        let now = sys.clock.now();
        // `aud`: the authorization server's issuer identifier, a single string
        // (draft-ietf-oauth-rfc7523bis; the token endpoint is refused).
        let claims = json!({ "iss": client_id, "sub": client_id, "jti": "mcp-1",
                             "aud": sys.authz_url, "exp": now + 60 });
        let signed = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&key),
        )
        .unwrap();
        form.push((
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
        ));
        form.push(("client_assertion", signed));
    } else {
        form.push(("client_id", client_id.clone()));
    }
    let tokens: Value = sys
        .http
        .post(format!("{}/token", sys.authz_url))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"));
    let client = sys.client(token).await;
    let profile: Value = serde_json::from_str(&text(
        &call_tool(&client, "get_user_profile", json!({})).await,
    ))
    .unwrap();
    assert_eq!(profile["username"], "testuser");
    assert_eq!(profile["client_id"], client_id);
    client.cancel().await.unwrap();
    assert_eq!(host.hits("/mcp-client.json"), 1);
}
