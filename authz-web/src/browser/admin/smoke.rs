//! In-process checks of the admin pages through the whole router (a SQLite database in a
//! temp dir, a manual clock): every page renders for an administrator, the rules of the
//! changes hold (CSRF, recent sign-in, not on oneself), and each change reaches the store and
//! the audit log with the administrator as actor. The browser tests drive the same pages.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use shared::secret::Password;
use tower::ServiceExt;

use crate::browser::web::csrf_token;
use authz_core::clock::ManualClock;
use authz_core::config::Config;
use authz_core::events::audit::RequestContext;
use authz_core::identity::admin::{self, Policy};
use authz_core::identity::session::{self, SignedIn};
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, AuditQuery, Outcome, User};

const NOW: i64 = 1_700_000_000;
const CSRF_COOKIE: &str = "0123456789abcdef0123456789abcdef0123456789";

pub(super) struct App {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

pub(super) struct Reply {
    pub status: StatusCode,
    pub location: String,
    pub content_type: String,
    pub disposition: String,
    pub body: String,
}

impl App {
    pub(super) async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            issuer: "http://127.0.0.1:9".into(),
            data_dir: dir.path().to_path_buf(),
            argon2: authz_core::config::Argon2Config {
                m_cost: 256,
                t_cost: 1,
                p_cost: 1,
                ..Default::default()
            },
            ..Config::default()
        };
        config.validate().expect("config");
        let clock = Arc::new(ManualClock::new(NOW));
        let state = authz_core::build_state(config, clock.clone())
            .await
            .expect("state");
        Self {
            state,
            clock,
            _dir: dir,
        }
    }

    pub(super) async fn user(&self, name: &str, role: &str) -> User {
        let pw = Password::new("a long enough password for tests");
        admin::add_user(
            &self.state,
            "test",
            name,
            &pw,
            vec![role.into()],
            Policy::Enforce,
        )
        .await
        .expect("user")
    }

    /// A browser signed in as `user`: its cookie header.
    pub(super) async fn sign_in(&self, user: &User) -> String {
        // As a sign-in does: the account as it is now (a session is stamped with it).
        let user = &self.reload(user).await;
        let how = SignedIn {
            amr: &["pwd"],
            user_agent: None,
        };
        let ctx = RequestContext {
            ip: None,
            now: self.state.now(),
            dpop_jkt: None,
        };
        let (_, value) = session::start(
            &*self.state.store,
            &self.state.config,
            &self.state.events,
            user,
            how,
            &ctx,
        )
        .await
        .expect("session")
        .expect("the user as stored");
        format!("authz_session={value}; authz_csrf={CSRF_COOKIE}")
    }

    pub(super) fn csrf(&self) -> String {
        csrf_token(&self.state, CSRF_COOKIE)
    }

    pub(super) async fn send(&self, req: Request<Body>) -> Reply {
        let resp = crate::router(self.state.clone())
            .oneshot(req)
            .await
            .expect("response");
        let h = |name| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (location, content_type, disposition) = (
            h(header::LOCATION),
            h(header::CONTENT_TYPE),
            h(header::CONTENT_DISPOSITION),
        );
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .expect("body");
        Reply {
            status,
            location,
            content_type,
            disposition,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(super) async fn get(&self, path: &str, cookie: &str) -> Reply {
        let req = Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    /// POST a form with this browser's CSRF token (unless `csrf` is false).
    pub(super) async fn post(
        &self,
        path: &str,
        cookie: &str,
        pairs: &[(&str, &str)],
        csrf: bool,
    ) -> Reply {
        let mut form = form_urlencoded::Serializer::new(String::new());
        if csrf {
            form.append_pair("csrf", &self.csrf());
        }
        for (k, v) in pairs {
            form.append_pair(k, v);
        }
        let req = Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.finish()))
            .expect("request");
        self.send(req).await
    }

    pub(super) async fn audit(&self, kind: &str) -> Vec<AuditEvent> {
        self.state.audit_log.flush().await;
        let q = AuditQuery {
            kind: Some(kind.into()),
            limit: 100,
            ..AuditQuery::default()
        };
        self.state.store.query_audit(&q).await.expect("audit")
    }

    pub(super) async fn reload(&self, user: &User) -> User {
        self.state
            .store
            .get_user(&user.id)
            .await
            .expect("get")
            .expect("exists")
    }
}

