//! An unmodified MCP client signs in: rmcp's own client-side OAuth (`auth` feature) starts
//! from nothing but the MCP server's URL and its 401 challenge, discovers the protected-resource
//! metadata (RFC 9728) and the authorization server (RFC 8414), registers itself (RFC 7591),
//! sends the user through the real login and consent forms with PKCE and `resource`
//! (RFC 8707), and then calls a tool with the token it obtained.

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use testkit::agent::FormAgent;
use testkit::both_backends;

use crate::support::{Backend, System, call_tool, initialize, text};

both_backends!(rmcp_client_discovers_registers_signs_in_and_calls_tools);

async fn rmcp_client_discovers_registers_signs_in_and_calls_tools(backend: Backend) {
    let sys = System::start(backend).await;
    // What an MCP client sees first: 401 with the resource metadata pointer.
    let first = sys.post(None, &initialize()).await;
    assert_eq!(first.status(), 401);
    let challenge = first.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();

    let mut oauth = OAuthState::new(sys.mcp_url.as_str(), None).await.unwrap();
    oauth
        .start_authorization(
            AuthorizationRequest::new("http://127.0.0.1:7777/callback")
                .with_client_name("rmcp integration test")
                .with_challenge(challenge),
        )
        .await
        .unwrap();
    let url = oauth.get_authorization_url().await.unwrap();
    let params: std::collections::HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert!(
        url.starts_with(&format!("{}/authorize?", sys.authz_url)),
        "{url}"
    );
    assert_eq!(params["resource"], sys.mcp_url, "RFC 8707 resource");
    assert_eq!(params["code_challenge_method"], "S256");
    // The client registered itself dynamically.
    let client_id = &params["client_id"];
    let registered = sys
        .authz
        .store
        .get_client(client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registered.registration, authz::store::Registration::Dynamic);

    // The user signs in and consents through the real HTML forms.
    let redirect = FormAgent::new()
        .sign_in(&sys.authz_url, &url, "testuser", "TestPass123!", "approve")
        .await
        .unwrap_or_else(|p| panic!("sign-in stopped at {}: {}", p.status, p.body));
    assert!(
        redirect.starts_with("http://127.0.0.1:7777/callback?"),
        "{redirect}"
    );
    oauth.handle_callback_url(&redirect).await.unwrap();
    let manager = oauth.into_authorization_manager().unwrap();
    let token = manager.get_access_token().await.unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], sys.mcp_url);
    assert_eq!(claims["client_id"], *client_id);

    // The MCP session over Streamable HTTP with rmcp's authorized client.
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::default(), manager),
        StreamableHttpClientTransportConfig::with_uri(sys.mcp_url.clone()),
    );
    let client = ().serve(transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "get_user_profile"));
    // No upstream provider configured: no vault tool (`federated` has it).
    assert!(!tools.iter().any(|t| t.name == "get_upstream_profile"));
    let profile = call_tool(&client, "get_user_profile", serde_json::json!({})).await;
    assert!(text(&profile).contains("testuser"), "{}", text(&profile));
    client.cancel().await.unwrap();
}
