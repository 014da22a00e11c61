//! `validate`: the end-to-end validation suite against a running system. Each check prints pass
//! or fail with its reason; the last line is `N passed, M failed`; non-zero exit on failure.

use std::collections::BTreeSet;

use mcp_auth_client::{AuthenticatedMcpClient, ClientError, Tokens};
use serde_json::{Value, json};

use super::password_of;
use super::ui::{Format, Ui};

type Check = Result<String, String>;

async fn signed_in(
    mcp_url: &str,
    client_id: &str,
    user: &str,
) -> Result<AuthenticatedMcpClient, String> {
    let c = AuthenticatedMcpClient::connect(mcp_url)
        .await
        .map_err(|e| e.to_string())?
        .with_client_id(client_id);
    c.login_with_password(user, password_of(user), "")
        .await
        .map_err(|e| e.to_string())?;
    Ok(c)
}

fn expect(cond: bool, pass: impl Into<String>, fail: impl Into<String>) -> Check {
    if cond {
        Ok(pass.into())
    } else {
        Err(fail.into())
    }
}

async fn raw_call(mcp_url: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(mcp_url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_user_profile","arguments":{}}}).to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn checks(name: &str, mcp_url: &str, client_id: &str) -> Check {
    let tools_of = |user: &'static str| async move {
        let c = signed_in(mcp_url, client_id, user).await?;
        c.list_tools()
            .await
            .map(|t| t.into_iter().collect::<BTreeSet<_>>())
            .map_err(|e| e.to_string())
    };
    match name {
        "discovery" => {
            let c = AuthenticatedMcpClient::connect(mcp_url)
                .await
                .map_err(|e| e.to_string())?;
            let ep = c.endpoints();
            expect(
                ep.resource == mcp_url && ep.authorization_endpoint.is_some(),
                format!("{} via {}", ep.issuer, ep.token_endpoint),
                format!("resource {} ≠ {mcp_url}", ep.resource),
            )
        }
        "unauthenticated request gets a 401 challenge" => {
            let r = reqwest::Client::new()
                .post(mcp_url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let www = r
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            expect(
                r.status() == 401 && www.contains("resource_metadata="),
                "401 with resource_metadata",
                format!("{} {www}", r.status()),
            )
        }
        "every demo role signs in" => {
            for (u, _, _) in super::DEMO_USERS {
                signed_in(mcp_url, client_id, u).await?;
            }
            Ok("admin, testuser, readonly, service_bot".into())
        }
        "a wrong password is refused" => {
            let c = AuthenticatedMcpClient::connect(mcp_url)
                .await
                .map_err(|e| e.to_string())?
                .with_client_id(client_id);
            match c
                .login_with_password("testuser", "not the password", "")
                .await
            {
                Err(ClientError::SignIn(why)) => Ok(why),
                other => Err(format!("{other:?}")),
            }
        }
        "tools/list shows each role its tools" => {
            let admin = tools_of("admin").await?;
            let readonly = tools_of("readonly").await?;
            let user = tools_of("testuser").await?;
            expect(
                admin.contains("list_audit_events")
                    && !user.contains("list_audit_events")
                    && !readonly.contains("create_secure_note")
                    && user.contains("create_api_key"),
                format!(
                    "admin {}, testuser {}, readonly {}",
                    admin.len(),
                    user.len(),
                    readonly.len()
                ),
                format!("admin {admin:?} testuser {user:?} readonly {readonly:?}"),
            )
        }
        "readonly cannot write notes (403 insufficient_scope)" => {
            let c = signed_in(mcp_url, client_id, "readonly").await?;
            match c.create_secure_note("x", "y").await {
                Err(ClientError::Forbidden { scope, .. }) if scope.contains("notes:write") => {
                    Ok(format!("needs {scope}"))
                }
                other => Err(format!("{other:?}")),
            }
        }
        "notes round-trip and stay private" => {
            let a = signed_in(mcp_url, client_id, "testuser").await?;
            let n = a
                .create_secure_note("validate", "private content")
                .await
                .map_err(|e| e.to_string())?;
            let id = n["id"].as_str().unwrap_or_default().to_owned();
            let back = a.get_secure_note(&id).await.map_err(|e| e.to_string())?;
            let other = signed_in(mcp_url, client_id, "admin").await?;
            let stolen = other.get_secure_note(&id).await;
            expect(
                back["content"] == "private content" && matches!(stolen, Err(ClientError::Tool(_))),
                "author reads it, admin cannot",
                format!("{back} / {stolen:?}"),
            )
        }
        "API key: created, scoped, revoked" => {
            let owner = signed_in(mcp_url, client_id, "testuser").await?;
            let k = owner
                .create_api_key("validate", "notes:read", Some(1))
                .await
                .map_err(|e| e.to_string())?;
            let bot = AuthenticatedMcpClient::connect(mcp_url)
                .await
                .map_err(|e| e.to_string())?;
            bot.login_with_api_key(&k.client_id, &k.client_secret, "")
                .await
                .map_err(|e| e.to_string())?;
            bot.list_secure_notes().await.map_err(|e| e.to_string())?;
            let write = bot.create_secure_note("x", "y").await;
            owner
                .revoke_api_key(&k.client_id)
                .await
                .map_err(|e| e.to_string())?;
            let again = bot
                .login_with_api_key(&k.client_id, &k.client_secret, "")
                .await;
            expect(
                matches!(write, Err(ClientError::Forbidden { .. }))
                    && matches!(again, Err(ClientError::SignIn(_))),
                "scope-limited, dead after revocation",
                format!("{write:?} / {again:?}"),
            )
        }
        "refresh tokens rotate and reuse is detected" => {
            let c = signed_in(mcp_url, client_id, "testuser").await?;
            let t: Tokens = c.tokens().await.ok_or("no tokens")?;
            let rt = t
                .refresh_token
                .ok_or("no refresh token")?
                .expose()
                .to_owned();
            let http = reqwest::Client::new();
            let token_url = c.endpoints().token_endpoint.clone();
            let refresh = |rt: String| {
                let (http, token_url) = (http.clone(), token_url.clone());
                async move {
                    let Ok(r) = http
                        .post(&token_url)
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("client_id", client_id),
                            ("refresh_token", rt.as_str()),
                        ])
                        .send()
                        .await
                    else {
                        return (0, String::new());
                    };
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    (
                        status,
                        body["refresh_token"].as_str().unwrap_or("").to_owned(),
                    )
                }
            };
            // A → B → C, then A again: A's successor is already spent, so this is reuse (never
            // a retry, whatever the server's retry window) and the whole family ends.
            let (first, b) = refresh(rt.clone()).await;
            let (second, c) = refresh(b).await;
            let (reuse, _) = refresh(rt).await;
            let (after, _) = refresh(c).await;
            expect(
                first == 200 && second == 200 && reuse == 400 && after == 400,
                "rotated, reuse refused, family revoked",
                format!("{first}, {second}, reuse {reuse}, then {after}"),
            )
        }
        "admin tools: admin allowed, others refused" => {
            let admin = signed_in(mcp_url, client_id, "admin").await?;
            let summary = admin
                .get_security_summary(None)
                .await
                .map_err(|e| e.to_string())?;
            let bot = signed_in(mcp_url, client_id, "service_bot").await?;
            let refused = bot.get_security_summary(None).await;
            expect(
                summary["counts"].is_object()
                    && matches!(refused, Err(ClientError::Forbidden { .. })),
                "summary for admin, 403 for service_bot",
                format!("{refused:?}"),
            )
        }
        "logout ends the grant" => {
            let c = signed_in(mcp_url, client_id, "testuser").await?;
            let token = c.tokens().await.ok_or("no tokens")?.access_token;
            c.logout().await.map_err(|e| e.to_string())?;
            let status = raw_call(mcp_url, token.expose()).await;
            expect(
                status == 401,
                "the old access token is refused",
                format!("HTTP {status}"),
            )
        }
        other => Err(format!("unknown check {other}")),
    }
}

const CHECKS: &[&str] = &[
    "discovery",
    "unauthenticated request gets a 401 challenge",
    "every demo role signs in",
    "a wrong password is refused",
    "tools/list shows each role its tools",
    "readonly cannot write notes (403 insufficient_scope)",
    "notes round-trip and stay private",
    "API key: created, scoped, revoked",
    "refresh tokens rotate and reuse is detected",
    "admin tools: admin allowed, others refused",
    "logout ends the grant",
];

pub async fn run(ui: &Ui, mcp_url: &str, client_id: &str) -> bool {
    ui.heading(&format!("Validating {mcp_url}"));
    let (mut passed, mut failed) = (0, 0);
    for name in CHECKS {
        let r = ui.spin(name, checks(name, mcp_url, client_id)).await;
        match r {
            Ok(detail) => {
                passed += 1;
                ui.step(name, true, &detail);
            }
            Err(reason) => {
                failed += 1;
                ui.step(name, false, &reason);
            }
        }
    }
    match ui.format {
        Format::Text => println!("\n{passed} passed, {failed} failed"),
        Format::Json => println!("{}", json!({ "passed": passed, "failed": failed })),
    }
    let _: Option<Value> = None;
    failed == 0
}
