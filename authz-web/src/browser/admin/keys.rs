//! `/admin/keys`: the signing keys (kid, algorithm, purpose, status and dates) and rotation:
//! a new key of the chosen algorithm, published now and signing after the pre-publication
//! delay, or at once ("switch now", for a compromised key). `keys::KeyAdmin::rotate_keys`
//! does the work and the audit record.
//!
//! "Withdraw" (`POST /admin/keys/withdraw`, confirmed) takes a compromised key out of the JWKS
//! at once, like `authz keys revoke`: `keys::KeyAdmin::withdraw_key` (the active key is
//! replaced by a new one first; audited with the administrator as actor).

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use super::format::{utc_minute, utc_minute_or_dash};
use super::{Notice, bad_form, change_form, refused};
use crate::browser::console::{Admin, Console, Nav};
use crate::browser::web::{PageError, see_other};
use authz_core::keys::KeySwitch;
use authz_core::keys::SigningAlg;
use authz_core::state::AppState;
use authz_core::store::{KeyStatus, StoredKey};

const DONE: &[(&str, &str)] = &[
    (
        "rotated",
        "A new signing key was published. It starts signing after the pre-publication delay; \
         the previous key stays published until its tokens have expired.",
    ),
    (
        "withdrawn",
        "The key was withdrawn: it is no longer published, and its tokens are refused here at \
         once and by resource servers at their next key fetch. Refresh tokens keep working.",
    ),
    (
        "rotated-now",
        "A new signing key signs from now on. Resource servers refuse its tokens until they \
         fetch the JWKS again; the previous key stays published until its tokens have expired.",
    ),
];

const ALGS: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/keys", get(list).post(rotate))
        .route("/admin/keys/withdraw", post(withdraw))
}

#[derive(Debug, Clone)]
struct KeyRow {
    kid: String,
    alg: String,
    purpose: &'static str,
    status: &'static str,
    /// Active, or published (pending, or retired but still verifying).
    published: bool,
    /// Offered the "Withdraw" action (not withdrawn yet).
    withdrawable: bool,
    created: String,
    retired: String,
    publish_until: String,
    activates: String,
}

impl KeyRow {
    fn of(k: &StoredKey, now: i64) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            purpose: k.purpose.as_str(),
            status: k.status.as_str(),
            published: k.is_published(now),
            withdrawable: k.status != KeyStatus::Withdrawn,
            created: utc_minute(k.created_at),
            retired: utc_minute_or_dash(k.retired_at),
            publish_until: utc_minute_or_dash(k.publish_until),
            activates: utc_minute_or_dash(k.activate_at.filter(|_| k.status == KeyStatus::Next)),
        }
    }
}

/// An algorithm of the rotate form's select.
#[derive(Debug, Clone)]
struct AlgChoice {
    value: &'static str,
    selected: bool,
}

#[derive(Debug, Template)]
#[template(path = "console/admin_keys.html")]
struct KeysPage {
    nav: Nav,
    notice: Option<Notice>,
    rows: Vec<KeyRow>,
    algs: Vec<AlgChoice>,
    prepublish_secs: i64,
}

async fn render(
    state: &AppState,
    console: &Console,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let now = state.now();
    let mut keys = state.store.all_keys().await?;
    // Active first, then pending, then retired; newest first within each.
    let rank = |s: KeyStatus| match s {
        KeyStatus::Active => 0,
        KeyStatus::Next => 1,
        KeyStatus::Retired => 2,
        KeyStatus::Withdrawn => 3,
    };
    keys.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then(b.created_at.cmp(&a.created_at))
    });
    let page = KeysPage {
        nav: console.nav("keys"),
        notice,
        rows: keys.iter().map(|k| KeyRow::of(k, now)).collect(),
        algs: ALGS
            .iter()
            .map(|a| AlgChoice {
                value: a.as_str(),
                selected: *a == state.config.signing_alg,
            })
            .collect(),
        prepublish_secs: state.config.key_prepublish_secs,
    };
    Ok(console.page_with(status, &page))
}

async fn list(
    State(state): State<AppState>,
    Admin(console): Admin,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = query.map(|Query(p)| p).unwrap_or_default();
    let notice = Notice::done(params.get("done").map(String::as_str), DONE);
    render(&state, &console, notice, StatusCode::OK).await
}

async fn rotate(
    State(state): State<AppState>,
    Admin(console): Admin,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = change_form(&state, &console, &body, "/admin/keys").await?;
    let alg = form
        .get("alg")
        .ok_or_else(|| bad_form("Choose the new key's algorithm."))?
        .parse::<SigningAlg>()
        .map_err(|e| bad_form(&super::sentence(&e)))?;
    let switch = if form.get("now").is_some() {
        KeySwitch::Now
    } else {
        KeySwitch::AfterPrepublication
    };
    match state
        .key_admin()
        .rotate_keys(&console.user.username, alg, switch)
        .await
    {
        Ok(_) => Ok(see_other(match switch {
            KeySwitch::Now => "/admin/keys?done=rotated-now",
            KeySwitch::AfterPrepublication => "/admin/keys?done=rotated",
        })),
        Err(e) => {
            let (status, notice) = refused(e)?;
            render(&state, &console, Some(notice), status).await
        }
    }
}

async fn withdraw(
    State(state): State<AppState>,
    Admin(console): Admin,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = change_form(&state, &console, &body, "/admin/keys").await?;
    let kid = form
        .get("kid")
        .ok_or_else(|| bad_form("Choose the key to withdraw."))?;
    if form.get("confirm").is_none() {
        let notice = Notice::error(
            "Tick “I understand” to withdraw the key: every token it signed is refused from now \
             on.",
        );
        return render(&state, &console, Some(notice), StatusCode::BAD_REQUEST).await;
    }
    match state
        .key_admin()
        .withdraw_key(&console.user.username, kid)
        .await
    {
        Ok(_) => Ok(see_other("/admin/keys?done=withdrawn")),
        Err(e) => {
            let (status, notice) = refused(e)?;
            render(&state, &console, Some(notice), status).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authz_core::store::KeyPurpose;

    fn key(status: KeyStatus) -> StoredKey {
        StoredKey {
            kid: "k1".into(),
            alg: "ES256".into(),
            purpose: KeyPurpose::Access,
            private_key_enc: Vec::new(),
            public_jwk: String::new(),
            status,
            created_at: 1_700_000_000,
            retired_at: None,
            publish_until: None,
            activate_at: Some(1_700_003_600),
        }
    }

    #[test]
    fn rows_show_status_and_dates() {
        let r = KeyRow::of(&key(KeyStatus::Next), 0);
        assert_eq!((r.status, r.purpose, r.published), ("next", "access", true));
        assert_eq!(r.activates, "2023-11-14 23:13");
        assert_eq!(r.retired, "—");
        let mut retired = key(KeyStatus::Retired);
        retired.retired_at = Some(1_700_000_000);
        retired.publish_until = Some(1_700_000_100);
        let r = KeyRow::of(&retired, 1_700_000_050);
        assert!(r.published);
        assert_eq!(r.activates, "—");
        assert_eq!(r.publish_until, "2023-11-14 22:15");
        assert!(!KeyRow::of(&retired, 1_700_000_100).published);
        assert!(KeyRow::of(&key(KeyStatus::Active), 0).published);
        let gone = KeyRow::of(&key(KeyStatus::Withdrawn), 0);
        assert!(!gone.published && !gone.withdrawable);
        assert!(KeyRow::of(&retired, 1_700_000_100).withdrawable);
    }
}
