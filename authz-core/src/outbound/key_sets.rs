//! Remote JWK Sets: the keys of ID-JAG issuers and of `private_key_jwt` clients that publish a
//! `jwks_uri`, fetched through the guarded fetcher (`fetch.rs`: https only, the SSRF guard, no
//! redirects, size and time caps) and cached.
//!
//! Two caches of this one type, apart so neither can evict or starve the other:
//! - **trusted** ([`Source::Trusted`]): key sets the operator configured (ID-JAG issuers,
//!   administrators' clients), fetched outside the budgets of anonymous requests, so a flood of
//!   metadata-document lookups cannot make them unavailable;
//! - **client-named** ([`Source::ClientNamed`]): `jwks_uri`s that self-described clients
//!   (metadata documents, dynamic registration) name, fetched within those budgets, counted
//!   against the requesting address.
//!
//! A set is fresh for its `max-age`, at most [`KEY_SET_CACHE_SECS`]. After that it is **kept**:
//! served while a refresh runs in the background, and served on when the refresh fails, until
//! `AUTHZ_CIMD_KEY_SET_MAX_STALE_SECS` after its last successful fetch (a key host that is
//! down, or slow, does not take sign-ins down with it; a withdrawn key does not stay trusted
//! forever). Refreshes of one URL are bounded: at most one attempt every
//! [`RETRY_EVERY_SECS`] (background or in the request), and one fetch at a time (requests with
//! nothing to serve wait for the fetch under way instead of starting their own). A refusal by a
//! budget is not an attempt: one address over its budget cannot block a URL for the others.
//! Forced refetches (an unknown `kid`) are bounded by their caller
//! (`Cimd::key_set`: once a minute per URL).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::JwkSet;

use crate::outbound::fetch::Fetcher;

/// How long a fetched key set is fresh at most (less when its `Cache-Control` says so).
pub(crate) const KEY_SET_CACHE_SECS: i64 = 300;
/// A URL is fetched at most this often after a failure or for a refresh.
pub(crate) const RETRY_EVERY_SECS: i64 = 60;
/// URLs remembered per cache; past it the least recently fetched are forgotten.
const MAX_URLS: usize = 10_000;

/// Why a key set could not be had from its URL (said to the client, never holding a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySetError {
    NotAUrl,
    Unreachable(String),
    NotAJwkSet,
}

/// Whose key sets a cache holds (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Trusted,
    ClientNamed,
}

