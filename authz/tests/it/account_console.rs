//! `/account` over HTTP on both backends (the browser suite drives the same pages in
//! Chromium): changing the password ends the other sessions and the apps' refresh tokens but
//! keeps this browser signed in; signing out the other sessions; API keys created (secret
//! shown once) and revoked; the data export (everything, no secret); turning two-factor off
//! (password and code); deleting the account (password, then everything goes; forbidden by
//! config).

use authz::clock::Clock;
use authz::identity::{totp, two_factor};
use authz::store::AuthMethod;
use serde_json::Value;
use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, TestApp, console_agent, pkce, submit_form as submit};
use crate::two_factor::unbase32;

both_backends!(
    changing_the_password_ends_everything_else,
    api_keys_and_sessions_from_the_account_page,
    export_two_factor_off_and_deletion,
);

const PW: &str = "correct horse battery staple";

/// A browser signed in to the console as `user`.
async fn signed_in(app: &TestApp, user: &str) -> FormAgent {
    console_agent(app, user, PW).await
}

/// A refresh token of `user` through `rp` (the real pages).
async fn grant(app: &TestApp, user: &str) -> String {
    let (verifier, challenge) = pkce();
    let url = app.authorize_url("rp", &challenge, &[("scope", "notes:read offline_access")]);
    let q = app.browser_sign_in(&FormAgent::new(), &url, user, PW).await;
    let t: Value = app
        .redeem("rp", &q["code"], &verifier)
        .await
        .json()
        .await
        .unwrap();
    t["refresh_token"].as_str().unwrap().to_owned()
}

async fn refresh_ok(app: &TestApp, rt: &str) -> bool {
    app.token(
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "rp"),
            ("refresh_token", rt),
        ],
        None,
    )
    .await
    .status()
    .is_success()
}

async fn changing_the_password_ends_everything_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "notes:read offline_access")
        .await;
    let rt = grant(&app, "alice").await;
    let other = signed_in(&app, "alice").await;
    let me = signed_in(&app, "alice").await;
    // A wrong current password, a short new one, a mismatch: refused, nothing changes.
    for (current, new, confirm, says) in [
        (
            "wrong password here",
            "a new long passphrase",
            "a new long passphrase",
            "incorrect",
        ),
        (PW, "short", "short", "cannot be used"),
        (
            PW,
            "a new long passphrase",
            "another long passphrase",
            "not the same",
        ),
    ] {
        let page = submit(
            &app,
            &me,
            "/account",
            "/account/password",
            &[
                ("password", current),
                ("new_password", new),
                ("confirm", confirm),
            ],
        )
        .await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains(says), "{says}: {}", page.body);
    }
    assert!(refresh_ok(&app, &rt).await, "nothing changed yet");
    let rt = {
        // (the refresh above rotated it; take a fresh grant)
        grant(&app, "alice").await
    };
    let done = submit(
        &app,
        &me,
        "/account",
        "/account/password",
        &[
            ("password", PW),
            ("new_password", "a new long passphrase"),
            ("confirm", "a new long passphrase"),
        ],
    )
    .await;
    assert_eq!(
        done.location.as_deref(),
        Some("/account?done=password"),
        "{}",
        done.body
    );
    // This browser stays signed in (a new session); the other one and the app are out.
    assert_eq!(me.get(&app.url("/account")).await.status, 200);
    assert_eq!(other.get(&app.url("/account")).await.status, 303);
    assert!(!refresh_ok(&app, &rt).await);
    assert!(
        app.audit_kinds()
            .await
            .iter()
            .any(|k| k == "user.password_changed")
    );
}

async fn api_keys_and_sessions_from_the_account_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    let other = signed_in(&app, "alice").await;
    let me = signed_in(&app, "alice").await;
    let sessions = me.get(&app.url("/account/sessions")).await;
    assert_eq!(
        sessions.body.matches("<tr").count() - 1,
        2,
        "{}",
        sessions.body
    );
    assert!(sessions.body.contains("This session"));
    let out = submit(
        &app,
        &me,
        "/account/sessions",
        "/account/sessions/others",
        &[],
    )
    .await;
    assert_eq!(
        out.location.as_deref(),
        Some("/account/sessions?done=ended-1")
    );
    assert_eq!(
        other.get(&app.url("/account")).await.status,
        303,
        "signed out"
    );
    assert_eq!(
        me.get(&app.url("/account")).await.status,
        200,
        "still signed in"
    );

    // An API key: keys:write is not offered; the secret is shown once and works.
    let page = me.get(&app.url("/account/api-keys")).await;
    assert!(!page.body.contains("value=\"keys:write\""));
    let created = submit(
        &app,
        &me,
        "/account/api-keys",
        "/account/api-keys",
        &[
            ("name", "report bot"),
            ("scope", "notes:read"),
            ("days", "30"),
        ],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let between = |s: &str, a: &str| -> String {
        let start = s.find(a).unwrap() + a.len();
        s[start..].split('<').next().unwrap().to_owned()
    };
    let id = between(&created.body, "id=\"new-key-id\">");
    let secret = between(&created.body, "id=\"new-key-secret\">");
    let works = |id: String, secret: String| {
        let app = &app;
        async move {
            app.token(
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "notes:read"),
                ],
                Some((&id, &secret)),
            )
            .await
            .status()
            .is_success()
        }
    };
    assert!(works(id.clone(), secret.clone()).await);
    let list = me.get(&app.url("/account/api-keys")).await;
    assert!(
        list.body.contains(&id) && !list.body.contains(&secret),
        "the secret shows once"
    );
    // Asking for a scope the roles do not grant: refused with a message.
    let refused = submit(
        &app,
        &me,
        "/account/api-keys",
        "/account/api-keys",
        &[("name", "sneaky"), ("scope", "audit:read")],
    )
    .await;
    assert!(refused.body.contains("not created"), "{}", refused.body);
    let revoked = submit(
        &app,
        &me,
        "/account/api-keys",
        &format!("/account/api-keys/{id}/revoke"),
        &[],
    )
    .await;
    assert_eq!(
        revoked.location.as_deref(),
        Some("/account/api-keys?done=revoked")
    );
    assert!(!works(id, secret).await);
}

