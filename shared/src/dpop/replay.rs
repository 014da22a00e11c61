//! Which DPoP proofs were used (RFC 9449 §11.1): a spent `(jkt, jti)` is remembered until its
//! proof could no longer be accepted (`iat` + window), keyed by 16 bytes of
//! SHA-256(thumbprint ‖ 0 ‖ `jti`) (fixed-size entries, nothing of the proof itself).
//!
//! * **In this process** ([`ReplayCache`]): bounded in count. Expired entries are reclaimed
//!   first; when the cache is still full, the new proof is refused ([`Spend::Full`], with the
//!   seconds until the oldest entry expires). A live entry is never evicted: evicting the oldest
//!   let anyone flush a captured proof back in with enough requests of their own (issue 24).
//! * **In Redis** (`AUTHZ_REDIS_URL` / `MCP_REDIS_URL`, [`ReplayStore::shared`]): one
//!   `SET <prefix>:dpop:<key> 1 NX EX <ttl>` per proof on the rate limits' connection, so a
//!   proof used at one replica is refused at every other. Redis's own memory policy must not
//!   evict these keys (`noeviction` or `volatile-*` with room to spare). When Redis does not
//!   answer, the in-process cache stands in (logged loudly, at most every
//!   [`LOUD_EVERY_SECS`] seconds): a proof is then still used once per replica.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_lc_rs::digest;

use super::Jkt;

/// A Redis error line is logged at most this often.
pub const LOUD_EVERY_SECS: i64 = 10;

/// What is remembered of a proof: its key and until when (unix seconds, exclusive).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    key: [u8; 16],
    expires: i64,
}

impl Seen {
    pub(crate) fn of(jkt: &Jkt, jti: &str, expires: i64) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&jkt.0);
        ctx.update(b"\0");
        ctx.update(jti.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&ctx.finish().as_ref()[..16]);
        Self { key, expires }
    }
}

/// The outcome of spending a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spend {
    /// Not seen before: now remembered.
    First,
    /// Seen, and not expired: a replay.
    Replayed,
    /// Full of live entries: refused, nothing forgotten; the oldest expires in `retry_after`.
    Full { retry_after: u64 },
}

/// The in-process replay cache: at most `max` live entries.
#[derive(Debug)]
pub struct ReplayCache {
    max: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// Key → expiry.
    by_key: HashMap<[u8; 16], i64>,
    /// Expiry → the keys expiring then (expiries lie within two `iat` windows of now, so
    /// there are few buckets; the first is the next to go).
    by_expiry: BTreeMap<i64, Vec<[u8; 16]>>,
}

impl ReplayCache {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            inner: Mutex::new(Entries::default()),
        }
    }

    /// Remember `seen` at `now` unless it is remembered already, or the cache holds `max`
    /// live entries (expired ones are reclaimed first).
    pub(crate) fn first_use(&self, seen: &Seen, now: i64) -> Spend {
        // A poisoned lock only means another thread panicked mid-update; the maps are still
        // usable (worst case an entry too many, reclaimed when it expires).
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Entries { by_key, by_expiry } = &mut *guard;
        while let Some(bucket) = by_expiry.first_entry() {
            if *bucket.key() > now {
                break;
            }
            let (expiry, keys) = bucket.remove_entry();
            for k in keys {
                if by_key.get(&k) == Some(&expiry) {
                    by_key.remove(&k);
                }
            }
        }
        if by_key.contains_key(&seen.key) {
            return Spend::Replayed;
        }
        if by_key.len() >= self.max {
            let oldest = by_expiry.keys().next().copied().unwrap_or(now + 1);
            return Spend::Full {
                retry_after: (oldest - now).max(1).unsigned_abs(),
            };
        }
        by_key.insert(seen.key, seen.expires);
        by_expiry.entry(seen.expires).or_default().push(seen.key);
        Spend::First
    }

    /// Entries held (live, or expired and not yet reclaimed).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a server keeps spent proofs: this process, or Redis shared by its replicas.
