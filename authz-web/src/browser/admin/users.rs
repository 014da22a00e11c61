//! `/admin/users`: search, create, and per user (`user_actions`, routed in `admin::router`): disable/enable, set roles,
//! reset the password (a temporary one, shown once, to be changed at the next sign-in), reset
//! two-factor, end all sessions; each user's own page (`user_page`) lists their passkeys. The rules and the audit records are `identity::admin`'s,
//! `identity::two_factor`'s and `identity::session`'s; these modules read forms and show
//! results.
//!
//! An administrator cannot disable themself or take away their own `admin` role, and changes
//! their own password, two-factor and sessions on their account page, so no one locks the
//! console's last door from inside by accident.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use shared::secret::Password;

use super::format::{segment, utc_minute};
use super::{Notice, SecretView, change_form, refused};
use crate::browser::console::{Admin, Console, Nav};
use crate::browser::web::{PageError, see_other};
use authz_core::identity::admin::{self, Policy};
use authz_core::identity::two_factor;
use authz_core::protocol::form::Form;
use authz_core::state::AppState;
use authz_core::store::User;

/// At most this many users are listed; a search narrows them down.
const MAX_SHOWN: usize = 200;

const DONE: &[(&str, &str)] = &[
    ("created", "The user was created."),
    (
        "disabled",
        "The user was disabled: their sessions ended, their passkeys were removed, and their \
         refresh tokens and API keys stopped working.",
    ),
    ("enabled", "The user was enabled again."),
    ("roles", "The user's roles were saved."),
    (
        "two-factor-reset",
        "Two-factor sign-in was turned off for the user and their passkeys were removed: \
         they sign in with the password and can set both up again.",
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .merge(super::user_page::routes())
}

/// A configured role as a checkbox (`name="role-<role>"`).
#[derive(Debug, Clone)]
struct RoleBox {
    name: String,
    checked: bool,
}

#[derive(Debug, Clone)]
struct UserRow {
    id: String,
    /// `id` as a path segment (for the forms' actions).
    seg: String,
    username: String,
    email: String,
    roles: String,
    role_boxes: Vec<RoleBox>,
    enabled: bool,
    two_factor: bool,
    passkeys: usize,
    created: String,
    /// The signed-in administrator's own row.
    is_self: bool,
}

#[derive(Debug, Template)]
#[template(path = "console/admin_users.html")]
struct UsersPage {
    nav: Nav,
    notice: Option<Notice>,
    secret: Option<SecretView>,
    q: String,
    rows: Vec<UserRow>,
    /// How many users match the search (more than `rows` when cut at [`MAX_SHOWN`]).
    matched: usize,
    new_username: String,
    new_roles: Vec<RoleBox>,
    min_length: usize,
}

/// What to show besides the list.
#[derive(Debug, Default)]
pub(super) struct View {
    pub q: String,
    pub notice: Option<Notice>,
    pub secret: Option<SecretView>,
    /// The create form's values after a refusal.
    pub new_username: String,
    pub new_roles: Option<Vec<String>>,
}

fn boxes(state: &AppState, checked: &[String]) -> Vec<RoleBox> {
    state
        .config
        .roles
        .keys()
        .map(|r| RoleBox {
            name: r.clone(),
            checked: checked.contains(r),
        })
        .collect()
}

/// Does `user` match the search `q` (a substring of the username or email, any case)?
fn matches(user: &User, q: &str) -> bool {
    let q = q.to_lowercase();
    q.is_empty()
        || user.username.to_lowercase().contains(&q)
        || user
            .email
            .as_deref()
            .is_some_and(|e| e.to_lowercase().contains(&q))
}

pub(super) async fn render(
    state: &AppState,
    console: &Console,
    view: View,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut users = state.store.list_users().await?;
    users.retain(|u| matches(u, view.q.trim()));
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let matched = users.len();
    users.truncate(MAX_SHOWN);
    let mut rows = Vec::with_capacity(users.len());
    for u in users {
        rows.push(UserRow {
            seg: segment(&u.id),
            two_factor: two_factor::is_enabled(&*state.store, &u).await?,
            passkeys: state.store.user_passkeys(&u.id).await?.len(),
            email: u.email.clone().unwrap_or_default(),
            roles: u.roles.join(", "),
            role_boxes: boxes(state, &u.roles),
            enabled: u.is_enabled(),
            created: utc_minute(u.created_at),
            is_self: u.id == console.user.id,
            id: u.id,
            username: u.username,
        });
    }
    let new_roles = view.new_roles.unwrap_or_else(|| vec!["user".to_owned()]);
    let page = UsersPage {
        nav: console.nav("users"),
        notice: view.notice,
        secret: view.secret,
        q: view.q,
        rows,
        matched,
        new_username: view.new_username,
        new_roles: boxes(state, &new_roles),
        min_length: state.config.password_policy.min_length,
    };
    Ok(console.page_with(status, &page))
}

async fn list(
    State(state): State<AppState>,
    Admin(console): Admin,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = query.map(|Query(p)| p).unwrap_or_default();
    let q: String = params
        .get("q")
        .map_or("", |q| q.trim())
        .chars()
        .take(100)
        .collect();
    let mut notice = Notice::done(params.get("done").map(String::as_str), DONE);
    if params.get("done").map(String::as_str) == Some("sessions-ended") {
        let n = params.get("count").and_then(|c| c.parse::<u64>().ok());
        notice = n.map(|n| Notice::ok(format!("Ended {n} session(s) of the user.")));
    }
    let view = View {
        q,
        notice,
        ..View::default()
    };
    render(&state, &console, view, StatusCode::OK).await
}

/// The roles ticked in a form (`role-<name>` for each configured role).
pub(super) fn ticked_roles(state: &AppState, form: &Form) -> Vec<String> {
    state
        .config
        .roles
        .keys()
        .filter(|r| form.get(&format!("role-{r}")).is_some())
        .cloned()
        .collect()
}

/// The search to return to after a change (the forms carry it as `q`).
pub(super) fn search_of(form: &Form) -> String {
    form.get("q").unwrap_or("").chars().take(100).collect()
}

/// `/admin/users` with the search and a `done` key (and more query pairs).
pub(super) fn back_to(q: &str, done: &str, more: &[(&str, &str)]) -> Response {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    s.append_pair("done", done);
    for (k, v) in more {
        s.append_pair(k, v);
    }
    see_other(&format!("/admin/users?{}", s.finish()))
}

async fn create(
    State(state): State<AppState>,
    Admin(console): Admin,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = change_form(&state, &console, &body, "/admin/users").await?;
    let username = form.get("username").unwrap_or("").trim().to_owned();
    let password = Password::new(form.get("password").unwrap_or(""));
    let roles = ticked_roles(&state, &form);
    let actor = &console.user.username;
    match admin::add_user(
        state.identity(),
        actor,
        &username,
        &password,
        roles.clone(),
        Policy::Enforce,
    )
    .await
    {
        Ok(_) => Ok(back_to("", "created", &[])),
        Err(e) => {
            let (status, notice) = refused(e)?;
            let view = View {
                notice: Some(notice),
                new_username: username.chars().take(64).collect(),
                new_roles: Some(roles),
                ..View::default()
            };
            render(&state, &console, view, status).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(username: &str, email: Option<&str>) -> User {
        User {
            id: "usr_1".into(),
            username: username.into(),
            password_hash: String::new(),
            roles: vec!["user".into()],
            email: email.map(str::to_owned),
            display_name: None,
            disabled_at: None,
            credentials_changed_at: None,
            password_change_required: false,
            factors_epoch: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn search_matches_username_or_email_in_any_case() {
        let u = user("Alice.Smith", Some("alice@Example.org"));
        assert!(matches(&u, ""));
        assert!(matches(&u, "alice"));
        assert!(matches(&u, "SMITH"));
        assert!(matches(&u, "example.ORG"));
        assert!(!matches(&u, "bob"));
        assert!(!matches(&user("bob", None), "example"));
    }
}
