//! `GET /account` (profile) and `POST /account/password` (change password: the current one
//! required — and the current code when two-factor is on — the policy enforced; every session
//! and refresh token ends, this browser gets a new session, and the change is audited and
//! signalled). A box offers to remove the user's passkeys in the same transaction.
//!
//! The new session says what this form proved, now: the password (RFC 8176 `pwd`) and, with
//! two-factor on, the code (`otp`) — never a factor of the old session that was not given
//! again (issue 24 item 6). It is a sign-in as fresh as the re-authentication it equals, and
//! its `auth_time` is after the credential change, as every grant made with the new password
//! must be (`User::credentials_current_at`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use serde::Deserialize;
use shared::secret::Password;

use super::super::console::{Console, Nav, done_message};
use super::super::web::{PageError, see_other, set_session_cookie, with_cookies};
use super::{confirm_identity, user_error};
use crate::console::time::utc;
use crate::context::Ctx;
use authz_core::identity::admin::{PasswordChange, change_password as set_new_password};
use authz_core::identity::session::{self, SignedIn};
use authz_core::state::AppState;
use authz_core::store::User;

#[derive(Template)]
#[template(path = "console/account_profile.html")]
struct ProfilePage {
    nav: Nav,
    username: String,
    /// The name a provider or the directory asserts.
    name: Option<String>,
    email: Option<String>,
    roles: Vec<String>,
    created: String,
    two_factor: bool,
    /// How many passkeys the user has (the password form offers to remove them).
    passkeys: usize,
    /// Linked upstream identities (removed with the passkeys when the box is ticked).
    links: usize,
    min_length: usize,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

const DONE: &[(&str, &str)] = &[
    (
        "password",
        "Your password was changed. Every other session and app sign-in has ended.",
    ),
    (
        "password-passkeys",
        "Your password was changed and your passkeys were removed. Every other session and \
         app sign-in has ended.",
    ),
];

async fn page(
    state: &AppState,
    console: &Console,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let u = &console.user;
    let page = ProfilePage {
        nav: console.nav("profile"),
        username: u.username.clone(),
        name: u.display_name.clone(),
        email: u.email.clone(),
        roles: u.roles.clone(),
        created: utc(u.created_at),
        two_factor: authz_core::identity::two_factor::is_enabled(&*state.store, u).await?,
        passkeys: state.store.user_passkeys(&u.id).await?.len(),
        links: state.store.federated_identities_of(&u.id).await?.len(),
        min_length: state.config.password_policy.min_length,
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
    page(
        &state,
        &console,
        done_message(q.done.as_deref(), DONE),
        None,
    )
    .await
}

pub async fn change_password(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    let with_code =
        authz_core::identity::two_factor::is_enabled(&*state.store, &console.user).await?;
    if let Err(msg) = confirm_identity(&state, &console, &form, &ctx, with_code).await? {
        return page(&state, &console, None, Some(msg)).await;
    }
    let new = Password::new(form.get("new_password").unwrap_or_default());
    if form.get("confirm") != Some(new.expose()) {
        let msg = "The two new passwords are not the same.".to_owned();
        return page(&state, &console, None, Some(msg)).await;
    }
    let user = &console.user;
    // The box "also remove my passkeys" (and linked accounts): gone in the same transaction
    // as the password.
    let (kind, done) = if form.get("remove_passkeys").is_some() {
        (PasswordChange::ByUserRemovingPasskeys, "password-passkeys")
    } else {
        (PasswordChange::ByUser, "password")
    };
    let hash = match set_new_password(state.identity(), &user.username, user, &new, kind).await {
        Ok(r) => r.password_hash.unwrap_or_default(),
        Err(e) => {
            let msg = format!("That password cannot be used: {}.", user_error(e)?);
            return page(&state, &console, None, Some(msg)).await;
        }
    };
    // Every session ended with the old password; this browser continues in a new one, signed
    // in with what this form proved.
    let amr: &[&str] = if with_code { &["pwd", "otp"] } else { &["pwd"] };
    let how = SignedIn {
        amr,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    };
    // Stamped with the new password: a reset or disabling committed since leaves no session.
    let changed = User {
        password_hash: hash,
        password_change_required: false,
        ..user.clone()
    };
    let Some((_, cookie)) = session::start(
        &*state.store,
        &state.config,
        &state.events,
        &changed,
        how,
        &ctx,
    )
    .await?
    else {
        return Ok(see_other("/account/login?next=%2Faccount"));
    };
    Ok(with_cookies(
        see_other(&format!("/account?done={done}")),
        [set_session_cookie(&state, &cookie)],
    ))
}
