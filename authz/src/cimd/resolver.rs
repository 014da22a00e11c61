//! What the metadata-document resolver keeps between requests: the guarded fetcher (with its
//! budgets), per process the failures remembered for `negative_cache_secs`, and the
//! `private_key_jwt` key sets fetched from `jwks_uri`s (briefly).

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::jwk::JwkSet;

use super::config::CimdConfig;
use super::fetch::Fetcher;

/// The resolver: the guarded fetcher and the per-process memory of failures.
#[derive(Debug)]
pub struct Cimd {
    fetcher: Fetcher,
    /// `private_key_jwt` key sets fetched from a `jwks_uri`: URL → (set, until).
    key_sets: Mutex<HashMap<String, (JwkSet, i64)>>,
    /// URL → (reason, until).
    failures: Mutex<HashMap<String, (String, i64)>>,
    /// Key-set URL → when it was last refetched for an unknown `kid`.
    refetched: Mutex<HashMap<String, i64>>,
}

const MAX_REMEMBERED_FAILURES: usize = 10_000;
/// How long a fetched key set is used at most (less when its `Cache-Control` says so).
pub const KEY_SET_CACHE_SECS: i64 = 300;

/// Why a key set could not be had from its URL (said to the client, never holding a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetError {
    NotAUrl,
    Unreachable(String),
    NotAJwkSet,
}

impl Cimd {
    pub fn new(cfg: &CimdConfig, roots: Vec<reqwest::Certificate>) -> Self {
        Self {
            fetcher: Fetcher::new(cfg.clone(), roots),
            failures: Mutex::new(HashMap::new()),
            key_sets: Mutex::new(HashMap::new()),
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

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    pub(super) fn remembered_failure(&self, url: &str, now: i64) -> Option<String> {
        let map = self.failures.lock().ok()?;
        map.get(url)
            .filter(|(_, until)| now < *until)
            .map(|(r, _)| r.clone())
    }

    /// A key set fetched from `uri` that may still be used at `now`.
    pub fn cached_key_set(&self, uri: &str, now: i64) -> Option<JwkSet> {
        let map = self.key_sets.lock().ok()?;
        map.get(uri)
            .filter(|(_, until)| now < *until)
            .map(|(s, _)| s.clone())
    }

    /// Fetch the key set at `uri` through the guarded fetcher (https only, the SSRF guard, no
    /// redirects, size and time caps, per-host budget) and cache it for its `max-age`, at most
    /// [`KEY_SET_CACHE_SECS`]. The one way `private_key_jwt` and ID-JAG get remote keys.
    pub async fn fetch_key_set(&self, uri: &str, now: i64) -> Result<JwkSet, KeySetError> {
        let url = url::Url::parse(uri).map_err(|_| KeySetError::NotAUrl)?;
        let fetched = self
            .fetcher
            .fetch(&url, now)
            .await
            .map_err(|e| KeySetError::Unreachable(e.to_string()))?;
        let set: JwkSet =
            serde_json::from_slice(&fetched.body).map_err(|_| KeySetError::NotAJwkSet)?;
        let ttl = fetched
            .max_age
            .unwrap_or(KEY_SET_CACHE_SECS)
            .clamp(0, KEY_SET_CACHE_SECS);
        self.remember_key_set(uri, &set, now + ttl);
        Ok(set)
    }

    pub fn remember_key_set(&self, uri: &str, set: &JwkSet, until: i64) {
        if let Ok(mut map) = self.key_sets.lock() {
            if map.len() >= MAX_REMEMBERED_FAILURES {
                map.clear();
            }
            map.insert(uri.to_owned(), (set.clone(), until));
        }
    }

    pub(super) fn forget_failure(&self, url: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(url);
        }
    }

    pub(super) fn remember_failure(&self, url: &str, reason: &str, until: i64, now: i64) {
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
