//! Rate limits whose counters live where the deployment needs them: in this process (the
//! single-node default, zero setup, [`crate::ratelimit::RateLimiter`]) or in **Redis**, where
//! every replica counts against the same budget.
//!
//! - **One round trip, atomic.** A check is `MULTI INCR key EXPIRE key … EXEC` on a key named
//!   after the limit, the caller's key and the current fixed window (`now / window`, from the
//!   injected clock), so two replicas incrementing at once both see the true count.
//! - **Fail open, loudly.** Rate limits protect capacity, not identity: when Redis does not
//!   answer within [`REDIS_TIMEOUT`] the request is let through (sign-in never fails because
//!   Redis is down), an error line is logged (at most every [`LOUD_EVERY_SECS`] seconds, with
//!   the count) and [`Counters::fail_open_count`] goes up; `/readyz` reports Redis as down.
//!   After a failure Redis is left alone for [`BACKOFF_SECS`] (checks fail open at once), so a
//!   Redis that hangs instead of refusing costs each request nothing, not a timeout.
//!   Lockouts, which do protect identity, live in the database, not here.
//! - **Keys.** Callers key limits by client address ([`Limiter::check_ip`], IPv6 by /64) and
//!   by authenticated caller ([`Limiter::check`]), each limit with its own rate.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::ratelimit::{IpBucket, RateLimiter};

/// The longest a check waits for Redis before failing open.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// The fail-open error line is logged at most this often (the count says how many were let
/// through in between).
pub const LOUD_EVERY_SECS: i64 = 10;
/// After Redis failed, checks skip it (and fail open) for this long before trying again.
pub const BACKOFF_SECS: i64 = 1;
/// Every limit here counts per minute.
pub const WINDOW_SECS: i64 = 60;

/// A configuration error (a Redis URL that does not parse).
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct LimitsError(String);

/// A Redis URL is `redis://` or `rediss://` (TLS) and parses (checked when configuration is
/// loaded, so a typo stops the server at start instead of silently failing open).
pub fn check_url(url: &str) -> Result<(), LimitsError> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(LimitsError(
            "the URL must start with redis:// or rediss://".into(),
        ));
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| LimitsError(e.to_string()))
}

/// Where this process keeps its rate-limit counters.
#[derive(Clone, Debug)]
pub enum Counters {
    /// In this process: each replica has its own budget.
    Local,
    /// In Redis: one budget across replicas.
    Redis(Arc<RedisCounters>),
}

