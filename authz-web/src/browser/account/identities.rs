//! `/account/identities`: the upstream identities linked to the account (federation) — listed,
//! linked (after a fresh re-authentication here, then the provider's own sign-in: both sides
//! proved) and unlinked (never the last way in: `federation::links`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;

use super::super::console::{Console, Nav, done_message};
use super::super::web::{PageError, see_other, with_cookies};
use super::bad_request;
use super::profile::Done;
use crate::console::time::{utc, utc_or_dash};
use crate::context::Ctx;
use authz_core::federation::links::{self, Remover};
use authz_core::federation::round_trip;
use authz_core::state::AppState;

/// Where the account page's links come back to.
pub(crate) const PAGE: &str = "/account/identities";

struct LinkRow {
    provider: String,
    provider_name: String,
    subject: String,
    email: String,
    linked: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/account_identities.html")]
struct IdentitiesPage {
    nav: Nav,
    links: Vec<LinkRow>,
    /// Providers this account has no identity of yet: (id, name).
    available: Vec<(String, String)>,
    notice: Option<&'static str>,
    error: Option<String>,
}

const DONE: &[(&str, &str)] = &[
    ("linked", "The account was linked: you can sign in with it."),
    (
        "unlinked",
        "The account was unlinked: it no longer signs you in here.",
    ),
];

async fn page(
    state: &AppState,
    console: &Console,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let links = state
        .store
        .federated_identities_of(&console.user.id)
        .await?;
    let fed = state.federation();
    let name = |id: &str| fed.provider_name(id);
    let available = fed
        .sign_in_providers()
        .filter(|u| !links.iter().any(|l| l.provider == u.id))
        .map(|u| (u.id.clone(), u.name.clone()))
        .collect();
    let rows = links
        .into_iter()
        .map(|l| LinkRow {
            provider_name: name(&l.provider),
            provider: l.provider,
            subject: l.subject,
            email: l.email.unwrap_or_else(|| "—".into()),
            linked: utc(l.created_at),
            last_used: utc_or_dash(l.last_login_at),
        })
        .collect();
    let page = IdentitiesPage {
        nav: console.nav("identities"),
        links: rows,
        available,
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

/// `POST /account/identities/link`: after a fresh re-authentication, off to the provider; its
/// identity is linked to this account when the round trip comes back.
pub async fn link(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    let svc = state.federation();
    let up = form
        .get("provider")
        .and_then(|p| svc.sign_in_provider(p))
        .ok_or_else(|| bad_request("That identity provider is not configured here."))?;
    console.require_recent(&state, PAGE).await?;
    let target = serde_json::json!({ "next": PAGE }).to_string();
    match round_trip::begin(svc, up, &target, Some(&console.user.id), ctx.now).await? {
        Ok(begun) => Ok(with_cookies(
            see_other(&begun.location),
            [super::super::upstream::binding_cookie(
                &state,
                &begun.browser,
            )],
        )),
        Err(refusal) => page(&state, &console, None, Some(refusal.message)).await,
    }
}

/// `POST /account/identities/unlink`: remove a link (never the last way in), ending the
/// sessions signed in through a provider.
pub async fn unlink(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    console: Console,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = console.form(&state, &body)?;
    let (Some(provider), Some(subject)) = (form.get("provider"), form.get("subject")) else {
        return Err(bad_request("Choose the account to unlink."));
    };
    let by = Remover::User {
        sid: &console.session.sid,
    };
    let svc = state.federation();
    match links::unlink(svc, &console.user, provider, subject, by, &ctx).await? {
        Ok(true) => Ok(see_other(&format!("{PAGE}?done=unlinked"))),
        Ok(false) => {
            let msg = "That linked account was not found: nothing was changed.".to_owned();
            page(&state, &console, None, Some(msg)).await
        }
        Err(message) => page(&state, &console, None, Some(message.to_owned())).await,
    }
}
