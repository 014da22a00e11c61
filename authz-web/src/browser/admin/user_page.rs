//! `/admin/users/{id}`: one user's page — who they are and how they sign in, with their
//! passkeys (name, added, last used) and a remove action for each
//! (`POST /admin/users/{id}/passkeys/{credential}/remove`: CSRF, a fresh re-authentication,
//! audited `passkey.removed` with the administrator as actor). An administrator can so see and
//! end a passkey someone planted while holding the account (issue 24); and their linked
//! upstream identities with an unlink action (issue 26).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::format::{segment, utc_minute, utc_minute_or_dash};
use super::{Notice, change_form, refused};
use crate::browser::account::Done;
use crate::browser::console::{Admin, Console, Nav};
use crate::browser::web::{PageError, see_other};
use crate::context::Ctx;
use authz_core::federation::links::{self, Remover};
use authz_core::identity::{passkeys, two_factor};
use authz_core::state::AppState;
use authz_core::store::User;

const DONE: &[(&str, &str)] = &[
    ("passkey-removed", "The passkey was removed."),
    (
        "identity-unlinked",
        "The linked account was removed; the sessions it signed in have ended.",
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users/{id}", get(show))
        .route(
            "/admin/users/{id}/passkeys/{credential}/remove",
            post(remove),
        )
        .route("/admin/users/{id}/identities/unlink", post(unlink))
}

struct PasskeyRow {
    /// The credential id as a path segment (for the form's action).
    seg: String,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/admin_user.html")]
struct UserPage {
    nav: Nav,
    notice: Option<Notice>,
    username: String,
    /// The user's id as a path segment.
    seg: String,
    email: String,
    /// The name a provider or the directory asserts ("—" when none).
    name: String,
    roles: String,
    enabled: bool,
    two_factor: bool,
    created: String,
    passkeys: Vec<PasskeyRow>,
    /// Linked upstream identities: (provider, subject, email, last used).
    identities: Vec<(String, String, String, String)>,
}

/// The user `id`, or a 404 page.
async fn user_of(state: &AppState, id: &str) -> Result<User, PageError> {
    state.store.get_user(id).await?.ok_or_else(|| {
        PageError::page(
            StatusCode::NOT_FOUND,
            "Not found",
            "That user does not exist any more.",
        )
    })
}

async fn render(
    state: &AppState,
    console: &Console,
    user: &User,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let passkeys = state
        .store
        .user_passkeys(&user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            seg: segment(&p.credential_id),
            name: p.name,
            created: utc_minute(p.created_at),
            last_used: utc_minute_or_dash(p.last_used_at),
        })
        .collect();
    let identities = state
        .store
        .federated_identities_of(&user.id)
        .await?
        .into_iter()
        .map(|l| {
            let email = l.email.unwrap_or_else(|| "—".into());
            (
                l.provider,
                l.subject,
                email,
                utc_minute_or_dash(l.last_login_at),
            )
        })
        .collect();
    let page = UserPage {
        nav: console.nav("users"),
        notice,
        username: user.username.clone(),
        seg: segment(&user.id),
        email: user.email.clone().unwrap_or_default(),
        name: user.display_name.clone().unwrap_or_else(|| "—".into()),
        roles: user.roles.join(", "),
        enabled: user.is_enabled(),
        two_factor: two_factor::is_enabled(&*state.store, user).await?,
        created: utc_minute(user.created_at),
        passkeys,
        identities,
    };
    Ok(console.page_with(status, &page))
}

async fn show(
    State(state): State<AppState>,
    Admin(console): Admin,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    let user = user_of(&state, &id).await?;
    let notice = Notice::done(q.done.as_deref(), DONE);
    render(&state, &console, &user, notice, StatusCode::OK).await
}

async fn remove(
    State(state): State<AppState>,
    Admin(console): Admin,
    Path((id, credential)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let back = format!("/admin/users/{}", segment(&id));
    change_form(&state, &console, &body, &back).await?;
    let user = user_of(&state, &id).await?;
    // Every session of the user ends with it (the administrator's own, when it is theirs,
    // stays: it is the one making the change).
    let own = console.user.id == user.id;
    let keep = own.then_some(console.session.sid.as_str());
    match passkeys::remove(
        state.identity(),
        &console.user.username,
        &user,
        &credential,
        keep,
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!("{back}?done=passkey-removed"))),
        Err(e) => {
            let (status, notice) = refused(e)?;
            render(&state, &console, &user, Some(notice), status).await
        }
    }
}

/// `POST /admin/users/{id}/identities/unlink`: remove a linked upstream identity (audited;
/// the sessions signed in through a provider end: `federation::links`).
async fn unlink(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Admin(console): Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let back = format!("/admin/users/{}", segment(&id));
    let form = change_form(&state, &console, &body, &back).await?;
    let user = user_of(&state, &id).await?;
    let (provider, subject) = (
        form.get("provider").unwrap_or_default(),
        form.get("subject").unwrap_or_default(),
    );
    let by = Remover::Admin {
        actor: &console.user.username,
    };
    match links::unlink(state.federation(), &user, provider, subject, by, &ctx).await? {
        Ok(true) => Ok(see_other(&format!("{back}?done=identity-unlinked"))),
        _ => {
            let notice = Notice::error("That linked account does not exist any more.");
            render(&state, &console, &user, Some(notice), StatusCode::NOT_FOUND).await
        }
    }
}
