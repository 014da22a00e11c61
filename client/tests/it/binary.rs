//! The `mcp-auth-client` binary: `demo` and `validate` against both servers.

use testkit::both_backends;

use crate::support::{Backend, System};

both_backends!(
    demo_runs_every_step_cleanly,
    validate_passes_on_a_healthy_system,
    validate_fails_loudly_when_access_control_is_wrong,
);

async fn run(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-auth-client"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

async fn demo_runs_every_step_cleanly(backend: Backend) {
    let s = System::start(backend).await;
    let (ok, out) = run(&["--mcp-url", &s.mcp_url, "demo"]).await;
    assert!(ok, "{out}");
    for expected in [
        "✔ admin signs in",
        "✔ bot: create_secure_note: refused as expected: needs notes:write",
        "✔ the revoked key gets no new token",
        "✔ readonly (readonly): create_secure_note refused (needs",
        "✔ testuser (user): create_secure_note allowed, list_audit_events refused (needs",
        "✔ get_security_summary",
        "✔ logout",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!out.contains('✘'), "{out}");
}

async fn validate_passes_on_a_healthy_system(backend: Backend) {
    let s = System::start(backend).await;
    let (ok, out) = run(&["--mcp-url", &s.mcp_url, "validate"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("11 passed, 0 failed"), "{out}");
    let (ok, json) = run(&["--mcp-url", &s.mcp_url, "--format", "json", "validate"]).await;
    assert!(ok);
    let last: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(last, serde_json::json!({ "passed": 11, "failed": 0 }));
    assert!(json.lines().filter(|l| l.contains("\"step\"")).count() == 11);
}

async fn validate_fails_loudly_when_access_control_is_wrong(backend: Backend) {
    // A misconfigured system: read-only users may write.
    let s = System::start_with_authz(backend, |c| {
        c.roles.insert(
            "readonly".into(),
            vec![
                "profile:read".into(),
                "notes:read".into(),
                "notes:write".into(),
            ],
        );
    })
    .await;
    let (ok, out) = run(&["--mcp-url", &s.mcp_url, "validate"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("✘ readonly cannot write notes"), "{out}");
    assert!(
        out.contains("passed, 2 failed") || out.contains("passed, 1 failed"),
        "{out}"
    );
    let (ok, _) = run(&["--mcp-url", "http://127.0.0.1:9/mcp", "validate"]).await;
    assert!(!ok, "an unreachable system fails");
}
