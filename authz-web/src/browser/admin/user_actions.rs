//! The per-user actions of `/admin/users` (`POST /admin/users/{id}/<action>`): disable,
//! enable, roles, reset-password (a temporary password shown once, changed at the next
//! sign-in), reset-two-factor and end-sessions. Disable, reset-password and reset-two-factor
//! remove the user's passkeys and end every session and refresh token of the user in the same
//! transaction (a session signed in with a removed factor does not outlive it). Each goes
//! through `authz_core::identity::*`, which validates and audits it with the administrator as
//! actor; a refusal is the list again with the reason.

use authz_core::events::kinds;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use shared::secret::Password;

use super::users::{View, back_to, render, search_of, ticked_roles};
use super::{Notice, SecretItem, SecretView, change_form, refused};
use crate::browser::console::{Admin, Console};
use crate::browser::web::PageError;
use crate::context::Ctx;
use authz_core::config::PasswordPolicyConfig;
use authz_core::crypto::random_bytes;
use authz_core::events::audit::RequestContext;
use authz_core::identity::admin::{self, PasswordChange};
use authz_core::identity::{session, two_factor};
use authz_core::policy::password::check_policy;
use authz_core::protocol::form::Form;
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, Outcome, User};

/// A strong temporary password that meets the policy: groups of base32 characters (about
/// 5 bits each, from the OS RNG), at least 20 of them.
fn temporary_password(policy: &PasswordPolicyConfig, username: &str) -> String {
    let wanted = policy.min_length.max(20);
    let mut last = String::new();
    for _ in 0..100 {
        let mut chars = String::new();
        while chars.len() < wanted {
            chars
                .push_str(&authz_core::identity::totp::base32(&random_bytes::<5>()).to_lowercase());
        }
        chars.truncate(wanted);
        let grouped = chars
            .as_bytes()
            .chunks(5)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        let candidate = if grouped.chars().count() <= policy.max_length {
            grouped
        } else {
            chars
        };
        if check_policy(policy, username, &candidate).is_ok() {
            return candidate;
        }
        last = candidate;
    }
    last
}

/// What a per-user action did.
enum Done {
    /// Back to the list with this `done` key (and a count).
    Back(&'static str, Option<usize>),
    /// A secret to show once.
    Secret(SecretView),
}

/// Why a per-user action was not carried out: refused (shown on the page), or an error of
/// the account functions (shown if it is the request's fault, else the 500 page).
enum Refusal {
    Notice(StatusCode, Notice),
    Failed(crate::error::Error),
}

impl From<crate::error::Error> for Refusal {
    fn from(e: crate::error::Error) -> Self {
        Self::Failed(e)
    }
}

type Action = Result<Done, Refusal>;

pub(super) async fn act(
    State(state): State<AppState>,
    Admin(console): Admin,
    Ctx(ctx): Ctx,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = change_form(&state, &console, &body, "/admin/users").await?;
    let q = search_of(&form);
    let result = match state.store.get_user(&id).await? {
        None => Err(Refusal::Notice(
            StatusCode::NOT_FOUND,
            Notice::error("That user does not exist any more."),
        )),
        Some(user) => match action.as_str() {
            "disable" => disable(&state, &console, &user).await,
            "enable" => enable(&state, &console, &user).await,
            "roles" => set_roles(&state, &console, &user, &form).await,
            "reset-password" => reset_password(&state, &console, &user).await,
            "reset-two-factor" => reset_two_factor(&state, &console, &user).await,
            "end-sessions" => end_sessions(&state, &console, &user, &ctx).await,
            _ => {
                return Err(PageError::page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no such action for a user.",
                ));
            }
        },
    };
    let view = match result {
        Ok(Done::Back(done, None)) => return Ok(back_to(&q, done, &[])),
        Ok(Done::Back(done, Some(n))) => {
            return Ok(back_to(&q, done, &[("count", &n.to_string())]));
        }
        Ok(Done::Secret(secret)) => (
            View {
                q,
                secret: Some(secret),
                ..View::default()
            },
            StatusCode::OK,
        ),
        Err(refusal) => {
            let (status, notice) = match refusal {
                Refusal::Notice(status, notice) => (status, notice),
                Refusal::Failed(e) => refused(e)?,
            };
            let view = View {
                q,
                notice: Some(notice),
                ..View::default()
            };
            (view, status)
        }
    };
    render(&state, &console, view.0, view.1).await
}

/// Refuse a change an administrator may not make to their own account.
fn not_on_self(console: &Console, user: &User, message: &str) -> Result<(), Refusal> {
    if user.id == console.user.id {
        Err(Refusal::Notice(
            StatusCode::BAD_REQUEST,
            Notice::error(message),
        ))
    } else {
        Ok(())
    }
}

async fn disable(state: &AppState, console: &Console, user: &User) -> Action {
    not_on_self(console, user, "You cannot disable your own account.")?;
    admin::set_disabled(
        &*state.store,
        &state.events,
        &console.user.username,
        &user.username,
        true,
    )
    .await?;
    Ok(Done::Back("disabled", None))
}