/// The Redis connection (reconnecting on its own) and the fail-open bookkeeping.
pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
    fail_open: AtomicU64,
    last_loud: AtomicI64,
    /// Until when (unix seconds) checks skip Redis after a failure.
    down_until: AtomicI64,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .field("fail_open", &self.fail_open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Counters {
    /// `url = None`: in-process counters. Otherwise Redis at `url` (connected lazily, so a
    /// server starts while Redis is down and uses it once it is up); `prefix` namespaces the
    /// keys (`authz`, `mcp`).
    pub fn new(url: Option<&str>, prefix: &str) -> Result<Self, LimitsError> {
        let Some(url) = url else {
            return Ok(Self::Local);
        };
        let client = redis::Client::open(url).map_err(|e| LimitsError(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| LimitsError(e.to_string()))?;
        Ok(Self::Redis(Arc::new(RedisCounters {
            conn,
            prefix: prefix.to_owned(),
            fail_open: AtomicU64::new(0),
            last_loud: AtomicI64::new(i64::MIN),
            down_until: AtomicI64::new(i64::MIN),
        })))
    }

    /// A limit of `per_minute` events per key; `0` turns it off (`None`).
    pub fn limiter(&self, name: &'static str, per_minute: u32) -> Option<Limiter> {
        (per_minute > 0).then(|| Limiter {
            name,
            limit: per_minute,
            inner: match self {
                Self::Local => Inner::Local(RateLimiter::new(per_minute, WINDOW_SECS)),
                Self::Redis(r) => Inner::Redis(Arc::clone(r)),
            },
        })
    }

    /// Whether the counters can be reached (`None`: in-process, nothing to reach).
    pub async fn ping(&self) -> Option<Result<(), String>> {
        let Self::Redis(r) = self else {
            return None;
        };
        let mut conn = r.conn.clone();
        let pong = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await;
        Some(match pong {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", REDIS_TIMEOUT.as_millis())),
        })
    }

    /// The whole `/readyz` answer of a server: its database (the error logged), the keys it
    /// holds, and, when these counters are in Redis, Redis (with the fail-open count): 200
    /// when all are ready, else 503, with the JSON body that says which.
    pub async fn readyz(
        &self,
        database: Result<(), impl std::fmt::Display>,
        keys: crate::probe::Check,
    ) -> (u16, serde_json::Value) {
        use crate::probe::{Check, readiness};
        if let Err(e) = &database {
            tracing::error!(error = %e, "readiness: database unavailable");
        }
        let mut checks = vec![Check::reachable("database", database.is_ok()), keys];
        checks.extend(self.readiness().await);
        let (ready, mut body) = readiness(&checks);
        self.annotate(&mut body);
        (if ready { 200 } else { 503 }, body)
    }

    /// The `/readyz` check of the counters' store: `None` when in-process (nothing to reach);
    /// an unreachable Redis is logged.
    pub async fn readiness(&self) -> Option<crate::probe::Check> {
        let up = self.ping().await?;
        if let Err(e) = &up {
            tracing::error!(error = %e, "readiness: Redis unavailable (rate limits fail open)");
        }
        Some(crate::probe::Check::reachable("redis", up.is_ok()))
    }

    /// Add the fail-open metric to a `/readyz` body (when counters are in Redis).
    pub fn annotate(&self, body: &mut serde_json::Value) {
        if let (Self::Redis(_), Some(map)) = (self, body.as_object_mut()) {
            map.insert(
                "rate_limit_checks_failed_open".into(),
                self.fail_open_count().into(),
            );
        }
    }

    /// Checks let through because Redis did not answer (the fail-open metric).
    pub fn fail_open_count(&self) -> u64 {
        match self {
            Self::Local => 0,
            Self::Redis(r) => r.fail_open.load(Ordering::Relaxed),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Redis(_))
    }

    /// Mark `key` of `name` as used, on this connection and under this prefix:
    /// `SET <prefix>:<name>:<key> 1 NX EX <ttl_secs>`, one round trip, atomic across replicas
    /// (DPoP `jti`s, `shared::dpop::replay`). `Some(Ok(true))`: it was not set before (now it
    /// is); `Some(Ok(false))`: it was; `Some(Err(cause))`: Redis did not answer in time (it is
    /// then left alone for [`BACKOFF_SECS`], like the limits); `None`: in-process counters,
    /// nothing to share.
    pub async fn set_once(
        &self,
        name: &str,
        key: &str,
        ttl_secs: u64,
        now: i64,
    ) -> Option<Result<bool, String>> {
        let Self::Redis(r) = self else {
            return None;
        };
        Some(r.set_once(name, key, ttl_secs, now).await)
    }
}

/// One named limit.
#[derive(Debug)]
pub struct Limiter {
    name: &'static str,
    limit: u32,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Local(RateLimiter<LocalKey>),
    Redis(Arc<RedisCounters>),
}

/// An in-process counter's key: addresses without an allocation (the per-request path of the
/// single-node default).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LocalKey {
    Ip(IpBucket),
    Caller(String),
}

impl Limiter {
    /// Count one event for `key` (an authenticated caller) at `now`: `Err(retry_after_secs)`
    /// when over the limit.
    pub async fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        match &self.inner {
            Inner::Local(l) => l
                .check(&LocalKey::Caller(key.to_owned()), now)
                .map_err(i64::unsigned_abs),
            Inner::Redis(r) => r.check(self.name, self.limit, key, now).await,
        }
    }

    /// Count one request from `ip` (IPv6 by its /64).
    pub async fn check_ip(&self, ip: IpAddr, now: i64) -> Result<(), u64> {
        let bucket = IpBucket::of(ip);
        match &self.inner {
            Inner::Local(l) => l
                .check(&LocalKey::Ip(bucket), now)
                .map_err(i64::unsigned_abs),
            Inner::Redis(r) => {
                r.check(self.name, self.limit, &bucket.to_string(), now)
                    .await
            }
        }
    }

    /// The limit's name (`token`, `login`, `caller`, …), for metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn per_minute(&self) -> u32 {
        self.limit
    }
}

