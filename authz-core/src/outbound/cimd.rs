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
use crate::outbound::key_sets::KeySets;
pub use crate::outbound::key_sets::Source;

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
    /// (whose cache, key-set URL) → when it was last refetched for an unknown `kid`: per
    /// cache, so a self-described client naming a trusted party's `jwks_uri` cannot spend the
    /// trusted set's refetch (and hold back that party's key rotation).
    refetched: Mutex<HashMap<(Source, String), i64>>,
}

const MAX_REMEMBERED_FAILURES: usize = 10_000;

/// An unknown `kid` refetches a key set a client names at most this often per URL (a key
/// rotated at the client is picked up at once; a stream of bogus `kid`s costs one fetch a
/// minute).
pub const REFETCH_EVERY_SECS: i64 = 60;

/// The same for a trusted set (an administrator's client, an ID-JAG issuer). Anyone who knows
/// such a client's id (it is no secret) can send an assertion with a bogus `kid` before the
/// party's first one with its new key, so the spent refetch must come back within seconds: a
/// rotation is delayed by at most this, at the cost of a fetch of an operator-chosen URL every
/// few seconds at worst.
pub const TRUSTED_REFETCH_EVERY_SECS: i64 = 5;

/// The refetch records kept at most (`Cimd::key_set`).
const MAX_REFETCH_RECORDS: usize = 1024;

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

    /// The key set at `uri` for a JWT whose header names `kid`: cached (the rules of
    /// `key_sets.rs`); a `kid` the cached set lacks refetches it (the party may have rotated
    /// its keys since), at most once every [`REFETCH_EVERY_SECS`] per URL, so a stream of
    /// bogus `kid`s costs one fetch a minute. `whose`: a set the operator trusts (an ID-JAG
    /// issuer's, an administrator's client's: outside the budgets anonymous requests spend) or
    /// one a self-described client names (within them, counted against the requesting address).
    pub(crate) async fn key_set(
        &self,
        uri: &str,
        kid: Option<&str>,
        whose: Source,
        now: i64,
    ) -> Result<JwkSet, KeySetError> {
        let (cache, requester) = match whose {
            Source::Trusted => (&self.trusted_keys, None),
            Source::ClientNamed => (&self.client_keys, crate::outbound::budget::requester()),
        };
        let set = cache.get(uri, now, requester, false).await?;
        match kid {
            Some(kid) if set.find(kid).is_none() && self.may_refetch(whose, uri, now) => {
                cache.get(uri, now, requester, true).await
            }
            _ => Ok(set),
        }
    }

    /// May `whose` cache refetch the key set at `uri` now for an unknown `kid`? A yes spends
    /// the chance.
    fn may_refetch(&self, whose: Source, uri: &str, now: i64) -> bool {
        let Ok(mut map) = self.refetched.lock() else {
            return false;
        };
        let every = match whose {
            Source::Trusted => TRUSTED_REFETCH_EVERY_SECS,
            Source::ClientNamed => REFETCH_EVERY_SECS,
        };
        if map.len() >= MAX_REFETCH_RECORDS {
            map.retain(|_, t| now < *t + REFETCH_EVERY_SECS);
            // Still full (that many URLs within a minute): forget them all rather than grow;
            // at worst each URL gets one more refetch, which its fetch budgets still bound.
            if map.len() >= MAX_REFETCH_RECORDS {
                map.clear();
            }
        }
        let key = (whose, uri.to_owned());
        match map.get(&key) {
            Some(t) if now < *t + every && now >= *t => false,
            _ => {
                map.insert(key, now);
                true
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refetches_for_unknown_kids_are_rate_limited() {
        let cimd = Cimd::new(&Default::default(), Vec::new());
        let uri = "https://idp.test/rate-limit-unit-test";
        let c = Source::ClientNamed;
        assert!(cimd.may_refetch(c, uri, 1000));
        assert!(!cimd.may_refetch(c, uri, 1000 + REFETCH_EVERY_SECS / 2));
        assert!(cimd.may_refetch(c, uri, 1000 + REFETCH_EVERY_SECS));
        assert!(
            cimd.may_refetch(c, "https://idp.test/another", 1001),
            "per URL"
        );
        // A trusted set's refetch comes back within seconds.
        let t = Source::Trusted;
        assert!(cimd.may_refetch(t, uri, 3000));
        assert!(!cimd.may_refetch(t, uri, 3000 + TRUSTED_REFETCH_EVERY_SECS - 1));
        assert!(cimd.may_refetch(t, uri, 3000 + TRUSTED_REFETCH_EVERY_SECS));
        // Per cache: a client-named refetch of the same URL spends nothing of the trusted one.
        let uri = "https://idp.test/shared";
        assert!(cimd.may_refetch(Source::ClientNamed, uri, 2000));
        assert!(cimd.may_refetch(t, uri, 2000));
    }
}