#[derive(Debug, Default)]
struct Entry {
    /// The last set fetched, when, and until when it is fresh.
    set: Option<(JwkSet, i64, i64)>,
    /// The last attempt to fetch (successful or not).
    attempted_at: Option<i64>,
    /// Why the last attempt failed (cleared by a success).
    error: Option<KeySetError>,
    /// Held while the URL is fetched in a request: one fetch at a time.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// What the cache has for a URL at a moment.
enum Cached {
    Fresh(JwkSet),
    Stale(JwkSet),
    Nothing,
}

/// One cache of remote key sets (module docs).
#[derive(Debug)]
pub struct KeySets {
    fetcher: Arc<Fetcher>,
    source: Source,
    max_stale_secs: i64,
    entries: Mutex<HashMap<String, Entry>>,
}

impl KeySets {
    pub fn new(fetcher: Arc<Fetcher>, source: Source, max_stale_secs: i64) -> Self {
        Self {
            fetcher,
            source,
            max_stale_secs,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn cached(&self, uri: &str, now: i64) -> Cached {
        match self.entries().get(uri).and_then(|e| e.set.as_ref()) {
            Some((set, _, fresh_until)) if now < *fresh_until => Cached::Fresh(set.clone()),
            Some((set, fetched_at, _)) if now < fetched_at + self.max_stale_secs => {
                Cached::Stale(set.clone())
            }
            _ => Cached::Nothing,
        }
    }

    /// The set to use when no fetch is made: fresh or stale, else why the last attempt failed.
    fn usable(&self, uri: &str, now: i64) -> Result<JwkSet, KeySetError> {
        match self.cached(uri, now) {
            Cached::Fresh(set) | Cached::Stale(set) => Ok(set),
            Cached::Nothing => Err(self
                .entries()
                .get(uri)
                .and_then(|e| e.error.clone())
                .unwrap_or_else(|| {
                    KeySetError::Unreachable("it failed moments ago; try again shortly".into())
                })),
        }
    }

    /// May `uri` be fetched now (no attempt within [`RETRY_EVERY_SECS`])? A yes records the
    /// attempt; the previous attempt's time is returned to give it back ([`Self::unclaim`]).
    fn claim(&self, uri: &str, now: i64) -> Option<Option<i64>> {
        let mut map = self.entries();
        let entry = map.entry(uri.to_owned()).or_default();
        let previous = entry.attempted_at;
        if previous.is_some_and(|t| now >= t && now < t + RETRY_EVERY_SECS) {
            return None;
        }
        entry.attempted_at = Some(now);
        Some(previous)
    }

    fn unclaim(&self, uri: &str, previous: Option<i64>) {
        if let Some(e) = self.entries().get_mut(uri) {
            e.attempted_at = previous;
        }
    }

    /// The entry's fetch lock (creating the entry; forgetting the least recently fetched
    /// entries past [`MAX_URLS`]).
    fn lock_of(&self, uri: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.entries();
        if map.len() >= MAX_URLS && !map.contains_key(uri) {
            let mut by_age: Vec<(i64, String)> = map
                .iter()
                .map(|(k, e)| (e.attempted_at.unwrap_or(i64::MIN), k.clone()))
                .collect();
            by_age.sort_unstable();
            for (_, k) in by_age.into_iter().take(MAX_URLS / 10 + 1) {
                map.remove(&k);
            }
        }
        Arc::clone(&map.entry(uri.to_owned()).or_default().fetching)
    }

    /// The key set at `uri` at `now` (`requester`: the address a client-named fetch is
    /// counted against; `force`: refetch now, for an unknown `kid`; bounded by the caller).
    pub async fn get(
        self: &Arc<Self>,
        uri: &str,
        now: i64,
        requester: Option<IpAddr>,
        force: bool,
    ) -> Result<JwkSet, KeySetError> {
        let url = url::Url::parse(uri).map_err(|_| KeySetError::NotAUrl)?;
        if !force {
            match self.cached(uri, now) {
                Cached::Fresh(set) => return Ok(set),
                Cached::Stale(set) => {
                    if let Some(previous) = self.claim(uri, now) {
                        let this = Arc::clone(self);
                        let uri = uri.to_owned();
                        tokio::spawn(async move {
                            if let Err(e) = this.fetch(&url, &uri, now, requester, previous).await {
                                tracing::warn!(%uri, error = ?e, "key set refresh failed; the stored set is used");
                            }
                        });
                    }
                    return Ok(set);
                }
                Cached::Nothing => {}
            }
        }
        // Nothing to serve (or a forced refetch): fetch in the request, one at a time.
        let lock = self.lock_of(uri);
        let _fetching = lock.lock().await;
        if !force && let Cached::Fresh(set) = self.cached(uri, now) {
            // Fetched while this request waited.
            return Ok(set);
        }
        let previous = if force {
            let mut map = self.entries();
            map.entry(uri.to_owned())
                .or_default()
                .attempted_at
                .replace(now)
        } else {
            match self.claim(uri, now) {
                Some(previous) => previous,
                None => return self.usable(uri, now),
            }
        };
        match self.fetch(&url, uri, now, requester, previous).await {
            Ok(set) => Ok(set),
            // A forced refetch that fails leaves the stored set in use.
            Err(e) => self.usable(uri, now).map_err(|_| e),
        }
    }

    /// Fetch and store (an attempt already claimed; `previous`: the attempt time to restore
    /// when a budget refuses).
    async fn fetch(
        &self,
        url: &url::Url,
        uri: &str,
        now: i64,
        requester: Option<IpAddr>,
        previous: Option<i64>,
    ) -> Result<JwkSet, KeySetError> {
        let fetched = match self.source {
            Source::Trusted => self.fetcher.fetch_trusted(url, now).await,
            Source::ClientNamed => self.fetcher.fetch(url, now, requester).await,
        };
        let result = match fetched {
            Err(e) if e.is_budget() => {
                // Nothing learnt about the URL: not an attempt.
                self.unclaim(uri, previous);
                return Err(KeySetError::Unreachable(e.to_string()));
            }
            Err(e) => Err(KeySetError::Unreachable(e.to_string())),
            Ok(fetched) => serde_json::from_slice::<JwkSet>(&fetched.body)
                .map_err(|_| KeySetError::NotAJwkSet)
                .map(|set| (set, fetched.max_age)),
        };
        let mut map = self.entries();
        let entry = map.entry(uri.to_owned()).or_default();
        match result {
            Ok((set, max_age)) => {
                let ttl = max_age
                    .unwrap_or(KEY_SET_CACHE_SECS)
                    .clamp(0, KEY_SET_CACHE_SECS);
                // A slower refresh started earlier never replaces a later one.
                if entry.set.as_ref().is_none_or(|(_, at, _)| *at <= now) {
                    entry.set = Some((set.clone(), now, now + ttl));
                }
                entry.error = None;
                Ok(set)
            }
            Err(e) => {
                entry.error = Some(e.clone());
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_sets() -> Arc<KeySets> {
        let cfg = crate::config::cimd::CimdConfig::default();
        let fetcher = Arc::new(Fetcher::new(cfg, Vec::new()));
        Arc::new(KeySets::new(fetcher, Source::Trusted, 3600))
    }

    fn set() -> JwkSet {
        JwkSet { keys: Vec::new() }
    }

    #[test]
    fn fresh_then_stale_then_gone() {
        let ks = key_sets();
        let uri = "https://idp.example/jwks";
        ks.lock_of(uri);
        ks.entries().get_mut(uri).unwrap().set = Some((set(), 1000, 1300));
        assert!(matches!(ks.cached(uri, 1299), Cached::Fresh(_)));
        assert!(matches!(ks.cached(uri, 1300), Cached::Stale(_)));
        assert!(matches!(ks.cached(uri, 4599), Cached::Stale(_)));
        assert!(matches!(ks.cached(uri, 4600), Cached::Nothing));
        ks.entries().get_mut(uri).unwrap().error = Some(KeySetError::NotAJwkSet);
        assert_eq!(ks.usable(uri, 4600).unwrap_err(), KeySetError::NotAJwkSet);
        assert!(ks.usable(uri, 4599).is_ok());
    }

    #[test]
    fn attempts_are_bounded_per_url_and_can_be_given_back() {
        let ks = key_sets();
        let uri = "https://idp.example/jwks";
        ks.lock_of(uri);
        assert_eq!(ks.claim(uri, 1000), Some(None));
        assert_eq!(ks.claim(uri, 1030), None, "within a minute");
        assert_eq!(ks.claim(uri, 1000 + RETRY_EVERY_SECS), Some(Some(1000)));
        // A budget refusal gives the attempt back.
        ks.unclaim(uri, Some(1000));
        assert_eq!(ks.claim(uri, 1000 + RETRY_EVERY_SECS + 1), Some(Some(1000)));
        // Another URL has its own bound.
        ks.lock_of("https://other.example/jwks");
        assert!(ks.claim("https://other.example/jwks", 1030).is_some());
    }

    #[tokio::test]
    async fn a_failed_first_fetch_is_not_repeated_within_the_bound() {
        let ks = key_sets();
        // Nothing listens there: the fetch fails (the loopback address is refused by the
        // SSRF guard before any connection).
        let uri = "https://127.0.0.1:9/jwks";
        let first = ks.get(uri, 1000, None, false).await.unwrap_err();
        assert!(matches!(&first, KeySetError::Unreachable(why) if why.contains("public address")));
        assert_eq!(ks.entries().get(uri).unwrap().attempted_at, Some(1000));
        // Within the bound, the remembered failure, without an attempt.
        assert_eq!(ks.get(uri, 1030, None, false).await.unwrap_err(), first);
        assert_eq!(ks.entries().get(uri).unwrap().attempted_at, Some(1000));
        // After it, a new attempt.
        ks.get(uri, 1000 + RETRY_EVERY_SECS, None, false)
            .await
            .unwrap_err();
        assert_eq!(
            ks.entries().get(uri).unwrap().attempted_at,
            Some(1000 + RETRY_EVERY_SECS)
        );
    }
}
