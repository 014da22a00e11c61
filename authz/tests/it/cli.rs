//! The `authz` binary's administrative commands, run as a user would.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Backend, MCP, TestApp, expect_error, expect_token};
use testkit::both_backends;

both_backends!(cli_manages_users_and_clients);

pub fn authz(app: &TestApp, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    authz_with_env(app, &[], args, stdin)
}

/// `authz` with extra environment variables.
pub fn authz_with_env(
    app: &TestApp,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authz"))
        .args(args)
        .envs(env.iter().copied())
        .env("AUTHZ_DATA_DIR", app.dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env("AUTHZ_ISSUER", &app.base)
        .env("AUTHZ_DEFAULT_RESOURCE", MCP)
        .env("AUTHZ_ARGON2_M_COST", "256")
        .env("AUTHZ_ARGON2_T_COST", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn cli_manages_users_and_clients(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Weak password: refused with a helpful message, nothing created.
    let (ok, _, err) = authz(
        &app,
        &["user", "add", "bob", "--role", "user", "--password-stdin"],
        Some("password123\n"),
    );
    assert!(!ok);
    assert!(
        err.contains("too short") || err.contains("commonly used"),
        "{err}"
    );
    let (ok, out, err) = authz(
        &app,
        &[
            "user",
            "add",
            "bob",
            "--role",
            "user",
            "--password-stdin",
            "--json",
        ],
        Some("a long and unusual passphrase\n"),
    );
    assert!(ok, "{err}");
    let user: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(user["username"], "bob");
    let (ok, _, err) = authz(
        &app,
        &["user", "add", "bob", "--password-stdin"],
        Some("another long passphrase!\n"),
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = authz(&app, &["user", "set-roles", "bob", "superuser"], None);
    assert!(!ok && err.contains("unknown role"), "{err}");

    let (ok, out, err) = authz(
        &app,
        &[
            "client",
            "add",
            "--id",
            "svc",
            "--name",
            "Service",
            "--grant",
            "client_credentials",
            "--scope",
            "notes:read",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256-bit secret");
    let (ok, out, _) = authz(&app, &["client", "list", "--json"], None);
    assert!(ok);
    assert!(!out.contains(&secret), "secrets are shown once only");
    expect_token(
        app.token(
            &[("grant_type", "client_credentials")],
            Some(("svc", &secret)),
        )
        .await,
    )
    .await;

    // Rotating the secret from another process: the new secret works at once; the old one
    // stops at the latest when the server's client cache entry expires (client_cache_secs).
    let (ok, out, _) = authz(&app, &["client", "rotate-secret", "svc", "--json"], None);
    assert!(ok);
    let new_secret = serde_json::from_str::<serde_json::Value>(&out).unwrap()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_token(
        app.token(
            &[("grant_type", "client_credentials")],
            Some(("svc", &new_secret)),
        )
        .await,
    )
    .await;
    app.clock.advance(app.state.config.client_cache_secs);
    assert_eq!(
        app.token(
            &[("grant_type", "client_credentials")],
            Some(("svc", &secret))
        )
        .await
        .status(),
        401
    );

    let (ok, _, err) = authz(
        &app,
        &[
            "client",
            "add",
            "--name",
            "x",
            "--grant",
            "client_credentials",
            "--auth-method",
            "none",
        ],
        None,
    );
    assert!(!ok && err.contains("public client"), "{err}");
    // The issue 18 flags: a sender-constrained service that must use PAR and may introspect.
    let (ok, out, err) = authz(
        &app,
        &[
            "client",
            "add",
            "--id",
            "dp",
            "--name",
            "DPoP service",
            "--grant",
            "client_credentials",
            "--scope",
            "notes:read",
            "--dpop-bound",
            "--require-par",
            "--introspect",
            "--json",
        ],
        None,
    );
    assert!(ok, "{err}");
    let dp: serde_json::Value = serde_json::from_str(&out).unwrap();
    for flag in [
        "dpop_bound_access_tokens",
        "require_pushed_authorization_requests",
        "may_introspect",
    ] {
        assert_eq!(dp[flag], true, "{flag}: {dp}");
    }
    let dp_secret = dp["client_secret"].as_str().unwrap();
    // Without a proof its token request is refused; the svc client above, without the flag,
    // got its token the same way (positive control).
    expect_error(
        app.token(
            &[("grant_type", "client_credentials")],
            Some(("dp", dp_secret)),
        )
        .await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let (ok, _, _) = authz(&app, &["client", "delete", "svc"], None);
    assert!(ok);
    app.clock.advance(app.state.config.client_cache_secs);
    assert_eq!(
        app.token(
            &[("grant_type", "client_credentials")],
            Some(("svc", &new_secret))
        )
        .await
        .status(),
        401
    );

    let (ok, out, _) = authz(&app, &["seed-demo", "--json"], None);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["users_created"].as_array().unwrap().len(), 4);
    let (ok, out, _) = authz(&app, &["seed-demo", "--json"], None);
    assert!(ok, "idempotent");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["users_created"],
        serde_json::json!([])
    );
    let body = expect_token(
        app.token(
            &[
                ("grant_type", "password"),
                ("client_id", "mcp-cli"),
                ("username", "admin"),
                ("password", "admin123"),
            ],
            None,
        )
        .await,
    )
    .await;
    let claims = app
        .verify(body["access_token"].as_str().unwrap(), MCP)
        .await;
    assert_eq!(claims.roles, ["admin"]);
    let (ok, out, _) = authz(&app, &["keys", "list", "--json"], None);
    assert!(ok && out.contains("RS256"));
}
