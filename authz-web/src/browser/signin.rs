//! Signing in through the browser, for an authorization request or for the console:
//! `POST /login` (the password), `POST /login/code` (the second factor), `POST /login/password`
//! (a new password after an administrator's reset), and `GET /account/login` (the form for
//! the console). A sign-in is one pass through these steps:
//!
//! 1. the password (`identity::signin::authenticate`, throttled per username) — or a passkey
//!    (`passkeys`);
//! 2. with two-factor on, a TOTP or recovery code (`identity::signin::second_factor`: the same
//!    per-username lockout; a code is never accepted twice), or a passkey;
//! 3. after an administrator's reset, a new password (policy enforced), chosen only in a
//!    sign-in that gave the temporary password: a passkey alone is sent to the password form;
//! 4. a new session (never the old one: no fixation) whose `amr` says what was done
//!    (RFC 8176 `pwd`, `otp`, `hwk`, `mfa`), then on to the authorization request or the
//!    console page.
//!
//! Between steps the sign-in is kept server-side (`pending`): the browser holds a random
//! handle, each step spends it and gets a new one, and it ends with the credentials it was
//! issued under (a reset, disabling, a two-factor reset).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use shared::secret::Password;

use super::pages::{LoginPage, MessagePage, NewPasswordPage, SignInCodePage};
use super::pending;
pub(super) use super::pending::Pending;
use super::web::{
    PageError, checked_form, csrf_for_form, render, see_other, session_cookie, set_session_cookie,
    with_cookies,
};
use crate::context::Ctx;
use authz_core::events::audit::RequestContext;
use authz_core::identity::admin::{PasswordChange, change_password};
use authz_core::identity::session::{self, SignedIn};
use authz_core::identity::signin::{self, LoginFailure};
use authz_core::identity::two_factor;
use authz_core::protocol::authorize::{self, AuthorizeRequest};
use authz_core::protocol::form::Form;
use authz_core::state::AppState;
use authz_core::store::User;

type PageResult = Result<Response, PageError>;

/// The client id the console's sign-ins are audited under.
pub(crate) const CONSOLE_CLIENT: &str = "console";
const EXPIRED_FORM: &str = "This form has expired or was not sent from this site. Go back to \
     the application and start signing in again.";

/// Where a sign-in continues: an authorization request, or a console page.
pub enum Target {
    Authorize(Box<AuthorizeRequest>),
    Console {
        next: String,
        reason: Option<String>,
    },
}

impl Target {
    /// The hidden form field that carries the target from step to step.
    pub(super) fn field(&self) -> (String, String) {
        match self {
            Self::Authorize(req) => ("request".into(), req.raw.clone()),
            Self::Console { next, .. } => ("next".into(), next.clone()),
        }
    }

    fn client_name(&self) -> String {
        match self {
            Self::Authorize(req) => req.client.name.clone(),
            Self::Console { .. } => "your account".into(),
        }
    }

    pub(super) fn client_id(&self) -> &str {
        match self {
            Self::Authorize(req) => &req.client.id,
            Self::Console { .. } => CONSOLE_CLIENT,
        }
    }

    /// Where the browser goes once signed in.
    fn continue_url(&self) -> String {
        match self {
            Self::Authorize(req) => format!("/authorize?{}", req.raw_after_login()),
            Self::Console { next, .. } => next.clone(),
        }
    }

    fn login_reason(&self) -> Option<String> {
        match self {
            Self::Authorize(req) if req.require_mfa => Some(format!(
                "{} asks you to sign in with your password and authenticator app",
                req.client.name
            )),
            Self::Authorize(_) => None,
            Self::Console { reason, .. } => reason.clone(),
        }
    }

    /// Does the destination need a second factor from `user`?
    fn wants_mfa(&self, state: &AppState, user: &User) -> bool {
        match self {
            Self::Authorize(req) => req.wants_mfa(state, user),
            // The console lets a user who must set up two-factor in to do so; the admin
            // console itself checks what it needs.
            Self::Console { .. } => false,
        }
    }
}

/// A console page to return to: a local path under `/account`, `/admin` or `/device` (the
/// device flow's code entry, RFC 8628 §3.3) only (never another
/// site: no scheme, no `//`, no backslash).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    let next = next.unwrap_or("/account");
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 512
        && next.bytes().all(|b| b.is_ascii_graphic())
        && ["/account", "/admin", "/device"].iter().any(|p| {
            next == *p || next.starts_with(&format!("{p}/")) || next.starts_with(&format!("{p}?"))
        });
    if local {
        next.to_owned()
    } else {
        "/account".to_owned()
    }
}

