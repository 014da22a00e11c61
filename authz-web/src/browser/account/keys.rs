//! `GET/POST /account/api-keys` and `POST /account/api-keys/{id}/revoke`: the user's API keys,
//! with the management API's rules (`clients::api_keys`). From the browser the user asks with
//! everything their roles grant (they are signed in themselves, not through an app).
//! Creating a key follows the console's multi-factor rule (`[mfa] required_roles`); listing
//! and revoking do not (revoking is a remedy).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::super::console::{Console, Nav, done_message};
use super::super::web::{PageError, see_other};
use super::profile::Done;
use super::user_error;
use crate::console::time::{utc, utc_or_dash};
use authz_core::clients::api_keys::{self, KEYS_WRITE};
use authz_core::identity::session;
use authz_core::state::AppState;

struct KeyRow {
    id: String,
    name: String,
    scope: String,
    created: String,
    expires: String,
    active: bool,
}

/// A key just created: shown once.
struct Created {
    client_id: String,
    client_secret: String,
}

#[derive(Template)]
#[template(path = "console/account_keys.html")]
struct KeysPage {
    nav: Nav,
    keys: Vec<KeyRow>,
    /// Scopes a new key may carry (the user's roles' scopes, less `keys:write`).
    grantable: Vec<String>,
    created: Option<Created>,
    notice: Option<&'static str>,
    error: Option<String>,
}

const DONE: &[(&str, &str)] = &[("revoked", "The API key was revoked: it no longer works.")];

async fn page(
    state: &AppState,
    console: &Console,
    created: Option<Created>,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let keys = api_keys::list(&*state.store, state.now(), &console.user)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.key_id,
            name: k.name,
            scope: k.scope,
            created: utc(k.created_at),
            expires: utc_or_dash(k.expires_at),
            active: k.active,
        })
        .collect();
    let grantable = asking(state, console)
        .iter()
        .map(|s| s.as_str().to_owned())
        .filter(|s| s != KEYS_WRITE && !shared::scope::OIDC_SCOPES.contains(&s.as_str()))
        .collect();
    let page = KeysPage {
        nav: console.nav("api-keys"),
        keys,
        grantable,
        created,
        notice,
        error,
    };
    Ok(console.page(&page))
}

/// What the signed-in user holds: their roles' scopes.
fn asking(state: &AppState, console: &Console) -> shared::ScopeSet {
    state
        .config
        .role_scopes(console.user.roles.iter().map(String::as_str))
}

pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<Done>,
) -> Result<Response, PageError> {
    page(
        &state,
        &console,
        None,
        done_message(q.done.as_deref(), DONE),
        None,
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    // One `scope` checkbox per scope: the only name of this form that may repeat.
    let form = console.form_with_lists(&state, &body, &["scope"])?;
    // A key lasts up to a year: a role that must sign in with a second factor creates one
    // only from such a sign-in (the console's one multi-factor rule), and only from a fresh
    // sign-in with every factor the user has (the one re-authentication rule).
    console
        .require_multi_factor(&state, "/account/api-keys", "Creating an API key")
        .await?;
    console.require_recent(&state, "/account/api-keys").await?;
    let name = form.get("name").unwrap_or_default().trim();
    let scope = form.all("scope").join(" ");
    let days = match form.get("days").filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let msg = "Expiry must be a whole number of days.".to_owned();
                return page(&state, &console, None, None, Some(msg)).await;
            }
        },
    };
    let held = asking(&state, &console);
    let signed_in = session::recent_sign_in(
        &*state.store,
        &state.config,
        state.now(),
        Some(&console.session.sid),
        &console.user,
    )
    .await?;
    match api_keys::create(
        state.client_services(),
        &console.user,
        &signed_in,
        &held,
        name,
        &scope,
        days,
    )
    .await
    {
        Ok(k) => {
            let created = Created {
                client_id: k.client_id,
                client_secret: k.client_secret.expose().to_owned(),
            };
            page(&state, &console, Some(created), None, None).await
        }
        Err(e) => {
            let msg = format!("The key was not created: {}.", user_error(e)?);
            page(&state, &console, None, None, Some(msg)).await
        }
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    console.form(&state, &body)?;
    match api_keys::revoke(
        &*state.store,
        &state.clients,
        &state.events,
        &console.user,
        &id,
    )
    .await
    {
        Ok(_) => Ok(see_other("/account/api-keys?done=revoked")),
        Err(e) => {
            let msg = format!("Nothing was revoked: {}.", user_error(e)?);
            page(&state, &console, None, None, Some(msg)).await
        }
    }
}
