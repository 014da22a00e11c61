//! A storage outage (the database cannot be reached) is a temporary condition, answered as one:
//! `503 temporarily_unavailable` with `Retry-After` on OAuth endpoints (RFC 6749 §4.1.2.1's code,
//! RFC 9110 §10.2.3), a 503 page for browsers; never a 500 that clients do not retry. The
//! server recovers by itself once the database is back (sqlx reconnects); here the pool is
//! closed, which is what every request sees while the database is down.

use authz::store::{AuthMethod, GrantType};
use testkit::both_backends;

use crate::support::{Backend, MCP, TestApp};

both_backends!(a_storage_outage_is_503_temporarily_unavailable_with_retry_after);

async fn a_storage_outage_is_503_temporarily_unavailable_with_retry_after(backend: Backend) {
    // Every client lookup goes to the database.
    let app = TestApp::spawn_with(backend, |c| c.client_cache_secs = 0).await;
    let secret = app
        .client(
            "bot",
            AuthMethod::ClientSecretBasic,
            &[GrantType::ClientCredentials],
            "notes:read",
            &[MCP],
        )
        .await
        .unwrap();
    app.code_client("rp", AuthMethod::None, "openid notes:read")
        .await;
    let authorize = app.authorize_url(
        "rp",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        &[("scope", "openid notes:read"), ("resource", MCP)],
    );
    let token = || {
        app.http
            .post(format!("{}/token", app.base))
            .basic_auth("bot", Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("resource", MCP)])
            .send()
    };
    let page = || app.http.get(&authorize).send();
    // Positive control: served while the database is up.
    assert_eq!(token().await.unwrap().status(), 200);
    assert!(page().await.unwrap().status().as_u16() < 500);

    app.state.store.close().await;
    let resp = token().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert!(resp.headers().contains_key("retry-after"), "{resp:?}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    // A browser gets a page saying so, also with Retry-After.
    let resp = page().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"), "{resp:?}");
    assert!(resp.text().await.unwrap().contains("try again"));
}
