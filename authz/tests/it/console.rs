//! The web console in a real browser (headless Chromium through chromedriver, as the sign-in
//! test): TOTP enrolment read off the page and codes computed here, sign-in with a code, a
//! replayed code refused, a recovery code working once; a user revoking a connected app (its
//! refresh token dies); an admin filtering the audit log and exporting CSV; an admin disabling
//! a user (their refresh token and API key die); and screenshots of every console page at
//! 1200 px and 390 px, checked for their heading, their table rows and the layout (sidebar
//! beside the content at 1200 px, stacked without sideways scrolling at 390 px).

use std::path::PathBuf;
use std::time::Duration;

use authz::clients::api_keys;
use authz::clock::Clock;
use authz::identity::totp;
use authz::store::AuthMethod;
use serde_json::Value;
use testkit::agent::FormAgent;
use testkit::both_backends;
use testkit::webdriver::Browser;

use crate::pages::{fill, h1, sign_out, submit, wait_find, wait_h1};
use crate::support::{Backend, TestApp, pkce};
use crate::two_factor::unbase32;

both_backends!(
    two_factor_enrolment_and_sign_in_in_chromium,
    console_pages_in_chromium_with_screenshots,
);

const PW: &str = "correct horse battery staple";

/// Sign in to the console with the password (the code page may follow).
async fn console_password(b: &Browser, app: &TestApp, user: &str, next: &str) {
    let q: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    b.goto(&app.url(&format!("/account/login?next={q}")))
        .await
        .unwrap();
    fill(b, "#username", user).await;
    fill(b, "#password", PW).await;
    submit(b, "button[type=submit]").await;
}

async fn enter_code(b: &Browser, code: &str) {
    wait_h1(b, "Enter your code").await;
    fill(b, "#code", code).await;
    submit(b, "button[type=submit]").await;
}

async fn two_factor_enrolment_and_sign_in_in_chromium(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("alice", PW, "user").await;
    let b = Browser::start().await.unwrap();
    console_password(&b, &app, "alice", "/account/two-factor").await;
    wait_h1(&b, "Two-factor sign-in").await;
    submit(&b, "form[action=\"/account/two-factor/begin\"] button").await;
    // The page shows the QR code (server-side SVG) and the key; the "app" reads the key.
    wait_find(&b, "svg.qr").await;
    let key = b.text(&wait_find(&b, "#totp-secret").await).await.unwrap();
    let secret = unbase32(key.trim());
    assert_eq!(secret.len(), totp::SECRET_BYTES);
    let code = || totp::code_at(&secret, totp::step_at(app.clock.now()));
    fill(&b, "#code", &code()).await;
    submit(&b, "form[action=\"/account/two-factor/confirm\"] button").await;
    wait_find(&b, "#recovery-codes").await;
    let mut recovery = Vec::new();
    for li in b.find_all("#recovery-codes li").await.unwrap() {
        recovery.push(b.text(&li).await.unwrap());
    }
    assert_eq!(recovery.len(), 10, "ten recovery codes, shown once");
    sign_out(&b).await;

    // Sign in: the password, then a code from the next step.
    app.clock.advance(totp::STEP_SECS);
    let fresh = code();
    console_password(&b, &app, "alice", "/account").await;
    enter_code(&b, &fresh).await;
    wait_h1(&b, "Your account").await;
    sign_out(&b).await;

    // The same code again: refused (a replay), the code page stays.
    console_password(&b, &app, "alice", "/account").await;
    enter_code(&b, &fresh).await;
    let alert = b
        .text(&wait_find(&b, "div.notice-error").await)
        .await
        .unwrap();
    assert!(alert.contains("not valid"), "{alert}");
    assert_eq!(h1(&b).await, "Enter your code");
    // A recovery code instead: in.
    fill(&b, "#code", &recovery[0]).await;
    submit(&b, "button[type=submit]").await;
    wait_h1(&b, "Your account").await;
    b.goto(&app.url("/account/two-factor")).await.unwrap();
    assert_eq!(
        b.text(&wait_find(&b, "#codes-left").await).await.unwrap(),
        "9"
    );
    sign_out(&b).await;
    // The same recovery code twice: refused; a fresh code then works (positive control).
    console_password(&b, &app, "alice", "/account").await;
    enter_code(&b, &recovery[0]).await;
    let alert = b
        .text(&wait_find(&b, "div.notice-error").await)
        .await
        .unwrap();
    assert!(alert.contains("not valid"), "{alert}");
    app.clock.advance(totp::STEP_SECS);
    fill(&b, "#code", &code()).await;
    submit(&b, "button[type=submit]").await;
    wait_h1(&b, "Your account").await;
    b.quit().await;
    let kinds = app.audit_kinds().await;
    for k in ["mfa.enabled", "mfa.code_replayed", "mfa.recovery_code_used"] {
        assert!(kinds.iter().any(|x| x == k), "{k}: {kinds:?}");
    }
}

