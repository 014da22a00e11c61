//! Signing in through the browser, for an authorization request or for the console:
//! `POST /login` (the password), `POST /login/code` (the second factor), `POST /login/password`
//! (a new password after an administrator's reset), and `GET /account/login` (the form for
//! the console). A sign-in is one pass through these steps:
//!
//! 1. the password (`account::signin::authenticate`, throttled per username);
//! 2. with two-factor on, a TOTP or recovery code (`account::signin::second_factor`: the same
//!    per-username lockout; a code is never accepted twice);
//! 3. after an administrator's reset, a new password (policy enforced);
//! 4. a new session (never the old one: no fixation) whose `amr` says what was done
//!    (RFC 8176 `pwd`, `otp`), then on to the authorization request or the console page.
//!
//! Between steps the browser holds a short-lived `authz_pending` cookie sealed under the
//! master key (AES-GCM, its own associated data): the user id, the methods done so far and an
//! expiry. It cannot be forged or extended, and it is useless without the next step's secret.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use shared::secret::Password;

use super::pages::{LoginPage, MessagePage, NewPasswordPage, SignInCodePage};
use super::web::{
    PageError, checked_form, csrf_for_form, render, see_other, session_cookie, set_session_cookie,
    with_cookies,
};
use crate::account::admin::{PasswordChange, change_password};
use crate::account::session::{self, SignedIn};
use crate::account::signin::{self, LoginFailure};
use crate::account::two_factor;
use crate::audit::RequestContext;
use crate::oauth::authorize::{self, AuthorizeRequest};
use crate::oauth::form::Form;
use crate::state::AppState;
use crate::store::User;

type PageResult = Result<Response, PageError>;

/// The client id the console's sign-ins are audited under.
pub const CONSOLE_CLIENT: &str = "console";
/// How long the steps after the password may take.
pub(super) const PENDING_SECS: i64 = 300;
const PENDING_AAD: &[u8] = b"authz-signin-pending";
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
    fn field(&self) -> (String, String) {
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
pub fn safe_next(next: Option<&str>) -> String {
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

/// The state between the steps of a sign-in.
#[derive(Serialize, Deserialize)]
pub(super) struct Pending {
    pub(super) uid: String,
    pub(super) amr: Vec<String>,
    pub(super) exp: i64,
}

const PENDING: &str = "authz_pending";

fn pending_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    super::web::cookie_header(&state.config, PENDING, value, Some(max_age))
}

fn seal_pending(state: &AppState, p: &Pending) -> HeaderValue {
    let json = serde_json::to_vec(p).unwrap_or_default();
    let sealed = URL_SAFE_NO_PAD.encode(state.master.seal(PENDING_AAD, &json));
    pending_cookie(state, &sealed, PENDING_SECS)
}

/// The pending sign-in this browser holds, if any and still fresh, with its user (enabled).
pub(super) async fn open_pending(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> crate::error::Result<Option<(Pending, User)>> {
    let Some(raw) = super::web::cookie_value(state, headers, PENDING).filter(|v| v.len() < 2048)
    else {
        return Ok(None);
    };
    let Some(p) = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| state.master.open(PENDING_AAD, &b).ok())
        .and_then(|j| serde_json::from_slice::<Pending>(&j).ok())
        .filter(|p| p.exp > now)
    else {
        return Ok(None);
    };
    Ok(match state.store.get_user(&p.uid).await? {
        Some(u) if u.is_enabled() => Some((p, u)),
        _ => None,
    })
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
    };
    with_cookies(render(StatusCode::OK, &page), cookie)
}

#[derive(Deserialize)]
pub struct ConsoleLogin {
    next: Option<String>,
    reauth: Option<String>,
}

