//! A Client ID Metadata Document client end to end: the document on a local https host (its
//! certificate made for the test and trusted by `authz`), sign-in and consent through the
//! real pages, the code exchanged with PKCE, and an MCP tool call with the token.

use serde_json::{Value, json};
use testkit::https::{HttpsHost, Route};
use testkit::{both_backends, pkce};

use crate::support::{Backend, System, call_tool, text};

both_backends!(a_metadata_document_client_calls_a_tool);

async fn a_metadata_document_client_calls_a_tool(backend: Backend) {
    let host = HttpsHost::start().await;
    let (roots, allowed) = (host.ca_pem.clone(), host.host_port());
    let sys = System::start_with_authz(backend, |c| {
        c.cimd.extra_roots = Some(roots);
        c.cimd.allowed_private_hosts = vec![allowed];
    })
    .await;
    let client_id = host.url("/mcp-client.json");
    let redirect_uri = "http://127.0.0.1:7999/callback";
    host.put(
        "/mcp-client.json",
        Route::json(&json!({
            "client_id": client_id,
            "client_name": "Document MCP Client",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })),
    );
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
    let tokens: Value = sys
        .http
        .post(format!("{}/token", sys.authz_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.as_str()),
        ])
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
