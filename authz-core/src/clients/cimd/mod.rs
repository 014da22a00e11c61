//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; the MCP
//! authorization spec 2026-07-28 prefers them to RFC 7591 registration): a `client_id` that is
//! an https URL with a path names a document that describes the client, fetched by this server.
//!
//! `resolve` is the one entry point, called wherever a client id arrives (`/authorize`,
//! `/token`, `/revoke`): a stored row whose fetch is still fresh is used as it is; otherwise the
//! document is fetched (`fetch.rs`, the guarded fetcher), validated (`document.rs`) and stored
//! as a client of kind `metadata_document`, so consents, codes and refresh tokens work as for
//! any client. Freshness follows the document's caching headers, clamped to
//! [`min_cache_secs`, `max_cache_secs`]; when a refetch fails, the stored document is used
//! until `max_cache_secs` after its last successful fetch. A failure is remembered for
//! `negative_cache_secs` (per process), so a bad URL cannot be used to hammer its host; a
//! refusal by a fetch budget (`budget.rs`) is not a failure of the URL and is not remembered
//! (one address over its budget cannot block a URL for everybody else).
//!
//! Every host rule (deny-list, allow-list, allowed private hosts, per-host budget) sees the
//! host normalized once, by `host::normalize`.

mod document;

/// The resolver's memory between requests lives with the fetcher (`outbound::cimd`).
pub use crate::outbound::cimd as resolver;

use crate::events::kinds;
use std::sync::Arc;

use crate::clients::ClientServices;
pub use crate::config::cimd::{CimdConfig, HostVerdict};
use crate::error::{Error, Result};
use crate::outbound::{budget, host};
use crate::store::{AuditEvent, Client, Outcome, Registration};
pub use resolver::{Cimd, Rejected};

/// Is `client_id` meant as a metadata-document URL (a URL with a host and a path beyond `/`)?
/// Only https ones are fetched; an http one is refused with that reason rather than being
/// reported as an unknown client.
pub(crate) fn is_document_url(client_id: &str) -> bool {
    (client_id.starts_with("https://") || client_id.starts_with("http://"))
        && url::Url::parse(client_id).is_ok_and(|u| u.path() != "/" && u.host().is_some())
}

/// The client `client_id` names, resolved through its metadata document when it is one (see
/// the module docs); other ids pass through to storage. `Ok(Err(_))`: a document URL whose
/// document was refused.
pub async fn resolve(
    svc: ClientServices<'_>,
    client_id: &str,
) -> Result<std::result::Result<Option<Arc<Client>>, Rejected>> {
    resolve_with(svc, client_id, false).await
}

/// Fetch a metadata-document client's document again now, whatever its freshness and any
/// remembered failure (`authz client refresh <url>`).
pub async fn refresh(
    svc: ClientServices<'_>,
    client_id: &str,
) -> Result<std::result::Result<Option<Arc<Client>>, Rejected>> {
    if !is_document_url(client_id) {
        return Err(Error::Invalid(format!(
            "{client_id:?} is not a metadata-document URL"
        )));
    }
    svc.cimd.forget_failure(client_id);
    resolve_with(svc, client_id, true).await
}

