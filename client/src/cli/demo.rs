//! `demo`: a guided tour against a running system; exits non-zero if anything misbehaves
//! (a refusal that should have been allowed, or an allowance that should have been refused).

use mcp_auth_client::{AuditFilter, AuthenticatedMcpClient, ClientError};
use serde_json::json;

use super::ui::Ui;
use super::{DEMO_USERS, password_of};

async fn client(ui: &Ui, mcp_url: &str, client_id: &str) -> Option<AuthenticatedMcpClient> {
    match ui
        .spin("discovering", AuthenticatedMcpClient::connect(mcp_url))
        .await
    {
        Ok(c) => Some(c.with_client_id(client_id)),
        Err(e) => {
            ui.step("discover the authorization server", false, &e.to_string());
            None
        }
    }
}

/// The run; `true` when every step behaved.
pub async fn run(ui: &Ui, mcp_url: &str, client_id: &str) -> bool {
    let mut ok = true;
    let mut check = |name: &str, good: bool, detail: String| {
        ui.step(name, good, &detail);
        ok &= good;
    };

    ui.heading("Discovery (from the MCP URL alone)");
    let Some(admin) = client(ui, mcp_url, client_id).await else {
        return false;
    };
    let ep = admin.endpoints().clone();
    check(
        "protected-resource metadata → authorization server",
        true,
        format!("{} → {}", ep.resource, ep.issuer),
    );

    ui.heading("Admin signs in (password grant) and reads the profile");
    let r = ui
        .spin(
            "signing in",
            admin.login_with_password("admin", password_of("admin"), ""),
        )
        .await;
    check(
        "admin signs in",
        r.is_ok(),
        r.err().map(|e| e.to_string()).unwrap_or_default(),
    );
    match admin.get_user_profile().await {
        Ok(p) => check(
            "get_user_profile",
            p.username.as_deref() == Some("admin"),
            format!("roles {:?}, scopes {}", p.roles, p.scopes.join(" ")),
        ),
        Err(e) => check("get_user_profile", false, e.to_string()),
    }

    ui.heading("Secure notes (encrypted at rest, visible to their author only)");
    match admin
        .create_secure_note("Demo note", "Remember: rotate the signing keys on Friday.")
        .await
    {
        Ok(n) => check(
            "create_secure_note",
            true,
            format!("id {}", n["id"].as_str().unwrap_or("?")),
        ),
        Err(e) => check("create_secure_note", false, e.to_string()),
    }
    match admin.list_secure_notes().await {
        Ok(notes) => check(
            "list_secure_notes",
            !notes.is_empty(),
            format!("{} note(s)", notes.len()),
        ),
        Err(e) => check("list_secure_notes", false, e.to_string()),
    }

    ui.heading("An API key for a bot (client_credentials, acting for the admin, notes:read only)");
    let key = admin
        .create_api_key("demo bot", "notes:read profile:read", Some(1))
        .await;
    match &key {
        Ok(k) => check(
            "create_api_key",
            true,
            format!("{} (secret shown once, not printed here)", k.client_id),
        ),
        Err(e) => check("create_api_key", false, e.to_string()),
    }
    if let (Ok(k), Some(bot)) = (&key, client(ui, mcp_url, client_id).await) {
        let r = bot
            .login_with_api_key(&k.client_id, &k.client_secret, "")
            .await;
        check(
            "the bot gets a token with the key",
            r.is_ok(),
            r.err().map(|e| e.to_string()).unwrap_or_default(),
        );
        match bot.list_secure_notes().await {
            Ok(n) => check(
                "bot: list_secure_notes (notes:read)",
                true,
                format!("allowed, {} note(s)", n.len()),
            ),
            Err(e) => check("bot: list_secure_notes (notes:read)", false, e.to_string()),
        }
        match bot
            .create_secure_note("from the bot", "should not work")
            .await
        {
            Err(ClientError::Forbidden { scope, .. }) => check(
                "bot: create_secure_note",
                true,
                format!("refused as expected: needs {scope}"),
            ),
            other => check(
                "bot: create_secure_note",
                false,
                format!("expected a refusal, got {other:?}"),
            ),
        }
        let r = admin.revoke_api_key(&k.client_id).await;
        check(
            "revoke_api_key",
            r.is_ok(),
            r.err().map(|e| e.to_string()).unwrap_or_default(),
        );
        match bot
            .login_with_api_key(&k.client_id, &k.client_secret, "")
            .await
        {
            Err(ClientError::SignIn(why)) => check("the revoked key gets no new token", true, why),
            other => check(
                "the revoked key gets no new token",
                false,
                format!("{other:?}"),
            ),
        }
    }

    ui.heading("Access control for each demo role");
    for (user, _, role) in DEMO_USERS {
        let Some(c) = client(ui, mcp_url, client_id).await else {
            return false;
        };
        if let Err(e) = c.login_with_password(user, password_of(user), "").await {
            check(&format!("{user} signs in"), false, e.to_string());
            continue;
        }
        let may_write = role != "readonly";
        let is_admin = role == "admin";
        let write = c.create_secure_note("role check", "hello").await;
        let audit = c
            .list_audit_events(&AuditFilter {
                limit: Some(1),
                ..Default::default()
            })
            .await;
        let verdict = |r: &Result<serde_json::Value, ClientError>| match r {
            Ok(_) => "allowed".to_owned(),
            Err(ClientError::Forbidden { scope, .. }) => format!("refused (needs {scope})"),
            Err(e) => format!("error: {e}"),
        };
        let good = write.is_ok() == may_write
            && matches!(&write, Ok(_) | Err(ClientError::Forbidden { .. }))
            && audit.is_ok() == is_admin
            && matches!(&audit, Ok(_) | Err(ClientError::Forbidden { .. }));
        check(
            &format!("{user} ({role})"),
            good,
            format!(
                "create_secure_note {}, list_audit_events {}",
                verdict(&write),
                verdict(&audit)
            ),
        );
    }

    ui.heading("Audit log and security summary (admin only)");
    match admin
        .list_audit_events(&AuditFilter {
            limit: Some(5),
            ..Default::default()
        })
        .await
    {
        Ok(v) => {
            let events = v["events"].as_array().cloned().unwrap_or_default();
            check(
                "list_audit_events",
                !events.is_empty(),
                format!("{} newest events", events.len()),
            );
            for e in events {
                ui.info(&format!(
                    "{} {:<24} {:<8} {}",
                    e["ts"],
                    e["kind"].as_str().unwrap_or(""),
                    e["outcome"].as_str().unwrap_or(""),
                    e["source"].as_str().unwrap_or("")
                ));
            }
        }
        Err(e) => check("list_audit_events", false, e.to_string()),
    }
    match admin.get_security_summary(Some(3600)).await {
        Ok(v) => {
            check("get_security_summary", true, String::new());
            ui.json("last hour", &v["counts"]);
        }
        Err(e) => check("get_security_summary", false, e.to_string()),
    }

    ui.heading("Sign out");
    let r = admin.logout().await;
    check(
        "logout (grant ended, refresh token revoked)",
        r.is_ok(),
        r.err().map(|e| e.to_string()).unwrap_or_default(),
    );
    let after = admin.get_user_profile().await;
    check(
        "after logout the client has no token",
        matches!(after, Err(ClientError::AuthRequired(_))),
        String::new(),
    );
    let _ = json!({});
    ok
}
