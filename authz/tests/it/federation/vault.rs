//! The token vault (issue 26): a provider's tokens kept sealed for a user and released only by
//! token exchange (`audience` = the provider's id) to a resource server the provider allows,
//! for a user token carrying the consented scope `upstream:<id>`; refreshed when about to
//! expire; discarded and revoked at the provider on unlink. Each refusal beside its positive
//! control.

use serde_json::json;
use testkit::agent::FormAgent;
use testkit::both_backends;
use testkit::https::Route;

use super::CORP;
use super::scripted::Provider;
use crate::support::{Backend, CB, MCP, expect_error, expect_token, query};
use authz::config::upstream::UpstreamKind;
use authz::store::AuthMethod;

both_backends!(the_vault_releases_refreshes_and_forgets_upstream_tokens);

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The user's token for the resource server (MCP), through the real consent page of the
/// signed-in browser `agent`, for `scope`.
async fn user_token(p: &Provider, agent: &FormAgent, client: &str, scope: &str) -> String {
    let (verifier, challenge) = testkit::pkce();
    let url = p.app.authorize_url(client, &challenge, &[("scope", scope)]);
    let back = agent
        .sign_in(&p.app.base, &url, "-", "-", "approve")
        .await
        .unwrap_or_else(|pg| panic!("stopped at {} {}", pg.status, pg.body));
    assert!(back.starts_with(CB), "{back}");
    let token = expect_token(p.app.redeem(client, &query(&back)["code"], &verifier).await).await;
    token["access_token"].as_str().unwrap().to_owned()
}

async fn exchange(p: &Provider, client: (&str, &str), subject: &str) -> reqwest::Response {
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
        ("audience", CORP),
    ];
    p.app.token(&form, Some(client)).await
}

