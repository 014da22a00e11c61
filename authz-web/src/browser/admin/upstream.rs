//! `GET /admin/upstream`: the upstream identity providers (federation) — each one's kind,
//! issuer, the redirect URI to register there, whether its metadata can be fetched now (the
//! last error in our words), and how many users it has linked (`federation::report`).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::format::utc_minute_or_dash;
use crate::browser::console::{Admin, Nav};
use crate::browser::web::PageError;
use authz_core::federation::ProviderReport;
use authz_core::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/upstream", get(page))
}

#[derive(Template)]
#[template(path = "console/admin_upstream.html")]
struct UpstreamPage {
    nav: Nav,
    providers: Vec<(ProviderReport, String, String)>,
}

async fn page(State(state): State<AppState>, Admin(console): Admin) -> Result<Response, PageError> {
    let providers = authz_core::federation::report(state.federation(), state.now())
        .await?
        .into_iter()
        .map(|r| {
            let (ok, failed) = (
                utc_minute_or_dash(r.last_ok_at),
                utc_minute_or_dash(r.last_error_at),
            );
            (r, ok, failed)
        })
        .collect();
    let page = UpstreamPage {
        nav: console.nav("upstream"),
        providers,
    };
    Ok(console.page(&page))
}