/// The pending sign-in this browser holds, if any and still valid, with its user (enabled),
/// read without spending it (the passkey options of the next step).
#[cfg(feature = "passkeys")]
pub(super) async fn open_pending(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> authz_core::error::Result<Option<(Pending, User)>> {
    pending::peek(state, headers, now).await
}

/// Spend the pending sign-in this browser holds, for the step that continues it (`pending`).
#[cfg(feature = "passkeys")]
pub(super) async fn take_pending(
    state: &AppState,
    headers: &HeaderMap,
    ctx: &RequestContext,
) -> authz_core::error::Result<Option<(Pending, User)>> {
    pending::take(state, headers, ctx).await
}

/// A submitted sign-in form: readable, with this browser's CSRF token, and its target.
pub(super) async fn submitted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Form, Target), PageError> {
    let form = checked_form(state, headers, body, EXPIRED_FORM)?;
    let target = match form.get("request") {
        Some(raw) => Target::Authorize(Box::new(authorize::validate(state, raw).await?)),
        None => Target::Console {
            next: safe_next(form.get("next")),
            reason: None,
        },
    };
    Ok((form, target))
}

/// The password form for `target`.
pub fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    error: Option<String>,
    username: String,
) -> Response {
    let (csrf, cookie) = csrf_for_form(state, headers);
    let page = LoginPage {
        client_name: target.client_name(),
        reason: target.login_reason(),
        error,
        username,
        csrf,
        target: target.field(),
        upstreams: state
            .federation()
            .sign_in_providers()
            .map(|u| (super::upstream::start_link(u, target), u.name.clone()))
            .collect(),
        password: password_form(state),
    };
    with_cookies(render(StatusCode::OK, &page), cookie)
}

#[derive(Deserialize)]
pub(crate) struct ConsoleLogin {
    next: Option<String>,
    reauth: Option<String>,
}

/// `GET /account/login?next=…[&reauth=1]`: the console's sign-in form (also to confirm it is
/// still you before a change that needs a fresh re-authentication).
pub(crate) async fn console_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ConsoleLogin>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    let reason = q
        .reauth
        .is_some()
        .then(|| super::console::reauth_reason(&next));
    let target = Target::Console { next, reason };
    login_page(&state, &headers, &target, None, String::new())
}