async fn the_vault_releases_refreshes_and_forgets_upstream_tokens(backend: Backend) {
    let p = Provider::start_with(
        backend,
        UpstreamKind::Oidc,
        |u| {
            u.vault = true;
            u.vault_clients = vec!["rs".into()];
        },
        |c| {
            let user = c.roles.get_mut("user").unwrap();
            user.push("upstream:corp".into());
        },
    )
    .await;
    let rs = p.app.exchange_client("profile:read notes:read").await;
    // Another resource server, allowed token exchange but not listed by the provider.
    let (_, other) = authz::clients::admin::add_client(
        p.app.state.client_services(),
        "test",
        Some("other-rs".into()),
        authz::store::ClientSettings {
            name: "another resource server".into(),
            auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![authz::store::GrantType::TokenExchange],
            scopes: shared::ScopeSet::parse("notes:read").unwrap(),
            resources: vec![p.app.state.config.management_audience()],
            serves_resource: Some(MCP.into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let other = other.unwrap().expose().to_owned();
    p.app
        .code_client("app", AuthMethod::None, "notes:read upstream:corp")
        .await;
    // Signing in keeps the provider's tokens, sealed.
    let page = p
        .round(|n| {
            let mut t = p.signed(&p.claims("u-1", n));
            t["refresh_token"] = json!("up-rt-1");
            t["expires_in"] = json!(3600);
            t["access_token"] = json!("up-at-1");
            t["scope"] = json!("repo");
            t
        })
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let sealed = p
        .app
        .sql_text("SELECT access_enc || coalesce(refresh_enc, '') FROM upstream_tokens")
        .await
        .unwrap();
    assert!(!sealed.contains("up-at-1") && !sealed.contains("up-rt-1"));
    // The consent page names the provider.
    let (_, challenge) = testkit::pkce();
    let url = p
        .app
        .authorize_url("app", &challenge, &[("scope", "notes:read upstream:corp")]);
    let consent = p.agent.get(&url).await;
    assert!(
        consent.body.contains("Use your Scripted account"),
        "{}",
        consent.body
    );

    // (Two clients: each grant stands on its own.)
    p.app
        .code_client("app2", AuthMethod::None, "notes:read")
        .await;
    let without = user_token(&p, &p.agent, "app2", "notes:read").await;
    let with_scope = user_token(&p, &p.agent, "app", "notes:read upstream:corp").await;
    // Released: the provider's token, to the allowed resource server, for the consented scope.
    let got = expect_token(exchange(&p, ("rs", &rs), &with_scope).await).await;
    assert_eq!(got["access_token"], "up-at-1");
    assert_eq!(got["issued_token_type"], ACCESS);
    assert_eq!(got["scope"], "repo");
    // Refused: a resource server the provider does not list; a token without the consent.
    let refused = exchange(&p, ("other-rs", &other), &with_scope).await;
    expect_error(refused, 400, "invalid_target").await;
    expect_error(
        exchange(&p, ("rs", &rs), &without).await,
        400,
        "invalid_scope",
    )
    .await;
    let released = p.app.audit_of("upstream.token_released").await;
    assert_eq!(
        released.len(),
        1,
        "every release audited, refusals released nothing"
    );

    // About to expire: refreshed at the provider first, with its rotation.
    let page = p
        .round(|n| {
            let mut t = p.signed(&p.claims("u-1", n));
            t["refresh_token"] = json!("up-rt-2");
            t["expires_in"] = json!(30);
            t["access_token"] = json!("up-at-2");
            t
        })
        .await;
    assert_eq!(page.status, 303);
    p.host.put(
        "/token",
        Route::json(&json!({
            "access_token": "up-at-3", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "up-rt-3", "scope": "repo",
        })),
    );
    // (Signing in again replaced the browser's session, and its grants: a new user token.)
    let with_scope = user_token(&p, &p.agent, "app", "notes:read upstream:corp").await;
    let got = expect_token(exchange(&p, ("rs", &rs), &with_scope).await).await;
    assert_eq!(got["access_token"], "up-at-3", "refreshed before release");
    // A refused refresh forgets the tokens.
    let page = p
        .round(|n| {
            let mut t = p.signed(&p.claims("u-1", n));
            t["refresh_token"] = json!("up-rt-4");
            t["expires_in"] = json!(30);
            t
        })
        .await;
    assert_eq!(page.status, 303);
    let mut refusal = Route::json(&json!({ "error": "invalid_grant" }));
    refusal.status = 400;
    p.host.put("/token", refusal);
    let with_scope = user_token(&p, &p.agent, "app", "notes:read upstream:corp").await;
    expect_error(
        exchange(&p, ("rs", &rs), &with_scope).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        p.app
            .sql_count("SELECT count(*) FROM upstream_tokens")
            .await,
        0
    );

    // Unlinked: the tokens go, revoked at the provider.
    let page = p.round(|n| p.signed(&p.claims("u-1", n))).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        p.app
            .sql_count("SELECT count(*) FROM upstream_tokens")
            .await,
        1
    );
    // (Provisioned without a username claim or a verified address: named after the provider.)
    let owner = p
        .app
        .state
        .store
        .get_user_by_username(CORP)
        .await
        .unwrap()
        .unwrap();
    let ctx = authz::events::audit::RequestContext {
        ip: None,
        now: authz::clock::Clock::now(&*p.app.clock),
        dpop_jkt: None,
    };
    let removed = authz::federation::links::unlink(
        p.app.state.federation(),
        &owner,
        CORP,
        "u-1",
        authz::federation::links::Remover::Admin { actor: "test" },
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(removed, Ok(true));
    assert_eq!(
        p.app
            .sql_count("SELECT count(*) FROM upstream_tokens")
            .await,
        0
    );
    assert_eq!(p.host.hits("/revoke"), 1, "revoked at the provider");
}

both_backends!(
    review_2_v1_a_refresh_racing_an_unlink_does_not_bring_the_tokens_back,
    review_2_v2_the_vault_follows_the_users_current_roles,
    review_2_the_password_grant_never_carries_the_vault_scope,
);

/// A provider with the vault for "rs", the user's role granting `upstream:corp`; a user signed
/// in through it (tokens that expire in `expires_in`), the resource server's secret and a
/// user token for it carrying the scope.
async fn vault_with_user(backend: Backend, expires_in: i64) -> (Provider, String, String) {
    let p = Provider::start_with(
        backend,
        UpstreamKind::Oidc,
        |u| {
            u.vault = true;
            u.vault_clients = vec!["rs".into()];
        },
        |c| {
            c.roles
                .get_mut("user")
                .unwrap()
                .push("upstream:corp".into())
        },
    )
    .await;
    let rs = p.app.exchange_client("profile:read notes:read").await;
    p.app
        .code_client("app", AuthMethod::None, "notes:read upstream:corp")
        .await;
    let page = p
        .round(|n| {
            let mut t = p.signed(&p.claims("u-1", n));
            t["refresh_token"] = json!("up-rt-1");
            t["expires_in"] = json!(expires_in);
            t
        })
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let token = user_token(&p, &p.agent, "app", "notes:read upstream:corp").await;
    (p, rs, token)
}

async fn review_2_v1_a_refresh_racing_an_unlink_does_not_bring_the_tokens_back(backend: Backend) {
    let (p, rs, token) = vault_with_user(backend, 30).await;
    // The provider answers the refresh slowly; the unlink lands meanwhile.
    let mut slow = Route::json(&json!({
        "access_token": "up-at-late", "token_type": "Bearer", "expires_in": 3600,
        "refresh_token": "up-rt-late",
    }));
    slow.delay = std::time::Duration::from_millis(1500);
    p.host.put("/token", slow);
    let racing = {
        let http = p.app.http.clone();
        let url = p.app.url("/token");
        let (rs, token) = (rs.clone(), token.clone());
        tokio::spawn(async move {
            let form = [
                ("grant_type", EXCHANGE),
                ("subject_token", token.as_str()),
                ("subject_token_type", ACCESS),
                ("audience", CORP),
            ];
            http.post(url)
                .basic_auth("rs", Some(rs))
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let owner = p
        .app
        .state
        .store
        .get_user_by_username(CORP)
        .await
        .unwrap()
        .unwrap();
    let ctx = authz::events::audit::RequestContext {
        ip: None,
        now: authz::clock::Clock::now(&*p.app.clock),
        dpop_jkt: None,
    };
    let by = authz::federation::links::Remover::Admin { actor: "test" };
    let unlinked =
        authz::federation::links::unlink(p.app.state.federation(), &owner, CORP, "u-1", by, &ctx);
    assert_eq!(unlinked.await.unwrap(), Ok(true));
    assert_eq!(
        p.app
            .sql_count("SELECT count(*) FROM upstream_tokens")
            .await,
        0
    );
    let status = racing.await.unwrap();
    assert_ne!(status, 200, "released after the unlink");
    assert_eq!(
        p.app
            .sql_count("SELECT count(*) FROM upstream_tokens")
            .await,
        0,
        "the refresh brought the tokens back"
    );
    // The refresh token the late answer brought is revoked at the provider too.
    assert_eq!(p.host.hits("/revoke"), 2);
}

async fn review_2_v2_the_vault_follows_the_users_current_roles(backend: Backend) {
    let (p, rs, token) = vault_with_user(backend, 3600).await;
    expect_token(exchange(&p, ("rs", &rs), &token).await).await; // positive control
    let user = p
        .app
        .state
        .store
        .get_user_by_username(CORP)
        .await
        .unwrap()
        .unwrap();
    let now = authz::clock::Clock::now(&*p.app.clock);
    p.app
        .state
        .store
        .set_user_roles(&user.id, &["readonly".to_owned()], now)
        .await
        .unwrap();
    // The token still carries the scope, the user's roles no longer grant it.
    expect_error(
        exchange(&p, ("rs", &rs), &token).await,
        400,
        "invalid_scope",
    )
    .await;
}

/// Review 2 (note): the password grant granted `upstream:<id>` with no consent page where its
/// client had the scope; it is consent, given in the browser only.
async fn review_2_the_password_grant_never_carries_the_vault_scope(backend: Backend) {
    let (p, _, _) = vault_with_user(backend, 3600).await;
    p.app.user("pam", "local pass phrase 12", "user").await;
    p.app
        .client(
            "pw",
            AuthMethod::None,
            &[authz::store::GrantType::Password],
            "notes:read upstream:corp",
            &[MCP],
        )
        .await;
    let ask = |scope: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", "pw"),
            ("username", "pam"),
            ("password", "local pass phrase 12"),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        form
    };
    let asked = p
        .app
        .token(&ask(Some("notes:read upstream:corp")), None)
        .await;
    let said = expect_error(asked, 400, "invalid_scope").await;
    assert!(said.contains("consent page"), "{said}");
    // Without a scope: the default leaves it out.
    let default = expect_token(p.app.token(&ask(None), None).await).await;
    assert_eq!(default["scope"], "notes:read");
    // Positive control: what the password grant may carry is still granted.
    let ok = expect_token(p.app.token(&ask(Some("notes:read")), None).await).await;
    assert_eq!(ok["scope"], "notes:read");
}
