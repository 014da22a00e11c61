//! `/account/data`: download everything stored about you (JSON), and delete your account
//! (password and, with two-factor on, a code; administrators may forbid it by config).

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::console::{Console, Nav};
use super::super::web::{PageError, clear_session_cookie, with_cookies};
use super::confirm_identity;
use crate::context::Ctx;
use authz_core::identity::data;
use authz_core::state::AppState;

#[derive(Template)]
#[template(path = "console/account_data.html")]
struct DataPage {
    nav: Nav,
    deletion_allowed: bool,
    two_factor: bool,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    console: &Console,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let page = DataPage {
        nav: console.nav("data"),
        deletion_allowed: state.config.console.account_deletion,
        two_factor: authz_core::identity::two_factor::is_enabled(&*state.store, &console.user)
            .await?,
        error,
    };
    Ok(console.page_with(status, &page))
}

pub async fn show(State(state): State<AppState>, console: Console) -> Result<Response, PageError> {
    page(&state, &console, StatusCode::OK, None).await
}

/// `GET /account/data/export.json`: a download (`Content-Disposition: attachment`).
pub async fn export(
    State(state): State<AppState>,
    console: Console,
) -> Result<Response, PageError> {
    let json = data::export(
        &*state.store,
        &state.events,
        &state.config.issuer,
        &console.user,
    )
    .await?;
    let body = serde_json::to_string_pretty(&json).map_err(crate::error::Error::internal)?;
    let name = format!(
        "attachment; filename=\"authz-data-{}.json\"",
        console
            .user
            .username
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .collect::<String>()
    );
    let mut r = (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&name) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// `POST /account/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    if !state.config.console.account_deletion {
        let msg =
            "Deleting accounts here is turned off on this server: ask an administrator.".to_owned();
        return page(&state, &console, StatusCode::FORBIDDEN, Some(msg)).await;
    }
    if form.get("confirm") != Some("delete") {
        let msg = "Tick the box to confirm that the account should be deleted.".to_owned();
        return page(&state, &console, StatusCode::BAD_REQUEST, Some(msg)).await;
    }
    if let Err(msg) = confirm_identity(&state, &console, &form, &ctx, true).await? {
        return page(&state, &console, StatusCode::BAD_REQUEST, Some(msg)).await;
    }
    data::delete_account(
        &*state.store,
        &state.clients,
        &state.events,
        &console.user,
        &ctx,
    )
    .await?;
    let done = super::super::pages::MessagePage {
        title: "Account deleted".into(),
        message: "Your account and everything stored with it were deleted, and you were \
                  signed out everywhere."
            .into(),
        link: None,
    };
    Ok(with_cookies(
        super::super::web::render(StatusCode::OK, &done),
        [clear_session_cookie(&state)],
    ))
}