async fn enable(state: &AppState, console: &Console, user: &User) -> Action {
    admin::set_disabled(
        &*state.store,
        &state.events,
        &console.user.username,
        &user.username,
        false,
    )
    .await?;
    Ok(Done::Back("enabled", None))
}

async fn set_roles(state: &AppState, console: &Console, user: &User, form: &Form) -> Action {
    let roles = ticked_roles(state, form);
    if user.id == console.user.id && !roles.iter().any(|r| r == "admin") {
        return Err(Refusal::Notice(
            StatusCode::BAD_REQUEST,
            Notice::error("You cannot remove your own admin role: another administrator can."),
        ));
    }
    admin::set_roles(
        &*state.store,
        &state.config,
        &state.events,
        &console.user.username,
        &user.username,
        roles,
    )
    .await?;
    Ok(Done::Back("roles", None))
}

async fn reset_password(state: &AppState, console: &Console, user: &User) -> Action {
    not_on_self(
        console,
        user,
        "Change your own password on your account page.",
    )?;
    let temporary = temporary_password(&state.config.password_policy, &user.username);
    let reset = PasswordChange::AdminReset { temporary: true };
    let password = Password::new(temporary.clone());
    let r = admin::change_password(
        state.identity(),
        &console.user.username,
        user,
        &password,
        reset,
    )
    .await?;
    Ok(Done::Secret(SecretView {
        heading: format!("Temporary password for {}", user.username),
        note: format!(
            "Shown once: give it to {} over a safe channel. They must choose a new password \
             when they next sign in. {} session(s) ended; {} refresh token(s) and {} API \
             key(s) revoked; {} passkey(s) removed.",
            user.username,
            r.sessions_ended,
            r.refresh_tokens_revoked,
            r.api_keys_revoked.len(),
            r.passkeys_removed
        ),
        items: vec![SecretItem {
            name: "password",
            label: "Temporary password",
            value: temporary,
        }],
    }))
}

async fn reset_two_factor(state: &AppState, console: &Console, user: &User) -> Action {
    not_on_self(
        console,
        user,
        "Turn your own two-factor sign-in off on your account page.",
    )?;
    let removed =
        two_factor::reset(&*state.store, &state.events, &console.user.username, user).await?;
    if !removed.totp && removed.passkeys == 0 {
        return Err(Refusal::Notice(
            StatusCode::CONFLICT,
            Notice::error(format!(
                "{} has no two-factor sign-in to reset.",
                user.username
            )),
        ));
    }
    Ok(Done::Back("two-factor-reset", None))
}

async fn end_sessions(
    state: &AppState,
    console: &Console,
    user: &User,
    ctx: &RequestContext,
) -> Action {
    not_on_self(
        console,
        user,
        "Sign out your own sessions on your account page.",
    )?;
    let sessions = state.store.user_sessions(&user.id).await?;
    for s in &sessions {
        session::end(&*state.store, &state.events, s, "admin", ctx).await?;
    }
    // And the sign-ins half done (issue 24 item 2), and the upstream tokens held for the
    // user (the vault: revoked at their providers).
    state.store.end_pending_signins(&user.id).await?;
    let vault = authz_core::federation::vault::discard(state.federation(), &user.id, None, ctx.now);
    let upstream_tokens = vault.await?;
    let event = AuditEvent::new(ctx.now, kinds::USER_SESSIONS_ENDED, Outcome::Success)
        .actor(&console.user.username)
        .subject(&user.id)
        .details(serde_json::json!({
            "sessions_ended": sessions.len(), "upstream_tokens_discarded": upstream_tokens,
        }))
        .ctx(ctx);
    state.audit(event).await;
    Ok(Done::Back("sessions-ended", Some(sessions.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_passwords_meet_the_policy() {
        let policy = PasswordPolicyConfig {
            min_length: 15,
            max_length: 128,
        };
        let mut seen = std::collections::HashSet::new();
        for username in ["a", "ab", "x2", "alice"] {
            for _ in 0..50 {
                let p = temporary_password(&policy, username);
                assert!(check_policy(&policy, username, &p).is_ok(), "{p}");
                assert_eq!(p.len(), 23, "{p}");
                assert!(p.split('-').all(|g| g.len() == 5), "{p}");
                assert!(
                    p.bytes()
                        .all(|b| b == b'-' || matches!(b, b'a'..=b'z' | b'2'..=b'7'))
                );
                assert!(seen.insert(p));
            }
        }
        // A longer minimum gives a longer password; a tight maximum drops the dashes.
        let long = PasswordPolicyConfig {
            min_length: 30,
            max_length: 64,
        };
        let p = temporary_password(&long, "bob");
        assert_eq!(p.replace('-', "").len(), 30);
        let tight = PasswordPolicyConfig {
            min_length: 64,
            max_length: 64,
        };
        let p = temporary_password(&tight, "bob");
        assert_eq!(p.len(), 64);
        assert!(!p.contains('-'));
    }
}
