//! `/admin/clients`: every client — registered by an administrator, self-registered (RFC
//! 7591), metadata-document clients (their host shown) and API keys — with create (the secret
//! shown once), rotate secret (shown once), delete (confirmed), and pruning the unused
//! self-registered ones. Validation, hashing and audit records are `identity::admin`'s.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::client_form::{AUTH_METHODS, Choice, Draft, GRANTS};
use super::format::{segment, utc_minute, utc_minute_or_dash};
use super::{Notice, SecretItem, SecretView, change_form, refused};
use crate::browser::console::{Admin, Console, Nav};
use crate::browser::web::{PageError, see_other};
use authz_core::clients::admin;
use authz_core::state::AppState;
use authz_core::store::{AuthMethod, Client, Registration};

/// At most this many clients are listed.
const MAX_SHOWN: usize = 500;

const DONE: &[(&str, &str)] = &[(
    "deleted",
    "The client was deleted, with every grant it held.",
)];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/clients", get(list).post(create))
        .route("/admin/clients/prune", post(prune))
        .route("/admin/clients/{id}/{action}", post(act))
}

#[derive(Debug, Clone)]
struct ClientRow {
    id: String,
    seg: String,
    name: String,
    /// `admin`, `dynamic`, `metadata_document` or `api_key` (`data-kind`).
    kind_key: &'static str,
    kind: &'static str,
    host: Option<String>,
    auth: &'static str,
    grants: String,
    redirect_uris: Vec<String>,
    scopes: String,
    created: String,
    last_used: String,
    status: &'static str,
    live: bool,
    /// Has a secret an administrator may rotate.
    rotatable: bool,
}

