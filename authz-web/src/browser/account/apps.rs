//! `GET /account/apps` (connected apps; revoke one) and `GET /account/sessions` (this session
//! and the others; sign out the others).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;

use super::super::console::{Console, Nav, done_message};
use super::super::web::{PageError, see_other};
use super::profile::Done;
use super::{bad_request, user_error};
use crate::console::time::{utc, utc_or_dash};
use crate::context::Ctx;
use authz_core::identity::data;
use authz_core::policy::scope::describe_in;
use authz_core::state::AppState;

struct AppRow {
    client_id: String,
    name: String,
    host: Option<String>,
    verified: bool,
    scopes: Vec<(String, String)>,
    resources: Vec<String>,
    first_used: String,
    last_used: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "console/account_apps.html")]
struct AppsPage {
    nav: Nav,
    apps: Vec<AppRow>,
    notice: Option<&'static str>,
    error: Option<String>,
}

const DONE: &[(&str, &str)] = &[(
    "revoked",
    "The app's access was revoked. It will have to ask you again to connect.",
)];

async fn apps_page(
    state: &AppState,
    console: &Console,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let apps = data::connected_apps(
        &*state.store,
        &state.config.cimd,
        state.now(),
        &console.user,
    )
    .await?
    .into_iter()
    .map(|a| AppRow {
        client_id: a.client_id,
        name: a.name,
        host: a.host,
        verified: a.verified,
        scopes: a
            .scopes
            .into_iter()
            .map(|s| {
                let d = describe_in(&state.config, &s);
                (s, d)
            })
            .collect(),
        resources: a.resources,
        first_used: utc_or_dash(a.first_used),
        last_used: utc_or_dash(a.last_used),
        active: a.active_grant,
    })
    .collect();
    let page = AppsPage {
        nav: console.nav("apps"),
        apps,
        notice,
        error,
    };
    Ok(console.page(&page))
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    apps_page(
        &state,
        &console,
        done_message(q.done.as_deref(), DONE),
        None,
    )
    .await
}

pub async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    let client_id = form
        .get("client_id")
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| bad_request("Choose the app to revoke."))?;
    match data::revoke_app(
        &*state.store,
        &state.events,
        &state.config,
        &console.user,
        client_id,
        &ctx,
    )
    .await
    {
        Ok(_) => Ok(see_other("/account/apps?done=revoked")),
        Err(e) => {
            let msg = user_error(e)?;
            apps_page(
                &state,
                &console,
                None,
                Some(format!("Nothing was revoked: {msg}.")),
            )
            .await
        }
    }
}

struct SessionRow {
    current: bool,
    kind: &'static str,
    client: Option<String>,
    device: String,
    ip: String,
    started: String,
    last_seen: String,
    methods: String,
}

#[derive(Template)]
#[template(path = "console/account_sessions.html")]
struct SessionsPage {
    nav: Nav,
    sessions: Vec<SessionRow>,
    others: usize,
    notice: Option<String>,
}

pub async fn sessions(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    sessions_page(&state, &console, q.done.as_deref()).await
}

async fn sessions_page(
    state: &AppState,
    console: &Console,
    done: Option<&str>,
) -> Result<Response, PageError> {
    let list = state.store.user_sessions(&console.user.id).await?;
    let rows: Vec<SessionRow> = list
        .iter()
        .map(|s| SessionRow {
            current: s.sid == console.session.sid,
            kind: if s.client_id.is_some() {
                "App sign-in"
            } else {
                "Browser"
            },
            client: s.client_id.clone(),
            device: s
                .user_agent
                .as_deref()
                .map_or_else(|| "Unknown device".to_owned(), describe_agent),
            ip: s.ip.clone().unwrap_or_else(|| "—".into()),
            started: utc(s.created_at),
            last_seen: utc(s.last_seen_at),
            methods: s.amr.join(" + "),
        })
        .collect();
    let others = rows.iter().filter(|r| !r.current).count();
    let page = SessionsPage {
        nav: console.nav("sessions"),
        sessions: rows,
        others,
        notice: done
            .and_then(|d| d.strip_prefix("ended-"))
            .and_then(|n| n.parse::<usize>().ok())
            .map(|n| {
                format!(
                    "Signed out {n} other session{}.",
                    if n == 1 { "" } else { "s" }
                )
            }),
    };
    Ok(console.page(&page))
}

/// A short name for a browser from its user agent (the full string is in the export).
fn describe_agent(ua: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map_or("Browser", |(_, n)| n);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, n)| *n);
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_owned(),
    }
}

pub(crate) async fn end_others(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    console.form(&state, &body)?;
    let keep = Some(console.session.sid.as_str());
    let n = data::end_other_sessions(
        &*state.store,
        &state.events,
        &console.user,
        keep,
        "signed_out_by_user",
        &ctx,
    )
    .await?;
    Ok(see_other(&format!("/account/sessions?done=ended-{n}")))
}

#[cfg(test)]
mod tests {
    use super::describe_agent;

    #[test]
    fn names_common_agents() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      HeadlessChrome/131.0.0.0 Safari/537.36";
        assert_eq!(describe_agent(chrome), "Chrome on Linux");
        assert_eq!(describe_agent("curl/8.5.0"), "curl");
        assert_eq!(describe_agent("x"), "Browser");
    }
}
