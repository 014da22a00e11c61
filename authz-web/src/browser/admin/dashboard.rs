//! `GET /admin`: the dashboard — the last 24 hours' security summary as stat tiles and
//! server-rendered SVG charts, each with its numbers as a table (`console::dashboard`).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::format::utc_minute;
use crate::browser::console::{Admin, Nav};
use crate::browser::web::PageError;
use crate::console::dashboard::{self, Dashboard};
use authz_core::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin", get(page))
}

#[derive(Debug, Template)]
#[template(path = "console/admin_dashboard.html")]
struct DashboardPage {
    nav: Nav,
    since: String,
    now: String,
    d: Dashboard,
}

async fn page(State(state): State<AppState>, Admin(console): Admin) -> Result<Response, PageError> {
    state.audit_log.flush().await;
    let d = dashboard::build(&*state.store, state.now()).await?;
    let page = DashboardPage {
        nav: console.nav("dashboard"),
        since: utc_minute(d.since),
        now: utc_minute(d.now),
        d,
    };
    Ok(console.page(&page))
}
