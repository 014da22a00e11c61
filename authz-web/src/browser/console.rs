//! What every console page shares (`/account`, `/admin`): the signed-in user from the
//! browser session, the navigation, CSRF on every form, the admin check (403 page), and the
//! re-authentication rule for administrators' changes.
//!
//! - Not signed in: `GET` pages send the browser to `/account/login?next=<page>`; forms are
//!   refused (the session ended) with a page that says so.
//! - Every `POST` carries the form's CSRF token (HMAC of the browser's `csrf` cookie, as the
//!   login form); the cookie is `SameSite=Lax`, so a cross-site form cannot send it anyway.
//! - `/admin` needs the role `admin`; a user without it gets a 403 page. A role configured in
//!   `[mfa] required_roles` needs a session signed in with a second factor, for the admin
//!   console and for creating an API key (`Console::require_multi_factor`, the one rule).
//! - An administrator's change, and a user's change to how their account signs in or what
//!   speaks for it (passkeys, TOTP enrolment, API keys), needs a fresh re-authentication
//!   (`session::is_fresh`: within `console.reauth_secs`, 10 minutes by default, and with every
//!   factor the user has): otherwise the browser is sent to sign in again first (OWASP ASVS
//!   V3.7.1).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::web::{
    PageError, checked_form_with_lists, csrf_for_form, render, see_other, session_cookie,
    with_cookies,
};
use authz_core::identity::session;
use authz_core::protocol::form::Form;
use authz_core::state::AppState;
use authz_core::store::{Session, User};

/// The navigation and the sign-out form of the console layout (`console/base.html`).
#[derive(Debug, Clone)]
pub(crate) struct Nav {
    pub username: String,
    pub is_admin: bool,
    /// The current page's key, to mark its link (`aria-current`).
    pub active: &'static str,
    /// The CSRF token for every form on the page.
    pub csrf: String,
}

impl Nav {
    pub fn is(&self, key: &str) -> bool {
        self.active == key
    }
}

/// A signed-in user on a console page.
#[derive(Debug)]
pub struct Console {
    pub session: Session,
    pub user: User,
    csrf: String,
    /// The `csrf` cookie to set, when the browser had none.
    set_cookie: Option<HeaderValue>,
    headers: HeaderMap,
}

impl Console {
    pub fn nav(&self, active: &'static str) -> Nav {
        Nav {
            username: self.user.username.clone(),
            is_admin: self.user.is_admin(),
            active,
            csrf: self.csrf.clone(),
        }
    }

    /// A rendered page (with the `csrf` cookie when it is new).
    pub fn page<T: askama::Template>(&self, page: &T) -> Response {
        self.page_with(StatusCode::OK, page)
    }

    pub(crate) fn page_with<T: askama::Template>(&self, status: StatusCode, page: &T) -> Response {
        with_cookies(render(status, page), self.set_cookie.clone())
    }

    /// A submitted console form: readable and carrying this browser's CSRF token.
    pub fn form(&self, state: &AppState, body: &[u8]) -> Result<Form, PageError> {
        self.form_with_lists(state, body, &[])
    }

    /// [`Console::form`] for a form whose checkbox groups `lists` repeat a name (one value
    /// per ticked box, read with `Form::all`).
    pub(crate) fn form_with_lists(
        &self,
        state: &AppState,
        body: &[u8],
        lists: &[&str],
    ) -> Result<Form, PageError> {
        checked_form_with_lists(
            state,
            &self.headers,
            body,
            "This form has expired or was not sent from this site. Go back, reload the page \
             and try again.",
            lists,
        )
    }

    /// Is this session a fresh sign-in with every factor the user has
    /// (`session::is_fresh`, the one re-authentication rule)?
    pub(crate) async fn is_recent(&self, state: &AppState) -> Result<bool, PageError> {
        Ok(session::is_fresh(
            &*state.store,
            &state.config.console,
            state.now(),
            &self.session,
            &self.user,
        )
        .await?)
    }

    /// A change that needs a fresh re-authentication (`is_recent`): otherwise the browser is
    /// sent to sign in again and come back to `back` (a console page), and nothing changes.
    pub(crate) async fn require_recent(
        &self,
        state: &AppState,
        back: &str,
    ) -> Result<(), PageError> {
        if self.is_recent(state).await? {
            return Ok(());
        }
        Err(PageError::Response(Box::new(see_other(&reauth_url(back)))))
    }
}

