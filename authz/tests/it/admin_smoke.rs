//! Checks of the admin pages through the whole server (moved from `authz-web`'s unit tests: the
//! real server of `TestApp`, on SQLite and PostgreSQL, a manual clock): every page renders for
//! an administrator, the rules of the changes hold (CSRF, recent sign-in, not on oneself), and
//! each change reaches the store and the audit log with the administrator as actor. The
//! browser tests drive the same pages; `admin_smoke_changes` has the changes' rules.

use authz::clock::Clock;
use authz::events::audit::RequestContext;
use authz::identity::session::{self, SignedIn};
use authz::store::{AuditEvent, AuditQuery, Outcome, User};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header;
use testkit::both_backends;

use crate::support::{Backend, TestApp};

both_backends!(
    admin_pages_render_and_refuse_others,
    dashboard_counts_and_audit_log_filters,
);

const PW: &str = "a long enough password for tests";
const CSRF_COOKIE: &str = "0123456789abcdef0123456789abcdef0123456789";

/// The server and the helpers the admin checks share.
pub(crate) struct App {
    pub app: TestApp,
}

pub(crate) struct Reply {
    pub status: StatusCode,
    pub location: String,
    pub content_type: String,
    pub disposition: String,
    pub body: String,
}

impl std::ops::Deref for App {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl App {
    pub(crate) async fn new(backend: Backend) -> Self {
        Self {
            app: TestApp::spawn(backend).await,
        }
    }

    /// Unix seconds on the server's clock.
    pub(crate) fn now(&self) -> i64 {
        self.app.clock.now()
    }

    pub(crate) async fn user(&self, name: &str, role: &str) -> User {
        let id = self.app.user(name, PW, role).await;
        self.load(&id).await
    }

    /// A browser signed in as `user`: its cookie header.
    pub(crate) async fn sign_in(&self, user: &User) -> String {
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

    /// The form token of the browser whose CSRF cookie is `CSRF_COOKIE` (the keyed double
    /// submit: HMAC of the cookie under the master key).
    pub(crate) fn csrf(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.state.master.mac("csrf", CSRF_COOKIE.as_bytes()))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("response");
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
        let bytes = resp.bytes().await.expect("body");
        Reply {
            status,
            location,
            content_type,
            disposition,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub(crate) async fn get(&self, path: &str, cookie: &str) -> Reply {
        let req = self.http.get(self.url(path)).header(header::COOKIE, cookie);
        self.send(req).await
    }

    /// POST one of the user page's actions (`/admin/users/{id}/{action}`, no fields) with
    /// this browser's CSRF token.
    pub(crate) async fn user_action(&self, user_id: &str, action: &str, cookie: &str) -> Reply {
        let path = format!("/admin/users/{user_id}/{action}");
        self.post(&path, cookie, &[], true).await
    }

    /// POST a form with this browser's CSRF token (unless `csrf` is false).
    pub(crate) async fn post(
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
        let req = self
            .http
            .post(self.url(path))
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.finish());
        self.send(req).await
    }

    pub(crate) async fn audit(&self, kind: &str) -> Vec<AuditEvent> {
        self.state.audit_log.flush().await;
        let q = AuditQuery {
            kind: Some(kind.into()),
            limit: 100,
            ..AuditQuery::default()
        };
        self.state.store.query_audit(&q).await.expect("audit")
    }

    async fn load(&self, id: &str) -> User {
        self.state
            .store
            .get_user(id)
            .await
            .expect("get")
            .expect("exists")
    }

    pub(crate) async fn reload(&self, user: &User) -> User {
        self.load(&user.id).await
    }
}

/// Move the clock on to 13 min 20 s past the next full hour (as 1 700 000 000 is, the time
/// these checks were written for): the dashboard's hourly buckets are then the same.
fn at_quarter_past(app: &App) -> i64 {
    let now = app.now();
    let then = (now / 3600 + 1) * 3600 + 800;
    app.clock.advance(then - now);
    then
}

/// The dashboard's label of the hour `t` is in (UTC).
fn hour_label(t: i64) -> String {
    format!("{:02}:00", t.rem_euclid(86_400) / 3600)
}

async fn admin_pages_render_and_refuse_others(backend: Backend) {
    let app = App::new(backend).await;
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

async fn dashboard_counts_and_audit_log_filters(backend: Backend) {
    let app = App::new(backend).await;
    let now = at_quarter_past(&app);
    let (this_hour, last_hour) = (hour_label(now), hour_label(now - 3600));
    let root = app.user("root", "admin").await;
    let c = app.sign_in(&root).await;
    for (dt, kind, outcome) in [
        (-10, "login.succeeded", Outcome::Success),
        (-20, "login.succeeded", Outcome::Success),
        (-3700, "login.failed", Outcome::Failure),
        (-30, "mcp.tool_denied", Outcome::Failure),
    ] {
        let e = AuditEvent::new(now + dt, kind, outcome).actor("=evil,\"x\"");
        app.state.audit(e).await;
    }
    let r = app.get("/admin", &c).await;
    assert!(
        r.body.contains(&format!(
            "data-series=\"Succeeded\" data-label=\"{this_hour}\" data-value=\"2\""
        )),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!(
        "data-series=\"Failed\" data-label=\"{last_hour}\" data-value=\"1\""
    )));
    assert!(r.body.contains(&format!(
        "data-series=\"Denied MCP tool calls\" data-label=\"{this_hour}\" data-value=\"1\""
    )));
    assert!(
        r.body
            .contains("data-stat=\"sign-ins\"><span class=\"n\">2</span>")
    );

    let r = app.get("/admin/audit?kind=login.succeeded", &c).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.matches("<tr data-id=").count(), 2);
    let r = app
        .get(
            &format!("/admin/audit?outcome=failure&to={}", now - 3600),
            &c,
        )
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
        let e = AuditEvent::new(now - 100 - i, "token.issued", Outcome::Success);
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
