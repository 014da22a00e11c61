//! `authz seed-demo`: the four demo accounts of the design notes and two demo clients.
//! Demo only: the passwords are public and bypass the password policy, so this warns loudly.
//! Idempotent: what exists already is left alone.

use serde::Serialize;
use shared::secret::Password;

use crate::clients::admin::{add_client, parse_scopes};
use crate::error::{Error, Result};
use crate::identity::admin::{self, Policy};
use crate::state::AppState;
use crate::store::{AuthMethod, ClientSettings, GrantType};

/// (username, password, role)
pub const DEMO_USERS: [(&str, &str, &str); 4] = [
    ("admin", "admin123", "admin"),
    ("testuser", "TestPass123!", "user"),
    ("readonly", "ReadOnly123!", "readonly"),
    ("service_bot", "ServiceBot123!", "service"),
];

/// Confidential client for service bots (client_credentials).
pub const DEMO_SERVICE_CLIENT: &str = "demo-service";
/// Public first-party command-line client (authorization code with a loopback redirect,
/// refresh_token, and the legacy password grant); first-party, so no consent page.
pub const DEMO_CLI_CLIENT: &str = "mcp-cli";
/// The MCP resource server's own client (token exchange, introspection).
pub const DEMO_MCP_CLIENT: &str = "mcp-resource";
/// Where its secret is kept (mode 0600), for `mcp-resource` to read (`MCP_CLIENT_SECRET_FILE`).
pub const DEMO_MCP_SECRETS_FILE: &str = "mcp-resource-client.json";
/// Where the demo service client's secret is kept (mode 0600) so the demo can show it again.
pub const DEMO_SECRETS_FILE: &str = "demo-credentials.json";

#[derive(Debug, Default, Serialize)]
pub struct DemoReport {
    pub users_created: Vec<String>,
    pub clients_created: Vec<String>,
    /// `demo-service`'s secret, when known (created now or read from the data dir).
    pub service_client_secret: Option<shared::secret::ClientSecret>,
}

pub async fn seed_demo(state: &AppState) -> Result<DemoReport> {
    let mut report = DemoReport::default();
    for (username, password, role) in DEMO_USERS {
        if state.store.get_user_by_username(username).await?.is_some() {
            continue;
        }
        admin::add_user(
            state.identity(),
            "seed-demo",
            username,
            &Password::new(password),
            vec![role.to_owned()],
            Policy::BypassForDemo,
        )
        .await?;
        let email = format!("{}@example.com", username.replace('_', "."));
        admin::set_email(
            &*state.store,
            &state.events,
            "seed-demo",
            username,
            Some(&email),
        )
        .await?;
        report.users_created.push(username.to_owned());
    }
    let secrets_path = state.config.data_dir.join(DEMO_SECRETS_FILE);
    if state.store.get_client(DEMO_SERVICE_CLIENT).await?.is_none() {
        let (_, secret) = add_client(
            state.client_services(),
            "seed-demo",
            Some(DEMO_SERVICE_CLIENT.to_owned()),
            ClientSettings {
                name: "Demo service bot".to_owned(),
                auth_method: AuthMethod::ClientSecretBasic,
                grant_types: vec![GrantType::ClientCredentials],
                redirect_uris: vec![],
                scopes: parse_scopes("profile:read notes:read notes:write")?,
                resources: vec![],
                always_issue_refresh: false,
                ..Default::default()
            },
        )
        .await?;
        let secret = secret.ok_or_else(|| Error::internal("confidential client without secret"))?;
        write_private_json(
            &secrets_path,
            &serde_json::json!({ "client_id": DEMO_SERVICE_CLIENT, "client_secret": secret.expose() }),
        )?;
        report.clients_created.push(DEMO_SERVICE_CLIENT.to_owned());
        report.service_client_secret = Some(secret.clone());
    } else if let Ok(text) = std::fs::read_to_string(&secrets_path) {
        report.service_client_secret = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v["client_secret"]
                    .as_str()
                    .map(shared::secret::ClientSecret::new)
            });
    }
    if state.store.get_client(DEMO_CLI_CLIENT).await?.is_none() {
        let scopes = parse_scopes(&format!("{} openid", state.scopes.supported()))?;
        add_client(
            state.client_services(),
            "seed-demo",
            Some(DEMO_CLI_CLIENT.to_owned()),
            ClientSettings {
                name: "MCP command-line client".to_owned(),
                auth_method: AuthMethod::None,
                grant_types: vec![
                    GrantType::AuthorizationCode,
                    GrantType::RefreshToken,
                    GrantType::Password,
                    // RFC 8628: `mcp-auth-client login-device` on machines without a browser.
                    GrantType::DeviceCode,
                ],
                // Native app: a loopback redirect on any port (RFC 8252 §7.3).
                redirect_uris: vec![
                    "http://127.0.0.1/callback".to_owned(),
                    "http://[::1]/callback".to_owned(),
                ],
                // A public client: anyone on the machine can use its id with a loopback redirect,
                // so the user is always asked (RFC 8252 §8.6; `protocol::authorize`).
                skip_consent: false,
                scopes,
                resources: vec![],
                // A first-party CLI keeps its session: refresh tokens without offline_access.
                always_issue_refresh: true,
                ..Default::default()
            },
        )
        .await?;
        report.clients_created.push(DEMO_CLI_CLIENT.to_owned());
    }
    if state.store.get_client(DEMO_MCP_CLIENT).await?.is_none() {
        // The MCP server's own credentials: token exchange for the management API (so it never
        // forwards a user's token) and introspection.
        let (_, secret) = add_client(
            state.client_services(),
            "seed-demo",
            Some(DEMO_MCP_CLIENT.to_owned()),
            ClientSettings {
                name: "MCP resource server".to_owned(),
                auth_method: AuthMethod::ClientSecretBasic,
                grant_types: vec![GrantType::TokenExchange],
                scopes: state.scopes.supported(),
                resources: vec![state.config.management_audience()],
                serves_resource: Some(state.config.default_resource.clone()),
                may_introspect: true,
                ..Default::default()
            },
        )
        .await?;
        let secret = secret.ok_or_else(|| Error::internal("confidential client without secret"))?;
        write_private_json(
            &state.config.data_dir.join(DEMO_MCP_SECRETS_FILE),
            &serde_json::json!({ "client_id": DEMO_MCP_CLIENT, "client_secret": secret.expose() }),
        )?;
        report.clients_created.push(DEMO_MCP_CLIENT.to_owned());
    }
    if !report.users_created.is_empty() {
        tracing::warn!(
            users = ?report.users_created,
            "DEMO ACCOUNTS CREATED with publicly known passwords: never do this in production"
        );
    }
    Ok(report)
}

fn write_private_json(path: &std::path::Path, value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::internal)?;
    }
    let mut f = opts.open(path).map_err(Error::internal)?;
    f.write_all(value.to_string().as_bytes())
        .map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_mcp_server_is_the_default_shared_signals_receiver() {
        let config = crate::config::Config::default();
        assert_eq!(
            config.ssf.receivers,
            vec![super::DEMO_MCP_CLIENT.to_owned()]
        );
    }
}
