//! The attack suite: one named test per attack, each citing the section it defends, each
//! failing if the defence is removed. `docs/security.md` lists them all with the threat model.
//! The JWT and MCP attacks run against the resource server (`mcp-resource/tests/it/attacks.rs`).

mod accounts;
mod browser;
pub(crate) mod grants;
mod input;
mod oauth;
mod reach;

use testkit::agent::FormAgent;

use crate::support::{CB, TestApp, pkce, query};
use authz::store::AuthMethod;

pub const PW: &str = "correct horse battery staple";

/// A user "alice" and a public browser-flow client "rp" (redirect `CB`).
pub async fn browser_app(backend: testkit::Backend) -> TestApp {
    browser_app_with(backend, |_| {}).await
}

/// `browser_app` with a configuration change.
pub async fn browser_app_with(
    backend: testkit::Backend,
    tweak: impl FnOnce(&mut authz::config::Config),
) -> TestApp {
    let app = TestApp::spawn_with(backend, tweak).await;
    app.user("alice", PW, "user").await;
    app.code_client(
        "rp",
        AuthMethod::None,
        "openid notes:read notes:write offline_access",
    )
    .await;
    app
}

/// The authorization URL with `redirect_uri` replaced by `redirect`.
pub fn authorize_with_redirect(app: &TestApp, redirect: &str) -> String {
    let (_, challenge) = pkce();
    app.authorize_url("rp", &challenge, &[]).replace(
        &form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>(),
        &form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
    )
}

/// Signed in through the pages: (code, verifier).
pub async fn code_for(app: &TestApp, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", scope)]);
    let q = app
        .browser_sign_in(&FormAgent::new(), &url, "alice", PW)
        .await;
    (q["code"].clone(), verifier)
}

/// The redirect must not happen: a 400 HTML page, no Location.
pub async fn assert_no_redirect(url: &str) {
    let page = FormAgent::new().get(url).await;
    assert_eq!(page.status, 400, "{url}");
    assert!(page.location.is_none(), "redirected: {:?}", page.location);
}

pub fn q(loc: &str) -> std::collections::HashMap<String, String> {
    query(loc)
}
