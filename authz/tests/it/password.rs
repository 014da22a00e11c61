//! The password grant through the openidconnect crate.

use authz::store::{AuthMethod, GrantType};
use openidconnect::{OAuth2TokenResponse, ResourceOwnerPassword, ResourceOwnerUsername, Scope};

use crate::client_credentials::oidc_client;
use crate::support::{Backend, MCP, TestApp};
use testkit::both_backends;

both_backends!(user_token_carries_identity_and_role_scopes);

pub const ALICE_PW: &str = "correct horse battery staple";

async fn user_token_carries_identity_and_role_scopes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.client(
        "cli",
        AuthMethod::None,
        &[GrantType::Password, GrantType::RefreshToken],
        "profile:read notes:read notes:write keys:write audit:read offline_access profile",
        &[MCP],
    )
    .await;
    let alice = app.user("alice", ALICE_PW, "user").await;
    let client = oidc_client(&app, "cli", None);
    let resp = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(ALICE_PW.into()),
        )
        .add_scope(Scope::new("notes:read".into()))
        .add_scope(Scope::new("profile".into()))
        .request_async(&app.oidc())
        .await
        .unwrap();
    assert!(
        resp.refresh_token().is_none(),
        "no offline_access, no refresh token"
    );
    let claims = app.verify(resp.access_token().secret(), MCP).await;
    assert_eq!(claims.sub, alice);
    assert_eq!(claims.preferred_username.as_deref(), Some("alice"));
    assert_eq!(claims.roles, ["user"]);
    assert_eq!(claims.client_id, "cli");
    assert_eq!(claims.scope, "notes:read profile");
    assert!(claims.auth_time.is_some());

    // No scope requested: role ∩ client, without offline_access.
    let resp = client
        .exchange_password(
            &ResourceOwnerUsername::new("alice".into()),
            &ResourceOwnerPassword::new(ALICE_PW.into()),
        )
        .request_async(&app.oidc())
        .await
        .unwrap();
    let claims = app.verify(resp.access_token().secret(), MCP).await;
    assert_eq!(
        claims.scope, "keys:write notes:read notes:write profile profile:read",
        "role 'user' has no audit:read"
    );

    let kinds = app.audit_kinds().await;
    assert!(kinds.contains(&"login.succeeded".to_owned()));
    // Audit never contains the password.
    let events = app.audit_events().await;
    assert!(!serde_json::to_string(&events).unwrap().contains(ALICE_PW));
}