impl ClientRow {
    fn of(c: &Client, now: i64) -> Self {
        let (kind_key, kind) = match (c.owner_id.is_some(), c.registration) {
            (true, _) => ("api_key", "API key"),
            (false, Registration::Admin) => ("admin", "admin"),
            (false, Registration::Dynamic) => ("dynamic", "self-registered"),
            (false, Registration::MetadataDocument) => ("metadata_document", "metadata document"),
        };
        let status = if c.revoked_at.is_some() {
            "revoked"
        } else if !c.is_live(now) {
            "expired"
        } else {
            "active"
        };
        let uses_secret = matches!(
            c.auth_method,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        );
        Self {
            id: c.id.clone(),
            seg: segment(&c.id),
            name: c.name.clone(),
            kind_key,
            kind,
            host: authz_core::clients::cimd::document_host(c),
            auth: c.auth_method.as_str(),
            grants: c
                .grant_types
                .iter()
                .map(|g| crate::console::dashboard::grant_label(g.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            redirect_uris: c.redirect_uris.clone(),
            scopes: c.scopes.to_string(),
            created: utc_minute(c.created_at),
            last_used: utc_minute_or_dash(c.last_used_at),
            status,
            live: status == "active",
            rotatable: uses_secret && !c.is_public() && c.owner_id.is_none(),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "console/admin_clients.html")]
struct ClientsPage {
    nav: Nav,
    notice: Option<Notice>,
    secret: Option<SecretView>,
    rows: Vec<ClientRow>,
    total: usize,
    draft: Draft,
    auth_methods: Vec<Choice>,
    grants: Vec<Choice>,
    default_resource: String,
}

#[derive(Debug, Default)]
struct View {
    notice: Option<Notice>,
    secret: Option<SecretView>,
    draft: Option<Draft>,
}

async fn render(
    state: &AppState,
    console: &Console,
    view: View,
    status: StatusCode,
) -> Result<Response, PageError> {
    let now = state.now();
    let mut clients = state.store.list_clients().await?;
    clients.sort_by(|a, b| {
        let key = |c: &Client| (c.owner_id.is_some(), c.registration.as_str().to_owned());
        key(a)
            .cmp(&key(b))
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            .then_with(|| a.id.cmp(&b.id))
    });
    let total = clients.len();
    let rows = clients
        .iter()
        .take(MAX_SHOWN)
        .map(|c| ClientRow::of(c, now))
        .collect();
    let draft = view.draft.unwrap_or_else(|| Draft {
        auth_method: AuthMethod::ClientSecretBasic.as_str().to_owned(),
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        scope: "openid profile".into(),
        ..Draft::default()
    });
    let auth_methods = AUTH_METHODS
        .iter()
        .map(|m| Choice {
            value: m.as_str(),
            label: m.as_str(),
            on: draft.auth_method == m.as_str(),
        })
        .collect();
    let grants = GRANTS
        .iter()
        .map(|(key, _, label)| Choice {
            value: key,
            label,
            on: draft.grants.iter().any(|g| g == key),
        })
        .collect();
    let page = ClientsPage {
        nav: console.nav("clients"),
        notice: view.notice,
        secret: view.secret,
        rows,
        total,
        draft,
        auth_methods,
        grants,
        default_resource: state.config.default_resource.clone(),
    };
    Ok(console.page_with(status, &page))
}

async fn list(
    State(state): State<AppState>,
    Admin(console): Admin,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = query.map(|Query(p)| p).unwrap_or_default();
    let done = params.get("done").map(String::as_str);
    let notice = if done == Some("pruned") {
        params
            .get("count")
            .and_then(|c| c.parse::<u64>().ok())
            .map(|n| Notice::ok(format!("Deleted {n} unused self-registered client(s).")))
    } else {
        Notice::done(done, DONE)
    };
    let view = View {
        notice,
        ..View::default()
    };
    render(&state, &console, view, StatusCode::OK).await
}

async fn create(
    State(state): State<AppState>,
    Admin(console): Admin,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = change_form(&state, &console, &body, "/admin/clients").await?;
    let draft = Draft::read(&form);
    let created = match draft.settings() {
        Ok((id, settings)) => {
            admin::add_client(
                state.client_services(),
                &console.user.username,
                id,
                settings,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let (view, status) = match created {
        Ok((client, secret)) => {
            let mut items = vec![SecretItem {
                name: "client_id",
                label: "Client ID",
                value: client.id.clone(),
            }];
            let note = match &secret {
                Some(s) => {
                    items.push(SecretItem {
                        name: "client_secret",
                        label: "Client secret",
                        value: s.expose().to_owned(),
                    });
                    "The secret is shown once: store it now. Only its hash is kept; if it is \
                     lost, rotate it."
                }
                None => "This client has no secret (it is public, or signs with its own key).",
            };
            let secret = SecretView {
                heading: format!("Client “{}” created", client.name),
                note: note.to_owned(),
                items,
            };
            let view = View {
                secret: Some(secret),
                ..View::default()
            };
            (view, StatusCode::OK)
        }
        Err(e) => {
            let (status, notice) = refused(e)?;
            let view = View {
                notice: Some(notice),
                draft: Some(draft),
                ..View::default()
            };
            (view, status)
        }
    };
    render(&state, &console, view, status).await
}

async fn prune(
    State(state): State<AppState>,
    Admin(console): Admin,
    body: Bytes,
) -> Result<Response, PageError> {
    change_form(&state, &console, &body, "/admin/clients").await?;
    let pruned = admin::prune_clients(
        &*state.store,
        &state.clients,
        &state.events,
        &state.config.browser,
        &console.user.username,
        false,
    )
    .await?;
    Ok(see_other(&format!(
        "/admin/clients?done=pruned&count={}",
        pruned.len()
    )))
}

async fn act(
    State(state): State<AppState>,
    Admin(console): Admin,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = change_form(&state, &console, &body, "/admin/clients").await?;
    let actor = &console.user.username;
    let result = match action.as_str() {
        "rotate-secret" => {
            admin::rotate_client_secret(&*state.store, &state.clients, &state.events, actor, &id)
                .await
                .map(Some)
        }
        "delete" if form.get("confirm").is_none() => {
            let notice = Notice::error(
                "Tick “I understand” to delete the client: its grants and tokens end at once.",
            );
            let view = View {
                notice: Some(notice),
                ..View::default()
            };
            return render(&state, &console, view, StatusCode::BAD_REQUEST).await;
        }
        "delete" => admin::delete_client(&*state.store, &state.clients, &state.events, actor, &id)
            .await
            .map(|()| None),
        _ => {
            return Err(PageError::page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such action for a client.",
            ));
        }
    };
    let (view, status) = match result {
        Ok(None) => return Ok(see_other("/admin/clients?done=deleted")),
        Ok(Some(secret)) => {
            let view = View {
                secret: Some(SecretView {
                    heading: format!("New secret for {id}"),
                    note: "Shown once: store it now. The old secret no longer works.".to_owned(),
                    items: vec![
                        SecretItem {
                            name: "client_id",
                            label: "Client ID",
                            value: id.clone(),
                        },
                        SecretItem {
                            name: "client_secret",
                            label: "Client secret",
                            value: secret.expose().to_owned(),
                        },
                    ],
                }),
                ..View::default()
            };
            (view, StatusCode::OK)
        }
        Err(e) => {
            let (status, notice) = refused(e)?;
            let view = View {
                notice: Some(notice),
                ..View::default()
            };
            (view, status)
        }
    };
    render(&state, &console, view, status).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use authz_core::store::{ClientSettings, GrantType};

    #[test]
    fn rows_name_the_kind_host_and_status() {
        let mut c = Client {
            id: "https://app.example/client.json".into(),
            secret_hash: None,
            settings: ClientSettings {
                name: "App".into(),
                auth_method: AuthMethod::None,
                grant_types: vec![GrantType::AuthorizationCode, GrantType::TokenExchange],
                registration: Registration::MetadataDocument,
                ..ClientSettings::default()
            },
            revoked_at: None,
            created_at: 0,
            updated_at: 0,
            metadata_fetched_at: None,
            metadata_expires_at: None,
            last_used_at: Some(1_700_000_000),
        };
        let r = ClientRow::of(&c, 10);
        assert_eq!(r.kind, "metadata document");
        assert_eq!(r.host.as_deref(), Some("app.example"));
        assert_eq!(r.seg, "https%3A%2F%2Fapp.example%2Fclient.json");
        assert_eq!(r.grants, "authorization_code, token_exchange");
        assert_eq!(r.last_used, "2023-11-14 22:13");
        assert_eq!(r.status, "active");
        assert!(!r.rotatable);

        c.settings.owner_id = Some("usr_1".into());
        c.settings.auth_method = AuthMethod::ClientSecretBasic;
        c.settings.expires_at = Some(5);
        let r = ClientRow::of(&c, 10);
        assert_eq!(
            (r.kind_key, r.status, r.live),
            ("api_key", "expired", false)
        );
        assert!(!r.rotatable);

        c.settings.owner_id = None;
        c.settings.expires_at = None;
        c.settings.registration = Registration::Admin;
        c.revoked_at = Some(3);
        let r = ClientRow::of(&c, 10);
        assert_eq!((r.kind, r.status, r.host), ("admin", "revoked", None));
        assert!(r.rotatable);
    }
}