/// `GET /account/login?next=…[&reauth=1]`: the console's sign-in form (also to confirm it is
/// still you before a change that needs a fresh re-authentication).
pub async fn console_login(
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

/// `POST /login`: the password step.
pub async fn login(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (form, target) = submitted(&state, &headers, &body).await?;
    let username = form.get("username").unwrap_or_default().trim().to_owned();
    let password = Password::new(form.get("password").unwrap_or_default());
    if username.is_empty() || password.expose().is_empty() {
        let msg = "Enter your username and password.".to_owned();
        return Ok(login_page(&state, &headers, &target, Some(msg), username));
    }
    let via = match target {
        Target::Authorize(_) => "login_form",
        Target::Console { .. } => "console",
    };
    let outcome =
        signin::authenticate(&state, &username, &password, target.client_id(), via, &ctx).await?;
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
    };
    let pending = Pending {
        uid: user.id.clone(),
        amr: vec!["pwd".into()],
        exp: ctx.now + PENDING_SECS,
    };
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
    let second_done = crate::store::is_multi_factor(&pending.amr);
    if !second_done && two_factor::is_enabled(state, user).await? {
        let cookie = seal_pending(state, &pending);
        return Ok(with_cookies(
            code_page(state, headers, target, user, None),
            [cookie],
        ));
    }
    if user.password_change_required {
        let cookie = seal_pending(state, &pending);
        return Ok(with_cookies(
            new_password_page(state, headers, target, user, None),
            [cookie],
        ));
    }
    finish(state, headers, target, user, &pending.amr, ctx).await
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

/// The pending sign-in a step's form continues, or the password form again (expired).
async fn pending_or_restart(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
    ctx: &RequestContext,
) -> Result<std::result::Result<(Pending, User), Response>, PageError> {
    match open_pending(state, headers, ctx.now).await? {
        Some(p) => Ok(Ok(p)),
        None => {
            let msg = "That took too long: sign in again.".to_owned();
            Ok(Err(login_page(
                state,
                headers,
                target,
                Some(msg),
                String::new(),
            )))
        }
    }
}

/// `POST /login/code`: the second factor.
pub async fn login_code(
    State(state): State<AppState>,
    ctx: RequestContext,
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
        return Ok(code_page(&state, &headers, &target, &user, Some(msg)));
    }
    match signin::second_factor(&state, &user, code, target.client_id(), &ctx).await? {
        Ok(_) => {}
        Err(LoginFailure::Invalid) => {
            let msg = "That code is not valid. Codes change every 30 seconds and each works \
                       once: enter the current one."
                .to_owned();
            return Ok(code_page(&state, &headers, &target, &user, Some(msg)));
        }
        Err(LoginFailure::Locked { retry_after }) => {
            let msg = locked_message(retry_after);
            let page = login_page(&state, &headers, &target, Some(msg), user.username.clone());
            return Ok(with_cookies(page, [pending_cookie(&state, "", 0)]));
        }
    }
    pending.amr.push("otp".into());
    next_step(&state, &headers, &target, &user, pending, &ctx).await
}

/// `POST /login/password`: a new password after an administrator's reset.
pub async fn login_new_password(
    State(state): State<AppState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let (form, target) = submitted(&state, &headers, &body).await?;
    let (pending, user) = match pending_or_restart(&state, &headers, &target, &ctx).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    // The steps before this one must be done (a code, when two-factor is on).
    let owes_code =
        !pending.amr.iter().any(|m| m == "otp") && two_factor::is_enabled(&state, &user).await?;
    if owes_code || !user.password_change_required {
        return next_step(&state, &headers, &target, &user, pending, &ctx).await;
    }
    let new = Password::new(form.get("new_password").unwrap_or_default());
    if form.get("confirm") != Some(new.expose()) {
        let msg = "The two passwords are not the same.".to_owned();
        return Ok(new_password_page(
            &state,
            &headers,
            &target,
            &user,
            Some(msg),
        ));
    }
    let changed = change_password(&state, &user.username, &user, &new, PasswordChange::ByUser);
    match changed.await {
        Ok(_) => {}
        Err(crate::error::Error::Invalid(msg)) => {
            let msg = format!("That password cannot be used: {msg}.");
            return Ok(new_password_page(
                &state,
                &headers,
                &target,
                &user,
                Some(msg),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let Some(user) = state.store.get_user(&user.id).await? else {
        return Err(PageError::page(
            StatusCode::NOT_FOUND,
            "Account not found",
            "This account no longer exists.",
        ));
    };
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
    if let Some(old) = session::current(state, session_cookie(state, headers)).await? {
        session::end(state, &old, "replaced", ctx).await?;
    }
    let methods: Vec<&str> = amr.iter().map(String::as_str).collect();
    let how = SignedIn {
        amr: &methods,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
    };
    let (_, cookie_value) = session::start(state, user, how, ctx).await?;
    let via = match target {
        Target::Authorize(_) => "login_form",
        Target::Console { .. } => "console",
    };
    signin::audit_success(state, user, target.client_id(), via, ctx).await;
    let cookies = [
        set_session_cookie(state, &cookie_value),
        pending_cookie(state, "", 0),
    ];
    let multi = crate::store::is_multi_factor(amr);
    if target.wants_mfa(state, user) && !multi {
        return Ok(with_cookies(mfa_setup_page(target), cookies));
    }
    Ok(with_cookies(see_other(&target.continue_url()), cookies))
}

/// The page for a user who must sign in with a second factor and has none yet.
pub fn mfa_setup_page(target: &Target) -> Response {
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
