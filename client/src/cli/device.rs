//! `login-device`: sign in with the device authorization grant (RFC 8628) on a machine
//! without a browser. Prints the address and the code to enter on another device, polls the
//! token endpoint at the server's interval (longer after each `slow_down`), and keeps the
//! tokens in the 0600 token file for later runs (`interactive --remember`).

use mcp_auth_client::AuthenticatedMcpClient;

use super::ui::Ui;

pub async fn run(ui: &Ui, mcp_url: &str, client_id: &str, scope: &str) -> bool {
    let client = match AuthenticatedMcpClient::connect(mcp_url).await {
        Ok(c) => c.with_client_id(client_id),
        Err(e) => {
            ui.step("connect", false, &e.to_string());
            return false;
        }
    };
    let path = mcp_auth_client::tokens::default_path();
    let client = client.remember_in(path.clone()).await;
    let shown = client
        .login_with_device(scope, |d| {
            ui.heading("Sign in on another device");
            ui.info(&format!("Open   {}", d.verification_uri));
            ui.info(&format!("Enter  {}", d.user_code));
            if let Some(c) = &d.verification_uri_complete {
                ui.info(&format!("(or open {c} and confirm the code)"));
            }
            ui.info(&format!(
                "The code expires in {} minutes. Waiting for approval…",
                d.expires_in.div_ceil(60)
            ));
            ui.json(
                "device_authorization",
                &serde_json::json!({
                    "verification_uri": d.verification_uri,
                    "verification_uri_complete": d.verification_uri_complete,
                    "user_code": d.user_code,
                    "expires_in": d.expires_in,
                }),
            );
        })
        .await;
    match shown {
        Ok(()) => {
            ui.step(
                "login-device",
                true,
                &format!("signed in; tokens kept in {}", path.display()),
            );
            true
        }
        Err(e) => {
            ui.step("login-device", false, &e.to_string());
            false
        }
    }
}