#[derive(Debug)]
pub struct ReplayStore {
    /// The store without Redis, and Redis's stand-in when it does not answer.
    local: ReplayCache,
    /// The rate limits' counters when they are in Redis.
    #[cfg(feature = "limits")]
    shared: Option<redis_side::Shared>,
}

impl ReplayStore {
    /// In this process, at most `max` live entries.
    pub fn local(max: usize) -> Self {
        Self {
            local: ReplayCache::new(max),
            #[cfg(feature = "limits")]
            shared: None,
        }
    }

    /// Where `counters` are: in Redis (on their connection, under their prefix) when they are,
    /// else in this process; `max` bounds the in-process cache either way.
    #[cfg(feature = "limits")]
    pub fn shared(counters: &crate::limits::Counters, max: usize) -> Self {
        Self {
            shared: counters
                .is_shared()
                .then(|| redis_side::Shared::new(counters.clone())),
            ..Self::local(max)
        }
    }

    /// Are spent proofs shared with other replicas?
    pub fn is_shared(&self) -> bool {
        #[cfg(feature = "limits")]
        if self.shared.is_some() {
            return true;
        }
        false
    }

    pub(crate) async fn first_use(&self, seen: &Seen, now: i64) -> Spend {
        #[cfg(feature = "limits")]
        if let Some(shared) = &self.shared
            && let Some(spend) = shared.first_use(seen, now).await
        {
            return spend;
        }
        self.local.first_use(seen, now)
    }
}

#[cfg(feature = "limits")]
mod redis_side {
    use std::sync::atomic::{AtomicI64, Ordering};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    use super::{LOUD_EVERY_SECS, Seen, Spend};

    /// Redis keys outlive their proofs by this much, so replicas whose clocks differ by a few
    /// seconds agree.
    const CLOCK_SLACK_SECS: i64 = 5;

    #[derive(Debug)]
    pub(super) struct Shared {
        counters: crate::limits::Counters,
        last_loud: AtomicI64,
    }

    impl Shared {
        pub(super) fn new(counters: crate::limits::Counters) -> Self {
            Self {
                counters,
                last_loud: AtomicI64::new(i64::MIN),
            }
        }

        /// `SET … NX EX`: `None` when Redis did not answer (the caller falls back).
        pub(super) async fn first_use(&self, seen: &Seen, now: i64) -> Option<Spend> {
            let ttl = (seen.expires - now).max(1) + CLOCK_SLACK_SECS;
            let key = B64.encode(seen.key);
            match self
                .counters
                .set_once("dpop", &key, ttl.unsigned_abs(), now)
                .await?
            {
                Ok(true) => Some(Spend::First),
                Ok(false) => Some(Spend::Replayed),
                Err(cause) => {
                    self.loud(now, &cause);
                    None
                }
            }
        }

        fn loud(&self, now: i64, cause: &str) {
            let last = self.last_loud.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= LOUD_EVERY_SECS
                && self
                    .last_loud
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::error!(
                    cause,
                    "DPoP REPLAY CACHE NOT SHARED: Redis is unreachable; used proofs are \
                     remembered by this replica only until it answers again"
                );
            }
        }
    }
}

#[cfg(all(test, feature = "limits"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// With Redis configured but not answering, this process's cache stands in: a proof is
    /// still used once here.
    #[tokio::test]
    async fn without_redis_the_local_cache_stands_in() {
        // A port nothing listens on.
        let counters = crate::limits::Counters::new(Some("redis://127.0.0.1:1"), "t").unwrap();
        let store = ReplayStore::shared(&counters, 10);
        assert!(store.is_shared());
        let seen = Seen::of(&Jkt([3; 32]), "j", 1_000 + 61);
        assert_eq!(store.first_use(&seen, 1_000).await, Spend::First);
        assert_eq!(store.first_use(&seen, 1_001).await, Spend::Replayed);
        // In-process counters: in-process replay cache.
        let local = ReplayStore::shared(&crate::limits::Counters::new(None, "t").unwrap(), 10);
        assert!(!local.is_shared());
    }
}