/// A refresh token for `user` through `native-app` (the real pages, over HTTP).
async fn grant(app: &TestApp, user: &str) -> String {
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "native-app",
        &challenge,
        &[("scope", "notes:read offline_access")],
    );
    let q = app.browser_sign_in(&FormAgent::new(), &url, user, PW).await;
    let t: Value = app
        .redeem("native-app", &q["code"], &verifier)
        .await
        .json()
        .await
        .unwrap();
    t["refresh_token"].as_str().unwrap().to_owned()
}

/// Refresh: the new refresh token, or the error code.
async fn refresh(app: &TestApp, rt: &str) -> Result<String, String> {
    let resp = app
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "native-app"),
                ("refresh_token", rt),
            ],
            None,
        )
        .await;
    let ok = resp.status().is_success();
    let body: Value = resp.json().await.unwrap();
    if ok {
        Ok(body["refresh_token"].as_str().unwrap().to_owned())
    } else {
        Err(body["error"].as_str().unwrap_or_default().to_owned())
    }
}

async fn api_key_works(app: &TestApp, id: &str, secret: &str) -> bool {
    app.token(
        &[
            ("grant_type", "client_credentials"),
            ("scope", "notes:read"),
        ],
        Some((id, secret)),
    )
    .await
    .status()
    .is_success()
}

/// Where the screenshots go: `target/tmp/console-screenshots/<backend>/`.
fn shot_dir(backend: Backend) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screenshots")
        .join(format!("{backend:?}").to_lowercase())
}

/// Visit `path` at 1200 px and 390 px: its heading, at least `min_rows` rows in its tables,
/// the layout right at each width, and a full-page screenshot saved.
async fn check_page(
    b: &Browser,
    app: &TestApp,
    dir: &std::path::Path,
    path: &str,
    heading: &str,
    min_rows: usize,
) {
    for width in [1200u32, 390] {
        b.set_window_size(width, 900).await.unwrap();
        b.goto(&app.url(path)).await.unwrap();
        wait_h1(b, heading).await;
        let rows = b.find_all("main table.data tbody tr").await.unwrap().len();
        assert!(
            rows >= min_rows,
            "{path} at {width}px: {rows} rows, want ≥ {min_rows}"
        );
        let layout = b
            .execute(
                "const l = document.querySelector('.console-layout');\
                 return [getComputedStyle(l).flexDirection,\
                         document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .unwrap();
        let want = if width >= 1000 { "row" } else { "column" };
        assert_eq!(layout[0], want, "{path} at {width}px: {layout}");
        assert!(
            layout[1].as_u64().unwrap() <= layout[2].as_u64().unwrap() + 1,
            "{path} at {width}px scrolls sideways: {layout}"
        );
        let png = b.full_page_screenshot().await.unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        let name = path.trim_start_matches('/').replace('/', "-");
        let file = dir.join(format!("{name}-{width}.png"));
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&file, &png).unwrap();
        // `AUTHZ_UPDATE_SCREENSHOTS=1 scripts/test`: refresh the two the README shows.
        if std::env::var_os("AUTHZ_UPDATE_SCREENSHOTS").is_some()
            && ((name == "admin" && width == 1200) || (name == "account-apps" && width == 390))
        {
            let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(format!("{name}-{width}.png")), &png).unwrap();
        }
    }
}

/// The texts of the cells of column `col` (0-based) of the table `css`.
async fn column(b: &Browser, css: &str, col: usize) -> Vec<String> {
    let mut out = Vec::new();
    for cell in b
        .find_all(&format!("{css} tbody tr td:nth-child({})", col + 1))
        .await
        .unwrap()
    {
        out.push(b.text(&cell).await.unwrap());
    }
    out
}

