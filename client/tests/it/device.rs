//! `login_with_device` (RFC 8628), the library behind `mcp-auth-client login-device`: the user
//! code is entered on the real `/device` page by another "browser" while the client polls.

use mcp_auth_client::{AuthenticatedMcpClient, SignInMethod};
use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, System};

both_backends!(
    device_sign_in_with_the_code_entered_elsewhere,
    device_sign_in_with_dpop_binds_the_tokens,
);

/// The user's side: sign in on the web, enter `code`, approve. The final page's body.
async fn approve_on_the_web(base: &str, code: &str) -> String {
    let agent = FormAgent::new();
    let first = agent.get(&format!("{base}/device")).await;
    let login = agent
        .get(&format!("{base}{}", first.location.unwrap()))
        .await;
    let mut fields = hidden_inputs(&login.body);
    fields.push(("username".into(), "testuser".into()));
    fields.push(("password".into(), "TestPass123!".into()));
    let done = agent.post_form(&format!("{base}/login"), &fields).await;
    let entry = agent
        .get(&format!("{base}{}", done.location.unwrap()))
        .await;
    let mut fields: Vec<(String, String)> = hidden_inputs(&entry.body);
    fields.push(("user_code".into(), code.into()));
    let confirm = agent.post_form(&format!("{base}/device"), &fields).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let mut fields = hidden_inputs(&confirm.body);
    fields.push(("decision".into(), "approve".into()));
    agent
        .post_form(&format!("{base}/device/decide"), &fields)
        .await
        .body
}

async fn device_sign_in_with_the_code_entered_elsewhere(backend: Backend) {
    device_sign_in(backend, false).await;
}

/// `--dpop`: the device code is redeemed with a proof, so the tokens are bound to the key
/// (RFC 9449 §5), and the MCP calls carry proofs.
async fn device_sign_in_with_dpop_binds_the_tokens(backend: Backend) {
    device_sign_in(backend, true).await;
}

async fn device_sign_in(backend: Backend, dpop: bool) {
    let s = System::start(backend).await;
    let mut c = AuthenticatedMcpClient::connect(&s.mcp_url).await.unwrap();
    if dpop {
        c = c.with_dpop().unwrap();
    }
    assert!(c.endpoints().device_authorization_endpoint.is_some());
    // The servers' clock keeps up with the client's real waiting (it polls every 5 s).
    let ticker = tokio::spawn({
        let clock = s.clock.clone();
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                clock.advance(1);
            }
        }
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<(String, String)>();
    let browser = tokio::spawn({
        let base = s.authz_url.clone();
        async move {
            let (code, uri) = rx.await.unwrap();
            assert_eq!(uri, format!("{base}/device"));
            approve_on_the_web(&base, &code).await
        }
    });
    c.login_with_device("profile:read notes:read", |d| {
        let _ = tx.send((d.user_code.clone(), d.verification_uri.clone()));
    })
    .await
    .unwrap();
    ticker.abort();
    assert!(browser.await.unwrap().contains("Device connected"));
    let t = c.tokens().await.unwrap();
    assert_eq!(t.method, SignInMethod::Device);
    assert!(t.refresh_token.is_some(), "mcp-cli always gets one");
    assert_eq!(t.dpop_bound, dpop, "bound exactly when --dpop");
    let p = c.get_user_profile().await.unwrap();
    assert_eq!(p.username.as_deref(), Some("testuser"));
}