impl Console {
    /// The console's one multi-factor rule: a user holding a role of `[mfa] required_roles`
    /// acts only from a session signed in with a second factor (RFC 8176 `otp`, or `mfa`: a
    /// passkey). Otherwise a 403 page that says what to do: sign in again with the second
    /// factor and come back to `back` (a console page), or set one up first. `doing` names
    /// what needs it ("The admin console", "Creating an API key").
    pub(crate) async fn require_multi_factor(
        &self,
        state: &AppState,
        back: &str,
        doing: &str,
    ) -> Result<(), PageError> {
        if !state.config.mfa.required_for(&self.user.roles) || self.session.is_multi_factor() {
            return Ok(());
        }
        let has_second = authz_core::identity::two_factor::is_enabled(&*state.store, &self.user)
            .await?
            || !state.store.user_passkeys(&self.user.id).await?.is_empty();
        let page = if has_second {
            ConsoleMessage {
                nav: self.nav("forbidden"),
                title: "Sign in with your second factor".into(),
                message: format!(
                    "{doing} needs a sign-in with your second factor (your authenticator app \
                     or a passkey) as well as your password. Sign in again to continue."
                ),
                link: Some((reauth_url(back), "Sign in again".into())),
            }
        } else {
            ConsoleMessage {
                nav: self.nav("forbidden"),
                title: "Set up two-factor sign-in".into(),
                message: format!(
                    "{doing} needs a sign-in with a second factor, and your account has none \
                     yet. Set up an authenticator app on your account page, then sign in again."
                ),
                link: Some((
                    "/account/two-factor".into(),
                    "Set up two-factor sign-in".into(),
                )),
            }
        };
        Err(PageError::Response(Box::new(
            self.page_with(StatusCode::FORBIDDEN, &page),
        )))
    }
}

/// Where to sign in again before a change, and come back to `back`.
pub(crate) fn reauth_url(back: &str) -> String {
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    format!("/account/login?reauth=1&next={next}")
}

/// Why the sign-in form asks again, in the words of where the browser goes back to (`next`,
/// already made safe): the admin console, the account page, or anything else.
pub(crate) fn reauth_reason(next: &str) -> String {
    let what = if next == "/admin" || next.starts_with("/admin/") || next.starts_with("/admin?") {
        "to make changes in the admin console"
    } else if next.starts_with("/account") {
        "before this change to your account"
    } else {
        "to continue"
    };
    format!("Confirm it is you: sign in again {what}.")
}

fn login_redirect(parts: &Parts) -> Response {
    let path = parts
        .uri
        .path_and_query()
        .map_or("/account", |p| p.as_str());
    let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
    see_other(&format!("/account/login?next={next}"))
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let current = session::current(
            &*state.store,
            &state.config.browser,
            state.now(),
            session_cookie(state, &parts.headers),
        )
        .await
        .map_err(|e| PageError::from(e).into_response())?;
        let user = match &current {
            Some(s) => state
                .store
                .get_user(&s.user_id)
                .await
                .map_err(|e| PageError::from(e).into_response())?
                .filter(User::is_enabled),
            None => None,
        };
        let (Some(session), Some(user)) = (current, user) else {
            if parts.method == Method::GET {
                return Err(login_redirect(parts));
            }
            return Err(PageError::page(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended, so nothing was changed. Sign in again and retry.",
            )
            .into_response());
        };
        let (csrf, set_cookie) = csrf_for_form(state, &parts.headers);
        Ok(Console {
            session,
            user,
            csrf,
            set_cookie,
            headers: parts.headers.clone(),
        })
    }
}

/// A message inside the console layout (the 403 page of `/admin`, say).
#[derive(Debug, askama::Template)]
#[template(path = "console/message.html")]
pub(crate) struct ConsoleMessage {
    pub nav: Nav,
    pub title: String,
    pub message: String,
    pub link: Option<(String, String)>,
}

/// A signed-in administrator on an `/admin` page.
#[derive(Debug)]
pub struct Admin(pub Console);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let console = Console::from_request_parts(parts, state).await?;
        if !console.user.is_admin() {
            let page = ConsoleMessage {
                nav: console.nav("forbidden"),
                title: "Administrators only".into(),
                message: "The admin console is for accounts with the admin role. Your account \
                          page has everything about your own account."
                    .into(),
                link: Some(("/account".into(), "Go to your account".into())),
            };
            return Err(console.page_with(StatusCode::FORBIDDEN, &page));
        }
        console
            .require_multi_factor(state, "/admin", "The admin console")
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Admin(console))
    }
}

/// A change the console refused because of what was asked (a rule of `account::*`): its
/// status and the words for the page. Anything else is the server's failure (a 500 page).
pub(crate) fn user_mistake(e: crate::error::Error) -> Result<(StatusCode, String), PageError> {
    use crate::error::Error;
    let status = match &e {
        Error::Invalid(_) | Error::OAuth { .. } => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        _ => return Err(e.into()),
    };
    let text = match e {
        Error::OAuth { description, .. } => description.into_owned(),
        Error::Invalid(m) => m,
        other => other.to_string(),
    };
    Ok((status, text))
}

/// Turn a fixed message key from a `?done=` query into its text (never the query's own
/// words on the page, so a link cannot make this site say something).
pub(crate) fn done_message(
    done: Option<&str>,
    table: &[(&str, &'static str)],
) -> Option<&'static str> {
    let d = done?;
    table.iter().find(|(k, _)| *k == d).map(|(_, m)| *m)
}
