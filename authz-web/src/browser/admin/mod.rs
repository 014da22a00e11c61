//! `/admin`: the admin console (role `admin`, issue 17). The dashboard, the audit log (with
//! CSV export), users, clients and signing keys.
//!
//! - Every page needs the `Admin` extractor: a signed-in user with the role `admin` (others
//!   get a 403 page).
//! - Every change is a `POST` form: its CSRF token is checked, the sign-in must be a fresh
//!   re-authentication (`session::is_fresh`: `console.reauth_secs`, every factor), and the change goes through `identity::admin` (or
//!   `identity::two_factor`, `identity::session`), which validates and audits it with the
//!   administrator's username as actor. Then the browser is sent back to the page with
//!   `?done=<key>` (fixed texts, never the query's words), except when a secret must be shown
//!   once: then the page is rendered at once with it.
//! - A refused change (invalid input, a conflict, something gone) is the page again with the
//!   reason in a `.notice-error` and a 4xx status; only server failures are the 500 page.

mod audit;
mod audit_filter;
mod client_form;
mod clients;
mod dashboard;
mod format;
mod keys;
mod upstream;
mod user_actions;
mod user_page;
mod users;

use axum::Router;
use axum::http::StatusCode;

use super::console::{Console, done_message};
use super::web::PageError;
use crate::error::Error;
use authz_core::protocol::form::Form;
use authz_core::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(dashboard::routes())
        .merge(audit::routes())
        .merge(users::routes())
        .route(
            "/admin/users/{id}/{action}",
            axum::routing::post(user_actions::act),
        )
        .merge(clients::routes())
        .merge(keys::routes())
        .merge(upstream::routes())
}

/// A message at the top of a page: what a change did, or why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub ok: bool,
    pub text: String,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
        }
    }

    /// The notice for a `?done=` key, from the page's table of fixed texts.
    pub fn done(done: Option<&str>, table: &[(&str, &'static str)]) -> Option<Self> {
        done_message(done, table).map(Self::ok)
    }
}

/// A secret shown once, right after it was made (`.secret-once`).
#[derive(Debug, Clone)]
pub(crate) struct SecretView {
    pub heading: String,
    pub note: String,
    pub items: Vec<SecretItem>,
}

/// One value of a [`SecretView`]; `name` is its `data-name` (e.g. `client_secret`).
#[derive(Debug, Clone)]
pub(crate) struct SecretItem {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
}

/// The form of an administrator's change: from this browser (CSRF), by a fresh
/// re-authentication (`Console::require_recent`; or the browser is sent to sign in again and
/// come back to `back`).
pub(crate) async fn change_form(
    state: &AppState,
    console: &Console,
    body: &[u8],
    back: &str,
) -> Result<Form, PageError> {
    let form = console.form(state, body)?;
    console.require_recent(state, back).await?;
    Ok(form)
}

/// Why a change was refused, to show on the page with its status; a failure of the server's
/// side stays an error (the 500 page).
pub fn refused(e: Error) -> Result<(StatusCode, Notice), PageError> {
    let (status, text) = crate::browser::console::user_mistake(e)?;
    Ok((status, Notice::error(sentence(&text))))
}

/// `text` as a sentence: a capital first letter and a full stop.
pub(crate) fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?', ')']) {
        out.push('.');
    }
    out
}

/// A 400 page for a form field that is missing or unusable.
pub(crate) fn bad_form(message: &str) -> PageError {
    PageError::page(StatusCode::BAD_REQUEST, "Invalid form", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_become_notices() {
        let (status, n) = refused(Error::Invalid("give at least one role".into())).expect("shown");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(n, Notice::error("Give at least one role."));
        let (status, n) = refused(Error::Conflict("user \"bob\"".into())).expect("shown");
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(n.text, "User \"bob\" already exists.");
        let (status, n) = refused(Error::NotFound("client \"x\"".into())).expect("shown");
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(n.text, "Client \"x\" not found.");
        let (status, n) = refused(Error::invalid_request("too many (5)")).expect("shown");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(n.text, "Too many (5)");
        assert!(matches!(
            refused(Error::internal("disk on fire")),
            Err(PageError::Server(_))
        ));
        assert_eq!(sentence(""), "");
        assert_eq!(sentence(" élan "), "Élan.");
        assert_eq!(
            Notice::done(Some("saved"), &[("saved", "Saved.")]),
            Some(Notice::ok("Saved."))
        );
        assert_eq!(Notice::done(Some("<b>"), &[("saved", "Saved.")]), None);
        assert_eq!(Notice::done(None, &[("saved", "Saved.")]), None);
    }
}