fn locked_message(retry_after: i64) -> String {
    let minutes = (retry_after + 59) / 60;
    format!(
        "Too many failed sign-in attempts. For your security, sign-in is paused for this \
         account; try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    )
}

/// Is the password form offered? Not when `federation.only` names an upstream provider; with
/// `only = "ldap"` it is, for directory users (`identity::signin`).
fn password_form(state: &AppState) -> bool {
    state
        .config
        .federation
        .only
        .as_deref()
        .is_none_or(|o| o == authz_core::config::ldap::PROVIDER)
}

/// `POST /login`: the password step.
pub async fn login(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (form, target) = submitted(&state, &headers, &body).await?;
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let password = Password::new(form.get("password").unwrap_or_default());
    // `federation.only`: the one way in is the upstream provider, the form is not offered.
    if !password_form(&state) {
        let msg = "Passwords are not used to sign in here: continue with your organisation's \
                   sign-in."
            .to_owned();
        return Ok(login_page(
            &state,
            &headers,
            &target,
            Some(msg),
            String::new(),
        ));
    }
    if username.is_empty() || password.expose().is_empty() {
        let msg = "Enter your username and password.".to_owned();
        return Ok(login_page(&state, &headers, &target, Some(msg), username));
    }
    let via = match target {
        Target::Authorize(_) => "login_form",
        Target::Console { .. } => "console",
    };
    let outcome = signin::authenticate(
        state.identity(),
        &username,
        &password,
        target.client_id(),
        via,
        &ctx,
    )
    .await?;
    let user = match outcome {
        // The application asked for one user (id_token_hint): nobody else signs in here.
        Ok(u) if matches!(&target, Target::Authorize(r) if !r.is_hinted_user(&u.id)) => {
            let msg = "This application asked you to sign in with a different account. Sign in \
                       with that account, or go back to the application."
                .to_owned();
            return Ok(login_page(&state, &headers, &target, Some(msg), username));
        }
        Ok(u) => u,
        Err(LoginFailure::Invalid) => {
            let msg = "The username or password is incorrect.".to_owned();
            return Ok(login_page(&state, &headers, &target, Some(msg), username));
        }
        Err(LoginFailure::Locked { retry_after }) => {
            let msg = locked_message(retry_after);
            return Ok(login_page(&state, &headers, &target, Some(msg), username));
        }
        Err(LoginFailure::Refused { message }) => {
            return Ok(login_page(
                &state,
                &headers,
                &target,
                Some(message.to_owned()),
                username,
            ));
        }
    };
    let pending = Pending::begin(&state, &user, vec!["pwd".into()], ctx.now).await?;
    next_step(&state, &headers, &target, &user, pending, &ctx).await
}

/// After a step: the next one the user owes, or the session.
pub(super) async fn next_step(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    user: &User,
    pending: Pending,
    ctx: &RequestContext,
) -> PageResult {
    // After an administrator's reset, only whoever proved the temporary password chooses the
    // new one (issue 24 item 1): a passkey alone is sent to the password form.
    if user.password_change_required && !pending.has_password() {
        let msg = "Your password was reset by an administrator: sign in with the temporary \
                   password you were given to choose a new one."
            .to_owned();
        let page = login_page(state, headers, target, Some(msg), user.username.clone());
        return Ok(with_cookies(page, [pending::clear(state)]));
    }
    let second_done = authz_core::store::is_multi_factor(&pending.amr);
    if !second_done && two_factor::is_enabled(&*state.store, user).await? {
        let page = code_page(state, headers, target, user, None);
        return again(state, &pending, page, ctx).await;
    }
    if user.password_change_required {
        let page = new_password_page(state, headers, target, user, None);
        return again(state, &pending, page, ctx).await;
    }
    finish(state, headers, target, user, &pending.amr, ctx).await
}

/// `page` for the next (or the same) step of `pending`, under a new handle.
async fn again(
    state: &AppState,
    pending: &Pending,
    page: Response,
    ctx: &RequestContext,
) -> PageResult {
    let cookie = pending::keep(state, pending, ctx.now).await?;
    Ok(with_cookies(page, [cookie]))
}

fn code_page(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    user: &User,
    error: Option<String>,
) -> Response {
    let (csrf, cookie) = csrf_for_form(state, headers);
    let page = SignInCodePage {
        client_name: target.client_name(),
        username: user.username.clone(),
        error,
        csrf,
        target: target.field(),
    };
    with_cookies(render(StatusCode::OK, &page), cookie)
}

fn new_password_page(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    user: &User,
    error: Option<String>,
) -> Response {
    let (csrf, cookie) = csrf_for_form(state, headers);
    let page = NewPasswordPage {
        username: user.username.clone(),
        min_length: state.config.password_policy.min_length,
        error,
        csrf,
        target: target.field(),
    };
    with_cookies(render(StatusCode::OK, &page), cookie)
}

/// The password form again, with `msg`, and this browser's pending sign-in ended.
pub(super) fn restart(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    msg: &str,
) -> Response {
    let page = login_page(state, headers, target, Some(msg.to_owned()), String::new());
    with_cookies(page, [pending::clear(state)])
}

/// Spend the pending sign-in a step's form continues; without one (expired, spent, or its
/// credentials changed since), the password form again.
async fn pending_or_restart(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    ctx: &RequestContext,
) -> Result<std::result::Result<(Pending, User), Response>, PageError> {
    match pending::take(state, headers, ctx).await? {
        Some(p) => Ok(Ok(p)),
        None => Ok(Err(restart(state, headers, target, ENDED))),
    }
}

/// A sign-in that did not outlive its deadline or the credentials it was begun under.
const ENDED: &str = "This sign-in has ended (it took too long, or the account's password or \
                     two-factor sign-in changed): sign in again.";

/// `POST /login/code`: the second factor.
pub(crate) async fn login_code(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (form, target) = submitted(&state, &headers, &body).await?;
    let (mut pending, user) = match pending_or_restart(&state, &headers, &target, &ctx).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let code = form.get("code").unwrap_or_default().trim();
    if code.is_empty() || code.len() > 32 {
        let msg = "Enter the 6-digit code from your authenticator app.".to_owned();
        let page = code_page(&state, &headers, &target, &user, Some(msg));
        return again(&state, &pending, page, &ctx).await;
    }
    match signin::second_factor(state.identity(), &user, code, target.client_id(), &ctx).await? {
        Ok(_) => {}
        // (A code is never refused for its account: that is the password step's.)
        Err(LoginFailure::Invalid | LoginFailure::Refused { .. }) => {
            let msg = "That code is not valid. Codes change every 30 seconds and each works \
                       once: enter the current one."
                .to_owned();
            let page = code_page(&state, &headers, &target, &user, Some(msg));
            return again(&state, &pending, page, &ctx).await;
        }
        Err(LoginFailure::Locked { retry_after }) => {
            let msg = locked_message(retry_after);
            let page = login_page(&state, &headers, &target, Some(msg), user.username.clone());
            return Ok(with_cookies(page, [pending::clear(&state)]));
        }
    }
    pending.amr.push("otp".into());
    next_step(&state, &headers, &target, &user, pending, &ctx).await
}

/// `POST /login/password`: a new password after an administrator's reset.
pub(crate) async fn login_new_password(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (form, target) = submitted(&state, &headers, &body).await?;
    let (pending, user) = match pending_or_restart(&state, &headers, &target, &ctx).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    // The steps before this one must be done: the (temporary) password, and a second factor
    // when two-factor is on — a code or a passkey, the one multi-factor rule.
    let owes_code = !authz_core::store::is_multi_factor(&pending.amr)
        && two_factor::is_enabled(&*state.store, &user).await?;
    if owes_code || !pending.has_password() || !user.password_change_required {
        return next_step(&state, &headers, &target, &user, pending, &ctx).await;
    }
    let new = Password::new(form.get("new_password").unwrap_or_default());
    if form.get("confirm") != Some(new.expose()) {
        let msg = "The two passwords are not the same.".to_owned();
        let page = new_password_page(&state, &headers, &target, &user, Some(msg));
        return again(&state, &pending, page, &ctx).await;
    }
    let changed = change_password(
        state.identity(),
        &user.username,
        &user,
        &new,
        PasswordChange::ByUser,
    );
    let hash = match changed.await {
        Ok(r) => r.password_hash.unwrap_or_default(),
        Err(crate::error::Error::Invalid(msg)) => {
            let msg = format!("That password cannot be used: {msg}.");
            let page = new_password_page(&state, &headers, &target, &user, Some(msg));
            return again(&state, &pending, page, &ctx).await;
        }
        // The password changed meanwhile (another sign-in chose it): this one is over.
        Err(crate::error::Error::Conflict(_)) => {
            let msg = "The password of this account was changed meanwhile: sign in again.";
            return Ok(restart(&state, &headers, &target, msg));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(mut user) = state.store.get_user(&user.id).await? else {
        return Err(PageError::page(
            StatusCode::NOT_FOUND,
            "Account not found",
            "This account no longer exists.",
        ));
    };
    // The session is stamped with the password this step set, not whatever the row holds
    // now: an administrator's reset committed since leaves no session.
    user.password_hash = hash;
    finish(&state, &headers, &target, &user, &pending.amr, &ctx).await
}

/// Every step done: a new session (a previous one of this browser ends), audited, and on to
/// the target. A destination that needs a second factor the user has not set up gets a page
/// that says how (the session stands, so the account page can be reached to set it up).
async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    user: &User,
    amr: &[String],
    ctx: &RequestContext,
) -> PageResult {
    if let Some(old) = session::current(
        &*state.store,
        &state.config.browser,
        state.now(),
        session_cookie(state, headers),
    )
    .await?
    {
        session::end(&*state.store, &state.events, &old, "replaced", ctx).await?;
    }
    let methods: Vec<&str> = amr.iter().map(String::as_str).collect();
    let how = SignedIn {
        amr: &methods,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    };
    // `user` carries the credential state the sign-in began under: a remedy that committed
    // since (a reset, a password change, disabling) leaves no session (audited).
    let Some((_, cookie_value)) =
        session::start(&*state.store, &state.config, &state.events, user, how, ctx).await?
    else {
        return Ok(restart(state, headers, target, ENDED));
    };
    let via = match target {
        _ if amr.iter().any(|m| m == "fed") => "upstream",
        Target::Authorize(_) => "login_form",
        Target::Console { .. } => "console",
    };
    signin::audit_success(state.identity(), user, target.client_id(), via, ctx).await;
    let cookies = [
        set_session_cookie(state, &cookie_value),
        pending::clear(state),
    ];
    let multi = authz_core::store::is_multi_factor(amr);
    if target.wants_mfa(state, user) && !multi {
        return Ok(with_cookies(mfa_setup_page(target), cookies));
    }
    Ok(with_cookies(see_other(&target.continue_url()), cookies))
}

/// The page for a user who must sign in with a second factor and has none yet.
pub(crate) fn mfa_setup_page(target: &Target) -> Response {
    render(
        StatusCode::FORBIDDEN,
        &MessagePage {
            title: "Set up two-factor sign-in".into(),
            message: format!(
                "{} requires you to sign in with an authenticator app as well as your \
                 password. Set it up on your account page, then go back to it and sign in \
                 again.",
                target.client_name()
            ),
            link: Some((
                "/account/two-factor".to_owned(),
                "Set up two-factor sign-in".into(),
            )),
        },
    )
}