#[tokio::test]
async fn admin_pages_render_and_refuse_others() {
    let app = App::new().await;
    let root = app.user("root", "admin").await;
    let bob = app.user("bob", "user").await;
    let (root_c, bob_c) = (app.sign_in(&root).await, app.sign_in(&bob).await);

    let r = app.get("/admin", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location, "/account/login?next=%2Fadmin");
    for path in [
        "/admin",
        "/admin/audit",
        "/admin/users",
        "/admin/clients",
        "/admin/keys",
    ] {
        let r = app.get(path, &bob_c).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.body.contains("Administrators only"), "{path}");
    }
    for (path, h1) in [
        ("/admin", "Dashboard"),
        ("/admin/audit", "Audit log"),
        ("/admin/users", "Users"),
        ("/admin/clients", "Clients"),
        ("/admin/keys", "Signing keys"),
    ] {
        let r = app.get(path, &root_c).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(r.body.contains(&format!("<h1>{h1}</h1>")), "{path}");
        assert!(!r.body.contains("style="), "{path}: no inline styles");
        assert!(!r.body.contains("<script"), "{path}");
    }
    let post = app.post("/admin/users/x/disable", &bob_c, &[], true).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn dashboard_counts_and_audit_log_filters() {
    let app = App::new().await;
    let root = app.user("root", "admin").await;
    let c = app.sign_in(&root).await;
    for (dt, kind, outcome) in [
        (-10, "login.succeeded", Outcome::Success),
        (-20, "login.succeeded", Outcome::Success),
        (-3700, "login.failed", Outcome::Failure),
        (-30, "mcp.tool_denied", Outcome::Failure),
    ] {
        let e = AuditEvent::new(NOW + dt, kind, outcome).actor("=evil,\"x\"");
        app.state.audit(e).await;
    }
    let r = app.get("/admin", &c).await;
    assert!(
        r.body
            .contains("data-series=\"Succeeded\" data-label=\"22:00\" data-value=\"2\""),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("data-series=\"Failed\" data-label=\"21:00\" data-value=\"1\"")
    );
    assert!(
        r.body.contains(
            "data-series=\"Denied MCP tool calls\" data-label=\"22:00\" data-value=\"1\""
        )
    );
    assert!(
        r.body
            .contains("data-stat=\"sign-ins\"><span class=\"n\">2</span>")
    );

    let r = app.get("/admin/audit?kind=login.succeeded", &c).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.matches("<tr data-id=").count(), 2);
    let r = app
        .get("/admin/audit?outcome=failure&to=1699996400", &c)
        .await;
    assert_eq!(r.body.matches("<tr data-id=").count(), 1, "{}", r.body);
    let r = app.get("/admin/audit?from=tomorrow", &c).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("notice-error") && r.body.contains("is not a time"));
    let r = app.get("/admin/audit?from=%FF", &c).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = app.get("/admin/audit.csv?kind=login.succeeded", &c).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "text/csv; charset=utf-8");
    assert_eq!(r.disposition, "attachment; filename=\"audit.csv\"");
    let lines: Vec<&str> = r.body.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "id,time,kind,outcome,actor,subject,client_id,ip,details"
    );
    assert_eq!(lines.len(), 4, "{}", r.body);
    assert!(lines[1].contains(",login.succeeded,success,\"'=evil,\"\"x\"\"\","));
    assert_eq!(
        app.audit("audit.exported").await[0].actor.as_deref(),
        Some("root")
    );
    let r = app.get("/admin/audit.csv?outcome=maybe", &c).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Paging: 50 a page, then "Older →" with the filters.
    for i in 0..60 {
        let e = AuditEvent::new(NOW - 100 - i, "token.issued", Outcome::Success);
        app.state.audit(e).await;
    }
    let r = app.get("/admin/audit?kind=token.issued", &c).await;
    assert_eq!(r.body.matches("<tr data-id=").count(), 50);
    let start = r
        .body
        .find("class=\"older\" rel=\"next\" href=\"")
        .expect("older")
        + 31;
    let href = &r.body[start..start + r.body[start..].find('"').expect("end")];
    let href = href.replace("&#38;", "&").replace("&amp;", "&");
    assert!(
        href.starts_with("/admin/audit?kind=token.issued&before="),
        "{href}"
    );
    let r = app.get(&href, &c).await;
    assert_eq!(r.body.matches("<tr data-id=").count(), 10);
    assert!(!r.body.contains("class=\"older\""));
}