async fn export_two_factor_off_and_deletion(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "notes:read offline_access")
        .await;
    let rt = grant(&app, "alice").await;
    let me = signed_in(&app, "alice").await;
    // The export: a JSON download of everything, no secret.
    let export = me.get(&app.url("/account/data/export.json")).await;
    assert_eq!(export.status, 200);
    assert!(
        export.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let data: Value = serde_json::from_str(&export.body).unwrap();
    assert_eq!(data["profile"]["username"], "alice");
    assert!(data["sessions"].as_array().unwrap().len() >= 2);
    assert_eq!(data["grants"][0]["client_id"], "rp");
    assert_eq!(data["consents"][0]["client_id"], "rp");
    assert!(!data["audit_events"].as_array().unwrap().is_empty());
    for secret in ["password_hash", "secret_hash", "token_hash", "$argon2"] {
        assert!(!export.body.contains(secret), "{secret} in the export");
    }

    // Two-factor on, then off: the password and a code are both needed.
    let user = app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let e = app.two_factor_begin(&user).await.unwrap();
    let secret = unbase32(&e.secret_base32);
    let code = |app: &TestApp| totp::code_at(&secret, totp::step_at(app.clock.now()));
    app.two_factor_confirm(&user, &code(&app)).await.unwrap();
    app.clock.advance(totp::STEP_SECS);
    let no_code = submit(
        &app,
        &me,
        "/account/two-factor",
        "/account/two-factor/disable",
        &[("password", PW), ("code", "000000")],
    )
    .await;
    assert!(no_code.body.contains("not valid"), "{}", no_code.body);
    assert!(
        two_factor::is_enabled(&*app.state.store, &user)
            .await
            .unwrap()
    );
    let off = submit(
        &app,
        &me,
        "/account/two-factor",
        "/account/two-factor/disable",
        &[("password", PW), ("code", &code(&app))],
    )
    .await;
    assert_eq!(
        off.location.as_deref(),
        Some("/account/two-factor?done=off")
    );
    assert!(
        !two_factor::is_enabled(&*app.state.store, &user)
            .await
            .unwrap()
    );

    // Deletion: without the tick or with a wrong password nothing happens; then everything goes.
    let unticked = submit(
        &app,
        &me,
        "/account/data",
        "/account/delete",
        &[("password", PW)],
    )
    .await;
    assert_eq!(unticked.status, 400);
    let wrong = submit(
        &app,
        &me,
        "/account/data",
        "/account/delete",
        &[
            ("password", "not my password at all"),
            ("confirm", "delete"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 400);
    assert!(app.state.store.get_user(&user.id).await.unwrap().is_some());
    let gone = submit(
        &app,
        &me,
        "/account/data",
        "/account/delete",
        &[("password", PW), ("confirm", "delete")],
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(gone.body.contains("Account deleted"));
    assert!(app.state.store.get_user(&user.id).await.unwrap().is_none());
    assert!(!refresh_ok(&app, &rt).await);
    assert_eq!(me.get(&app.url("/account")).await.status, 303);
    let n = app
        .sql_count(&format!(
            "SELECT COUNT(*) FROM sessions WHERE user_id = '{}'",
            user.id
        ))
        .await;
    assert_eq!(n, 0);
    assert!(
        app.audit_kinds().await.iter().any(|k| k == "user.deleted"),
        "audit kept"
    );

    // Forbidden by configuration: the form is not offered and a POST is refused.
    let strict = TestApp::spawn_with(backend, |c| c.console.account_deletion = false).await;
    strict.user("bob", PW, "user").await;
    let bob = signed_in(&strict, "bob").await;
    let page = bob.get(&strict.url("/account/data")).await;
    assert!(!page.body.contains("action=\"/account/delete\""));
    let csrf = hidden_inputs(&page.body)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap();
    let refused = bob
        .post_form(
            &strict.url("/account/delete"),
            &[
                csrf,
                ("password".into(), PW.into()),
                ("confirm".into(), "delete".into()),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        strict
            .state
            .store
            .get_user_by_username("bob")
            .await
            .unwrap()
            .is_some()
    );
}