impl RedisCounters {
    async fn check(&self, name: &str, limit: u32, key: &str, now: i64) -> Result<(), u64> {
        if now < self.down_until.load(Ordering::Relaxed) {
            self.fail_open.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let window = now.div_euclid(WINDOW_SECS);
        let redis_key = format!("{}:rl:{name}:{window}:{key}", self.prefix);
        let mut conn = self.conn.clone();
        // The key outlives its window by a little, so clocks a few seconds apart agree.
        let mut pipe = redis::pipe();
        pipe.atomic()
            .incr(&redis_key, 1u32)
            .expire(&redis_key, WINDOW_SECS + 5)
            .ignore();
        let counted =
            tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<(u64,)>(&mut conn)).await;
        match counted {
            Ok(Ok((count,))) if count > u64::from(limit) => Err((WINDOW_SECS
                - now.rem_euclid(WINDOW_SECS))
            .unsigned_abs()
            .max(1)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                self.failed_open(now, &e.to_string());
                Ok(())
            }
            Err(_) => {
                self.failed_open(now, "no answer in time");
                Ok(())
            }
        }
    }

    async fn set_once(
        &self,
        name: &str,
        key: &str,
        ttl_secs: u64,
        now: i64,
    ) -> Result<bool, String> {
        if now < self.down_until.load(Ordering::Relaxed) {
            return Err("Redis failed a moment ago; not retried yet".into());
        }
        let redis_key = format!("{}:{name}:{key}", self.prefix);
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(&redis_key)
            .arg(1u8)
            .arg("NX")
            .arg("EX")
            .arg(ttl_secs.max(1));
        // `OK` when set, nil when the key existed.
        let answer =
            tokio::time::timeout(REDIS_TIMEOUT, cmd.query_async::<Option<String>>(&mut conn)).await;
        match answer {
            Ok(Ok(set)) => Ok(set.is_some()),
            Ok(Err(e)) => {
                self.down_until.store(now + BACKOFF_SECS, Ordering::Relaxed);
                Err(e.to_string())
            }
            Err(_) => {
                self.down_until.store(now + BACKOFF_SECS, Ordering::Relaxed);
                Err("no answer in time".into())
            }
        }
    }

    fn failed_open(&self, now: i64, cause: &str) {
        self.down_until.store(now + BACKOFF_SECS, Ordering::Relaxed);
        let n = self.fail_open.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_loud.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= LOUD_EVERY_SECS
            && self
                .last_loud
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                cause,
                let_through_total = n,
                "RATE LIMITS FAILING OPEN: Redis is unreachable; requests are not being counted"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_counters_limit_per_key_and_zero_turns_a_limit_off() {
        let c = Counters::new(None, "t").unwrap();
        assert!(c.limiter("x", 0).is_none());
        let l = c.limiter("x", 2).unwrap();
        assert!(l.check("a", 0).await.is_ok());
        assert!(l.check("a", 0).await.is_ok());
        assert_eq!(l.check("a", 1).await, Err(59));
        assert!(l.check("b", 1).await.is_ok());
        // Addresses are counted by IPv6 /64, apart from callers' keys.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(l.check_ip(a, 1).await.is_ok());
        assert!(l.check_ip(b, 1).await.is_ok());
        assert!(l.check_ip(a, 1).await.is_err(), "one /64, one budget");
        assert!(
            l.check("2001:db8::/64", 1).await.is_ok(),
            "a caller key is not an address"
        );
        assert!(c.ping().await.is_none());
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_open_and_counts_it() {
        // A port nothing listens on.
        let c = Counters::new(Some("redis://127.0.0.1:1"), "t").unwrap();
        let l = c.limiter("x", 1).unwrap();
        for now in 0..3 {
            assert!(l.check("a", now).await.is_ok(), "fails open");
            assert!(l.check_ip(IpAddr::from([192, 0, 2, 1]), now).await.is_ok());
        }
        assert_eq!(c.fail_open_count(), 6);
        let mut body = serde_json::json!({});
        c.annotate(&mut body);
        assert_eq!(body["rate_limit_checks_failed_open"], 6);
        assert!(matches!(c.ping().await, Some(Err(_))));
    }

    #[test]
    fn a_bad_url_is_a_configuration_error() {
        assert!(Counters::new(Some("not a url"), "t").is_err());
    }
}
