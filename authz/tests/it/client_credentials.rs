//! client_credentials through the openidconnect crate, verified against the served JWKS.

use authz::store::{AuthMethod, GrantType};
use openidconnect::core::CoreClient;
use openidconnect::{
    ClientId, ClientSecret, IssuerUrl, JsonWebKeySet, OAuth2TokenResponse, Scope, TokenUrl,
};

use crate::support::{Backend, MCP, OTHER_API, TestApp};
use testkit::both_backends;

both_backends!(
    service_bot_gets_audience_bound_token,
    client_secret_post_and_resource_selection
);

pub fn oidc_client(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
) -> CoreClient<
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
> {
    let mut c = CoreClient::new(
        ClientId::new(id.into()),
        IssuerUrl::new(app.base.clone()).unwrap(),
        JsonWebKeySet::default(),
    )
    .set_token_uri(TokenUrl::new(app.url("/token")).unwrap());
    if let Some(s) = secret {
        c = c.set_client_secret(ClientSecret::new(s.into()));
    }
    c
}

async fn service_bot_gets_audience_bound_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app.bot("notes:read notes:write").await;
    let client = oidc_client(&app, "bot", Some(&secret));
    let resp = client
        .exchange_client_credentials()
        .add_scope(Scope::new("notes:read".into()))
        .request_async(&app.oidc())
        .await
        .unwrap();
    assert!(
        resp.refresh_token().is_none(),
        "RFC 6749 §4.4.3: no refresh token"
    );
    assert_eq!(resp.expires_in().unwrap().as_secs(), 600);
    let scopes: Vec<String> = resp
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["notes:read"]);
    let claims = app.verify(resp.access_token().secret(), MCP).await;
    assert_eq!(
        claims.sub, "client:bot",
        "client subject never collides with a user id"
    );
    assert_eq!(claims.client_id, "bot");
    assert_eq!(claims.scope, "notes:read");
    assert_eq!(claims.exp - claims.iat, 600);
    assert!(claims.preferred_username.is_none() && claims.roles.is_empty());
    assert!(app.audit_kinds().await.contains(&"token.issued".to_owned()));

    // Default scope: everything the client may have.
    let resp = client
        .exchange_client_credentials()
        .request_async(&app.oidc())
        .await
        .unwrap();
    assert_eq!(
        app.verify(resp.access_token().secret(), MCP).await.scope,
        "notes:read notes:write"
    );
}

async fn client_secret_post_and_resource_selection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = app
        .client(
            "poster",
            AuthMethod::ClientSecretPost,
            &[GrantType::ClientCredentials],
            "profile:read",
            &[MCP, OTHER_API],
        )
        .await
        .unwrap();
    let body = crate::support::expect_token(
        app.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "poster"),
                ("client_secret", &secret),
                ("resource", OTHER_API),
            ],
            None,
        )
        .await,
    )
    .await;
    let claims = app
        .verify(body["access_token"].as_str().unwrap(), OTHER_API)
        .await;
    assert_eq!(
        claims.aud, OTHER_API,
        "RFC 8707: aud is the requested resource"
    );
    // Without resource: the configured default.
    let body = crate::support::expect_token(
        app.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "poster"),
                ("client_secret", &secret),
            ],
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        app.verify(body["access_token"].as_str().unwrap(), MCP)
            .await
            .aud,
        MCP
    );

    // A rotation in this process takes effect at once (the client cache is invalidated).
    let new = authz::identity::admin::rotate_client_secret(
        &*app.state.store,
        &app.state.clients,
        &app.state.events,
        "test",
        "poster",
    )
    .await
    .unwrap();
    let old = app
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "poster"),
                ("client_secret", &secret),
            ],
            None,
        )
        .await;
    crate::support::expect_error(old, 401, "invalid_client").await;
    crate::support::expect_token(
        app.token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "poster"),
                ("client_secret", new.expose()),
            ],
            None,
        )
        .await,
    )
    .await;
}