async fn resolve_with(
    svc: ClientServices<'_>,
    client_id: &str,
    force: bool,
) -> Result<std::result::Result<Option<Arc<Client>>, Rejected>> {
    let now = svc.now();
    let stored = svc.clients.get(svc.store, client_id, now).await?;
    let cfg = &svc.config.cimd;
    if !cfg.enabled || !is_document_url(client_id) {
        return Ok(Ok(stored.map(|(c, _)| c)));
    }
    let stored = stored.map(|(c, _)| c);
    // The trust policy first: a denied host names no client, stored or not.
    let Some(host) = host_of(client_id) else {
        let reason = "the client_id URL's host is not a valid host name".to_owned();
        return Ok(Err(rejected(svc, client_id, reason, now).await));
    };
    if cfg.verdict(&host) == HostVerdict::Denied
        && stored
            .as_ref()
            .is_none_or(|c| c.registration == Registration::MetadataDocument)
    {
        let reason = format!("documents published at {host} are not accepted by this server");
        return Ok(Err(rejected(svc, client_id, reason, now).await));
    }
    match &stored {
        // An administrator's (or registration's) client of that id: not ours to refetch.
        Some(c) if c.registration != Registration::MetadataDocument => return Ok(Ok(stored)),
        Some(c) if !force && c.metadata_expires_at.is_some_and(|t| now < t) => {
            return Ok(Ok(stored));
        }
        _ => {}
    }
    // A stored document outlives a failed refetch until its clamp runs out (not for an
    // operator's explicit refresh, who must learn that it failed).
    let stale = stored
        .as_ref()
        .filter(|_| !force)
        .filter(|c| {
            c.metadata_fetched_at
                .is_some_and(|t| now < t + cfg.max_cache_secs)
        })
        .map(Arc::clone);
    if let Some(reason) = svc.cimd.remembered_failure(client_id, now) {
        return Ok(stale.map(Some).ok_or(Rejected(reason)));
    }
    let (settings, max_age) = match fetch_and_validate(svc, client_id, now).await {
        Ok(ok) => ok,
        Err((reason, remember)) => {
            if remember {
                let until = now + cfg.negative_cache_secs;
                svc.cimd.remember_failure(client_id, &reason, until, now);
            }
            if let Some(c) = stale {
                tracing::warn!(client = %client_id, %reason, "metadata refetch failed; using the stored document");
                return Ok(Ok(Some(c)));
            }
            return Ok(Err(rejected(svc, client_id, reason, now).await));
        }
    };
    let fresh_for = max_age
        .unwrap_or(cfg.min_cache_secs)
        .clamp(cfg.min_cache_secs, cfg.max_cache_secs);
    let client = Client {
        id: client_id.to_owned(),
        secret_hash: None,
        settings,
        revoked_at: None,
        created_at: stored.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
        metadata_fetched_at: Some(now),
        metadata_expires_at: Some(now + fresh_for),
        last_used_at: stored.as_ref().and_then(|c| c.last_used_at),
    };
    if !svc.store.put_metadata_client(&client).await? {
        // Another kind of client holds the id (created meanwhile): use what is stored.
        return Ok(Ok(svc.clients.load(svc.store, client_id, now).await?));
    }
    svc.clients.invalidate(client_id);
    Ok(Ok(svc.clients.load(svc.store, client_id, now).await?))
}

/// Audit a refusal (`client.metadata_rejected`, with the reason and host) and return it.
async fn rejected(svc: ClientServices<'_>, client_id: &str, reason: String, now: i64) -> Rejected {
    let ev = AuditEvent::new(now, kinds::CLIENT_METADATA_REJECTED, Outcome::Failure)
        .client(client_id)
        .details(serde_json::json!({ "reason": reason, "host": host_of(client_id) }));
    svc.audit(ev).await;
    Rejected(reason)
}

/// Fetch (within the budgets of the requesting address: `budget::requester`) and validate;
/// a failure says why, and whether it is the URL's to be remembered (not a budget's refusal).
async fn fetch_and_validate(
    svc: ClientServices<'_>,
    client_id: &str,
    now: i64,
) -> std::result::Result<(crate::store::ClientSettings, Option<i64>), (String, bool)> {
    let url = url::Url::parse(client_id)
        .map_err(|e| (format!("the client_id is not a URL: {e}"), true))?;
    let fetched = svc
        .cimd
        .fetcher()
        .fetch(&url, now, budget::requester())
        .await
        .map_err(|e| (e.to_string(), !e.is_budget()))?;
    let settings =
        document::validate(svc.config, client_id, &fetched.body).map_err(|r| (r, true))?;
    Ok((settings, fetched.max_age))
}

/// The host a metadata-document client's id names, normalized (`host::normalize`): what the
/// trust policy judges, the consent page shows and the audit log records.
pub fn host_of(client_id: &str) -> Option<String> {
    url::Url::parse(client_id)
        .ok()
        .and_then(|u| host::of_url(&u))
}

/// Who vouches for `client`'s name: the host of its metadata document's URL, for a
/// metadata-document client; `None` for every other kind (shown on consent, device and console
/// pages).
pub fn document_host(client: &crate::store::Client) -> Option<String> {
    (client.registration == crate::store::Registration::MetadataDocument)
        .then(|| host_of(&client.id))
        .flatten()
}

impl From<Rejected> for Error {
    fn from(r: Rejected) -> Self {
        Error::invalid_client(format!("the client metadata document was refused: {}", r.0))
    }
}

/// Is `client` vouched for (shown without the "unverified application" badge)? Clients an
/// administrator created, and metadata-document clients whose host is allow-listed.
pub fn is_verified(cfg: &CimdConfig, client: &Client) -> bool {
    match client.registration {
        Registration::Admin => true,
        Registration::MetadataDocument => {
            host_of(&client.id).is_some_and(|h| cfg.verdict(&h) == HostVerdict::Verified)
        }
        Registration::Dynamic => false,
    }
}
