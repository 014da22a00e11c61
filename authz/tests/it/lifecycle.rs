//! Token lifecycle: revocation (RFC 7009), introspection (RFC 7662), token exchange
//! (RFC 8693) and the management API's audience check.

use serde_json::Value;
use testkit::both_backends;

use crate::support::{Backend, MCP, TestApp, expect_error, expect_token};
use authz::store::{AuthMethod, GrantType};

both_backends!(
    revocation_ends_the_grant_and_never_reveals_other_clients_tokens,
    introspection_reports_live_tokens_to_allowed_clients_only,
    token_exchange_only_for_the_clients_own_audience_and_within_scope,
);

const PW: &str = "correct horse battery staple";

async fn setup(app: &TestApp) -> String {
    app.user("alice", PW, "user").await;
    app.client(
        "cli",
        AuthMethod::None,
        &[GrantType::Password, GrantType::RefreshToken],
        "notes:read notes:write keys:write profile:read offline_access",
        &[MCP],
    )
    .await;
    app.exchange_client("notes:read keys:write profile:read")
        .await
}

async fn login(app: &TestApp, scope: &str) -> Value {
    expect_token(
        app.token(
            &[
                ("grant_type", "password"),
                ("client_id", "cli"),
                ("username", "alice"),
                ("password", PW),
                ("scope", scope),
            ],
            None,
        )
        .await,
    )
    .await
}

async fn revocation_ends_the_grant_and_never_reveals_other_clients_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs_secret = setup(&app).await;
    let t = login(&app, "notes:read offline_access").await;
    let refresh = t["refresh_token"].as_str().unwrap();
    // Another client's token: 200, and nothing happens (RFC 7009 §2.2).
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("rs", Some(&rs_secret))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let introspect = |tok: String| {
        let (app, s) = (&app, rs_secret.clone());
        async move { app.introspect(&s, &tok).await }
    };
    assert_eq!(introspect(refresh.to_owned()).await["active"], true);
    // Unknown tokens: 200 too.
    let r = app
        .http
        .post(app.url("/revoke"))
        .form(&[("client_id", "cli"), ("token", "nonsense")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The owner revokes its refresh token: the family and the grant's access tokens end.
    let r = app
        .http
        .post(app.url("/revoke"))
        .form(&[
            ("client_id", "cli"),
            ("token", refresh),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    expect_error(
        app.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "cli"),
                ("refresh_token", refresh),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        introspect(t["access_token"].as_str().unwrap().to_owned()).await["active"],
        false
    );
    // Revoking an access token ends its grant as well.
    let t2 = login(&app, "notes:read offline_access").await;
    let r = app
        .http
        .post(app.url("/revoke"))
        .form(&[
            ("client_id", "cli"),
            ("token", t2["access_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    expect_error(
        app.token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "cli"),
                ("refresh_token", t2["refresh_token"].as_str().unwrap()),
            ],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    // Bad client credentials: RFC 6749 §5.2 invalid_client.
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("rs", Some("wrong"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(app.audit_kinds().await.iter().any(|k| k == "token.revoked"));
}

async fn introspection_reports_live_tokens_to_allowed_clients_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs_secret = setup(&app).await;
    let t = login(&app, "notes:read offline_access").await;
    let at = t["access_token"].as_str().unwrap();
    let r: Value = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(&rs_secret))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["active"], true);
    assert_eq!(r["scope"], "notes:read offline_access");
    assert_eq!(r["client_id"], "cli");
    assert_eq!(r["username"], "alice");
    assert_eq!(r["aud"], MCP);
    let r: Value = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(&rs_secret))
        .form(&[("token", "garbage")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, serde_json::json!({ "active": false }));
    // Expired: inactive.
    app.clock.advance(601);
    let r: Value = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(&rs_secret))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["active"], false);
    // A public client may not introspect.
    let r = app
        .http
        .post(app.url("/introspect"))
        .form(&[("client_id", "cli"), ("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
}

async fn token_exchange_only_for_the_clients_own_audience_and_within_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rs_secret = setup(&app).await;
    let t = login(&app, "notes:read keys:write").await;
    let subject = t["access_token"].as_str().unwrap();
    let exchange = |subject: String, extra: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let s = rs_secret.clone();
        async move {
            let mut form = vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
                ),
                ("subject_token", subject),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token".to_owned(),
                ),
            ];
            form.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
            app.http
                .post(app.url("/token"))
                .basic_auth("rs", Some(&s))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let ok = expect_token(exchange(subject.to_owned(), vec![("scope", "keys:write")]).await).await;
    assert_eq!(
        ok["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(ok["expires_in"].as_i64().unwrap() <= 300);
    let mgmt = app.state.config.management_audience();
    let c = app
        .verify(ok["access_token"].as_str().unwrap(), &mgmt)
        .await;
    assert_eq!(c.act.unwrap().sub, "client:rs");
    assert_eq!(c.scope, "keys:write");
    assert_eq!(c.client_id, "rs");
    // The exchanged token works at the management API; the original does not.
    let r = app
        .http
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(ok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(subject)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Scope beyond the subject token; another target; garbage; the wrong token type.
    expect_error(
        exchange(subject.to_owned(), vec![("scope", "notes:write")]).await,
        400,
        "invalid_scope",
    )
    .await;
    expect_error(
        exchange(
            subject.to_owned(),
            vec![("resource", "https://elsewhere.example/api")],
        )
        .await,
        400,
        "invalid_target",
    )
    .await;
    expect_error(
        exchange("garbage".into(), vec![]).await,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        exchange(
            subject.to_owned(),
            vec![(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            )],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    // A token for another audience cannot be exchanged by this client.
    let other = app
        .client(
            "bot",
            AuthMethod::ClientSecretBasic,
            &[GrantType::ClientCredentials],
            "notes:read",
            &[MCP],
        )
        .await;
    let _ = other;
    let exchanged = ok["access_token"].as_str().unwrap().to_owned();
    expect_error(exchange(exchanged, vec![]).await, 400, "invalid_request").await;
    // Clients without the grant: unauthorized_client.
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("client_id", "cli"),
            ("subject_token", subject),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ])
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "unauthorized_client").await;
}
