//! What the metadata-document resolver (`clients::cimd`) keeps between requests: the guarded
//! fetcher (with its budgets), per process the failures remembered for `negative_cache_secs`,
//! and the remote key sets (`key_sets.rs`): the operator's trusted ones and the ones clients
//! name, apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::JwkSet;

use crate::config::cimd::CimdConfig;
use crate::outbound::fetch::Fetcher;
pub use crate::outbound::key_sets::KeySetError;
use crate::outbound::key_sets::{KeySets, Source};

/// The resolver: the guarded fetcher, the key-set caches and the per-process memory of
/// failures.
#[derive(Debug)]
pub struct Cimd {
    fetcher: Arc<Fetcher>,
    /// ID-JAG issuers' and administrators' clients' key sets: outside the fetch budgets.
    trusted_keys: Arc<KeySets>,
    /// Key sets self-described clients name: within the fetch budgets.
    client_keys: Arc<KeySets>,
    /// URL → (reason, until).
    failures: Mutex<HashMap<String, (String, i64)>>,
    /// Key-set URL → when it was last refetched for an unknown `kid`.
    refetched: Mutex<HashMap<String, i64>>,
}

const MAX_REMEMBERED_FAILURES: usize = 10_000;

impl Cimd {
    pub fn new(cfg: &CimdConfig, roots: Vec<reqwest::Certificate>) -> Self {
        let fetcher = Arc::new(Fetcher::new(cfg.clone(), roots));
        let keys = |source| {
            Arc::new(KeySets::new(
                Arc::clone(&fetcher),
                source,
                cfg.key_set_max_stale_secs,
            ))
        };
        Self {
            trusted_keys: keys(Source::Trusted),
            client_keys: keys(Source::ClientNamed),
            fetcher,
            failures: Mutex::new(HashMap::new()),
            refetched: Mutex::new(HashMap::new()),
        }
    }

    /// May the key set at `uri` be refetched now for an unknown `kid` (at most once every
    /// `every` seconds per URL)? A yes spends the chance.
    pub fn may_refetch_key_set(&self, uri: &str, now: i64, every: i64) -> bool {
        let Ok(mut map) = self.refetched.lock() else {
            return false;
        };
        if map.len() >= 1024 {
            map.retain(|_, t| now < *t + every);
        }
        match map.get(uri) {
            Some(t) if now < *t + every && now >= *t => false,
            _ => {
                map.insert(uri.to_owned(), now);
                true
            }
        }
    }

    /// A key set the operator trusts (an ID-JAG issuer's, an administrator's client's
    /// `jwks_uri`): cached, served stale while its host fails, fetched outside the budgets
    /// (`key_sets.rs`); `force`: refetch now (an unknown `kid`, bounded by the caller).
    pub async fn trusted_key_set(
        &self,
        uri: &str,
        now: i64,
        force: bool,
    ) -> Result<JwkSet, KeySetError> {
        self.trusted_keys.get(uri, now, None, force).await
    }

    /// A key set a self-described client names (its metadata document's or its registration's
    /// `jwks_uri`): the same cache rules, fetched within the budgets of the requesting address.
    pub async fn client_key_set(
        &self,
        uri: &str,
        now: i64,
        force: bool,
    ) -> Result<JwkSet, KeySetError> {
        let requester = crate::outbound::budget::requester();
        self.client_keys.get(uri, now, requester, force).await
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    pub(crate) fn remembered_failure(&self, url: &str, now: i64) -> Option<String> {
        let map = self.failures.lock().ok()?;
        map.get(url)
            .filter(|(_, until)| now < *until)
            .map(|(r, _)| r.clone())
    }

    pub(crate) fn forget_failure(&self, url: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(url);
        }
    }

    pub(crate) fn remember_failure(&self, url: &str, reason: &str, until: i64, now: i64) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() >= MAX_REMEMBERED_FAILURES {
                map.retain(|_, (_, u)| now < *u);
                if map.len() >= MAX_REMEMBERED_FAILURES {
                    map.clear();
                }
            }
            map.insert(url.to_owned(), (reason.to_owned(), until));
        }
    }
}

/// Why a metadata document was not accepted (shown to the user on `/authorize`, to the
/// client as `invalid_client` elsewhere, and audited as `client.metadata_rejected`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);