async fn console_pages_in_chromium_with_screenshots(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.user("root", PW, "admin").await;
    app.user("alice", PW, "user").await;
    let bob_id = app.user("bob", PW, "user").await;
    app.code_client("native-app", AuthMethod::None, "notes:read offline_access")
        .await;
    let alice_rt = grant(&app, "alice").await;
    let bob_rt = grant(&app, "bob").await;
    let bob = app.state.store.get_user(&bob_id).await.unwrap().unwrap();
    let held = app.state.config.role_scopes(["user"]);
    let (_, signed_in) = app.recent_sign_in(&bob).await;
    let key = api_keys::create(
        app.state.client_services(),
        &bob,
        &signed_in,
        &held,
        "bob-bot",
        "notes:read",
        Some(30),
    )
    .await
    .unwrap();
    let key_secret = key.client_secret.expose().to_owned();
    // Failed sign-ins for the audit log filter.
    let agent = FormAgent::new();
    for _ in 0..2 {
        let (_, challenge) = pkce();
        let url = app.authorize_url("native-app", &challenge, &[("scope", "notes:read")]);
        let _ = agent
            .sign_in(&app.base, &url, "mallory", "wrong password", "approve")
            .await;
    }
    let dir = shot_dir(backend);
    let b = Browser::start().await.unwrap();

    // alice: her connected app, then every account page.
    console_password(&b, &app, "alice", "/account/apps").await;
    wait_h1(&b, "Connected apps").await;
    assert_eq!(column(&b, "#apps", 0).await.len(), 1);
    assert!(column(&b, "#apps", 0).await[0].contains("native-app app"));
    for (path, heading, rows) in [
        ("/account", "Your account", 5),
        ("/account/apps", "Connected apps", 1),
        ("/account/sessions", "Sessions", 2),
        ("/account/api-keys", "API keys", 0),
        ("/account/two-factor", "Two-factor sign-in", 0),
        ("/account/passkeys", "Passkeys", 0),
        ("/account/data", "Your data", 0),
    ] {
        check_page(&b, &app, &dir, path, heading, rows).await;
    }
    // Before: her refresh token works (positive control); she revokes the app; it stops.
    let alice_rt = refresh(&app, &alice_rt)
        .await
        .expect("refresh works before");
    b.set_window_size(1200, 900).await.unwrap();
    b.goto(&app.url("/account/apps")).await.unwrap();
    submit(&b, "#apps form[action=\"/account/apps/revoke\"] button").await;
    let notice = b.text(&wait_find(&b, ".notice-ok").await).await.unwrap();
    assert!(notice.contains("revoked"), "{notice}");
    assert!(b.find_all("#apps tbody tr").await.unwrap().is_empty());
    assert_eq!(refresh(&app, &alice_rt).await, Err("invalid_grant".into()));
    // A non-admin: the 403 page at /admin.
    b.goto(&app.url("/admin")).await.unwrap();
    wait_h1(&b, "Administrators only").await;
    sign_out(&b).await;

    // root: the admin console.
    console_password(&b, &app, "root", "/admin").await;
    wait_h1(&b, "Dashboard").await;
    for (path, heading, rows) in [
        ("/admin", "Dashboard", 1),
        ("/admin/audit", "Audit log", 5),
        ("/admin/users", "Users", 3),
        ("/admin/clients", "Clients", 2),
        ("/admin/keys", "Signing keys", 1),
    ] {
        check_page(&b, &app, &dir, path, heading, rows).await;
    }
    // Filter the audit log by kind: only those rows.
    b.set_window_size(1200, 900).await.unwrap();
    b.goto(&app.url("/admin/audit")).await.unwrap();
    fill(&b, "#f-kind", "login.failed").await;
    submit(&b, "#audit-filters button[type=submit]").await;
    b.wait_for_url(|u| u.contains("kind=login.failed"), Duration::from_secs(10))
        .await
        .unwrap();
    let kinds = column(&b, "#audit-events", 1).await;
    assert!(kinds.len() >= 2, "{kinds:?}");
    assert!(kinds.iter().all(|k| k == "login.failed"), "{kinds:?}");
    // The CSV export of the same filter, fetched by the page (its cookies).
    let csv = b
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             fetch(document.querySelector('.csv-link').href)\
               .then(r => r.text().then(t => done([r.status, r.headers.get('content-type'), t])))\
               .catch(e => done([0, '', String(e)]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(csv[0], 200, "{csv}");
    assert!(csv[1].as_str().unwrap().starts_with("text/csv"), "{csv}");
    let text = csv[2].as_str().unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("id,time,kind,outcome,actor,subject,client_id,ip,details")
    );
    let data: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(data.len(), kinds.len(), "{text}");
    assert!(data.iter().all(|l| l.contains(",login.failed,")), "{text}");

    // Before: bob's refresh token and API key work; an admin disables bob; both stop.
    let bob_rt = refresh(&app, &bob_rt)
        .await
        .expect("bob's refresh works before");
    assert!(api_key_works(&app, &key.client_id, &key_secret).await);
    b.goto(&app.url("/admin/users")).await.unwrap();
    submit(
        &b,
        &format!("form[action=\"/admin/users/{bob_id}/disable\"] button"),
    )
    .await;
    wait_h1(&b, "Users").await;
    assert_eq!(refresh(&app, &bob_rt).await, Err("invalid_grant".into()));
    assert!(!api_key_works(&app, &key.client_id, &key_secret).await);
    b.quit().await;
    let events = app.audit_events().await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == "user.disabled" && e.actor.as_deref() == Some("root")),
        "audited with the admin as actor"
    );
}
