//! `/account`: every signed-in user's own account — profile and password, connected apps,
//! sessions, API keys, two-factor sign-in, linked upstream accounts, and their data (export, deletion). Thin handlers
//! over `authz_core::identity` (and `clients::api_keys`); every form is CSRF-checked
//! (`console::Console::form`) and answered with a page or a 303 back to its page.

mod apps;
mod data;
mod identities;
mod keys;
mod profile;
mod two_factor;

pub(crate) use identities::PAGE as IDENTITIES;
pub use profile::Done;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};

use super::console::Console;
use super::web::PageError;
use crate::error::Error;
use authz_core::events::audit::RequestContext;
use authz_core::identity::signin::{self, LoginFailure};
use authz_core::protocol::form::Form;
use authz_core::state::AppState;
use shared::secret::Password;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(profile::show))
        .route("/account/password", post(profile::change_password))
        .route("/account/apps", get(apps::show))
        .route("/account/apps/revoke", post(apps::revoke))
        .route("/account/sessions", get(apps::sessions))
        .route("/account/sessions/others", post(apps::end_others))
        .route("/account/api-keys", get(keys::show).post(keys::create))
        .route("/account/api-keys/{id}/revoke", post(keys::revoke))
        .route("/account/two-factor", get(two_factor::show))
        .route("/account/two-factor/begin", post(two_factor::begin))
        .route("/account/two-factor/confirm", post(two_factor::confirm))
        .route(
            "/account/two-factor/recovery-codes",
            post(two_factor::new_codes),
        )
        .route("/account/two-factor/disable", post(two_factor::disable))
        .route("/account/identities", get(identities::show))
        .route("/account/identities/link", post(identities::link))
        .route("/account/identities/unlink", post(identities::unlink))
        .route("/account/data", get(data::show))
        .route("/account/data/export.json", get(data::export))
        .route("/account/delete", post(data::delete))
}

/// Check the password typed into a sensitive form (and, with two-factor on, the code),
/// counted toward the same per-username lockout as a sign-in. `Ok(Err(..))` carries the
/// message for the page.
async fn confirm_identity(
    state: &AppState,
    console: &Console,
    form: &Form,
    ctx: &RequestContext,
    with_code: bool,
) -> Result<Result<(), String>, PageError> {
    let password = Password::new(form.get("password").unwrap_or_default());
    if password.expose().is_empty() {
        return Ok(Err("Enter your password.".into()));
    }
    let user = &console.user;
    let via = "console_confirm";
    match signin::reauthenticate(state.identity(), user, &password, "console", via, ctx).await? {
        // The password of this account, not of whoever else the name found (a directory
        // entry of that name linked to another account: issue 26 LDAP review 2 N9).
        Ok(found) if found.id == user.id => {}
        Ok(_) | Err(LoginFailure::Invalid) => {
            return Ok(Err("The password is incorrect.".into()));
        }
        Err(LoginFailure::Locked { .. }) => {
            return Ok(Err("Too many failed attempts: try again later.".to_owned()));
        }
        Err(LoginFailure::Refused { message }) => return Ok(Err(message.to_owned())),
    }
    if with_code && authz_core::identity::two_factor::is_enabled(&*state.store, user).await? {
        let code = form.get("code").unwrap_or_default().trim();
        match signin::second_factor(state.identity(), user, code, "console", ctx).await? {
            Ok(_) => {}
            Err(LoginFailure::Invalid) => {
                return Ok(Err(
                    "The authentication code is not valid: enter the current one.".to_owned(),
                ));
            }
            Err(LoginFailure::Locked { .. }) => {
                return Ok(Err("Too many failed attempts: try again later.".to_owned()));
            }
            Err(LoginFailure::Refused { message }) => return Ok(Err(message.to_owned())),
        }
    }
    Ok(Ok(()))
}

/// A user's mistake from the account logic as a message for the page; anything else is the
/// server's failure.
fn user_error(e: Error) -> Result<String, PageError> {
    super::console::user_mistake(e).map(|(_, text)| text)
}

fn bad_request(msg: &str) -> PageError {
    PageError::page(StatusCode::BAD_REQUEST, "Invalid request", msg)
}
