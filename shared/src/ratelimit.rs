//! Per-client rate limiting for both servers: a fixed-window counter per key, in memory, per
//! process (the caller passes the time, so tests drive it with their clock), and the rule for
//! finding the client's address behind trusted reverse proxies.
//!
//! - **Bounded.** Counters live in a fixed number of shards, each an exact LRU of fixed
//!   capacity: a flood of new keys evicts the least recently seen ones instead of growing the
//!   table. Every check is O(1) under one shard's lock (no sweep, no scan).
//! - **IPv6 by /64.** One IPv6 host usually owns a whole /64 (RFC 8273, SLAAC privacy
//!   addresses), so per-address budgets would be unlimited budgets. [`IpBucket`] keys IPv6 by its
//!   /64 prefix and IPv4 (also IPv4-mapped IPv6) by its address.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

/// Counters kept by default (all shards together) before the least recently seen are evicted.
pub const DEFAULT_CAPACITY: usize = 65_536;
const SHARDS: usize = 16;
const NIL: usize = usize::MAX;

/// Allows `limit` events per key per `window_secs`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: u32,
    window_secs: i64,
    hasher: RandomState,
    shards: Box<[Mutex<Lru<K>>]>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self::with_capacity(limit, window_secs, DEFAULT_CAPACITY)
    }

    /// At most `capacity` keys are remembered (rounded up to a multiple of the shard count).
    pub fn with_capacity(limit: u32, window_secs: i64, capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            limit,
            window_secs,
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Lru::new(per_shard)))
                .collect(),
        }
    }

    fn shard(&self, key: &K) -> std::sync::MutexGuard<'_, Lru<K>> {
        let i = (self.hasher.hash_one(key) as usize) % self.shards.len();
        match self.shards[i].lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Count one event for `key` at `now`: `Err(retry_after_secs)` when over the limit.
    pub fn check(&self, key: &K, now: i64) -> Result<(), i64> {
        let mut lru = self.shard(key);
        let node = lru.touch(key, now);
        if now - node.window_start >= self.window_secs || now < node.window_start {
            node.window_start = now;
            node.count = 0;
        }
        if node.count >= self.limit {
            return Err((node.window_start + self.window_secs - now).max(1));
        }
        node.count += 1;
        Ok(())
    }

    /// Keys currently remembered (never more than the capacity).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| match s.lock() {
                Ok(g) => g.map.len(),
                Err(p) => p.into_inner().map.len(),
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys this limiter remembers.
    pub fn capacity(&self) -> usize {
        self.shards.len() * self.shard_capacity()
    }

    fn shard_capacity(&self) -> usize {
        match self.shards[0].lock() {
            Ok(g) => g.capacity,
            Err(p) => p.into_inner().capacity,
        }
    }
}

/// The rate-limit key of a client address: IPv4 by address, IPv6 by its /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpBucket {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6Prefix64(u64),
}

impl IpBucket {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix64((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for IpBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Prefix64(p) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*p) << 64)),
        }
    }
}

/// A limiter keyed by client address (see [`IpBucket`]).
pub type IpRateLimiter = RateLimiter<IpBucket>;

impl RateLimiter<IpBucket> {
    /// Count one request from `ip`.
    pub fn check_ip(&self, ip: IpAddr, now: i64) -> Result<(), i64> {
        self.check(&IpBucket::of(ip), now)
    }
}

/// One counter, a node of the shard's doubly linked recency list.
#[derive(Debug)]
struct Node<K> {
    key: K,
    window_start: i64,
    count: u32,
    prev: usize,
    next: usize,
}

/// An exact LRU of fixed capacity over a slab of nodes: `head` is the most recently used.
#[derive(Debug)]
struct Lru<K> {
    capacity: usize,
    map: HashMap<K, usize>,
    nodes: Vec<Node<K>>,
    head: usize,
    tail: usize,
}

impl<K: Eq + Hash + Clone> Lru<K> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            nodes: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.nodes[i].prev, self.nodes[i].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// The node for `key`, now the most recently used; a new key takes a fresh node, or the
    /// least recently used one's when full.
    fn touch(&mut self, key: &K, now: i64) -> &mut Node<K> {
        if let Some(&i) = self.map.get(key) {
            self.unlink(i);
            self.push_front(i);
            return &mut self.nodes[i];
        }
        let fresh = Node {
            key: key.clone(),
            window_start: now,
            count: 0,
            prev: NIL,
            next: NIL,
        };
        let i = if self.nodes.len() < self.capacity {
            self.nodes.push(fresh);
            self.nodes.len() - 1
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.map.remove(&self.nodes[victim].key);
            self.nodes[victim] = fresh;
            victim
        };
        self.map.insert(key.clone(), i);
        self.push_front(i);
        &mut self.nodes[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_resets_with_the_window() {
        let rl = RateLimiter::new(2, 60);
        assert!(rl.check(&"a", 0).is_ok());
        assert!(rl.check(&"a", 1).is_ok());
        assert_eq!(rl.check(&"a", 2), Err(58));
        assert!(rl.check(&"b", 2).is_ok(), "other keys are unaffected");
        assert!(rl.check(&"a", 60).is_ok(), "a new window");
    }

    /// Regression (issue 11, item 12): the table was unbounded (a sweep dropped only expired
    /// windows, so a flood of distinct keys within one window grew it without limit).
    #[test]
    fn the_table_is_bounded_and_evicts_the_least_recently_seen() {
        let rl = RateLimiter::with_capacity(2, 60, 64);
        let cap = rl.capacity();
        assert!((64..64 + SHARDS).contains(&cap));
        // A key that keeps being seen survives a flood of new keys and keeps its count: it is
        // over its limit before the flood and stays refused throughout (an evicted key would
        // start over and be allowed). Seen every other new key, it is always among the most
        // recent 3 of its shard (each shard holds 4).
        let busy = u32::MAX;
        assert!(rl.check(&busy, 0).is_ok());
        assert!(rl.check(&busy, 0).is_ok());
        for k in 0..10_000u32 {
            let _ = rl.check(&k, 0);
            if k % 2 == 0 {
                assert_eq!(rl.check(&busy, 0), Err(60), "evicted while in use");
            }
            assert!(rl.len() <= cap, "grew past its capacity");
        }
        assert!(rl.check(&0, 0).is_ok(), "an evicted key starts over");
    }

    #[test]
    fn lru_order_is_exact_within_a_shard() {
        let mut lru = Lru::new(3);
        for k in [1u32, 2, 3] {
            lru.touch(&k, 0).count = k;
        }
        lru.touch(&1, 0); // 1 is now the most recent; 2 the least
        lru.touch(&4, 0);
        assert!(!lru.map.contains_key(&2), "2 was evicted");
        for k in [1, 3, 4] {
            assert!(lru.map.contains_key(&k));
        }
        assert_eq!(lru.touch(&1, 0).count, 1, "1 kept its counter");
        assert_eq!(lru.map.len(), 3);
    }

    /// Regression (issue 11, item 12): every IPv6 address had its own budget, so one host with
    /// a /64 had 2^64 of them.
    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_budget() {
        let rl = IpRateLimiter::new(2, 60);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(rl.check_ip(a, 0).is_ok());
        assert!(rl.check_ip(b, 0).is_ok());
        assert!(rl.check_ip(a, 0).is_err(), "same /64: one budget");
        assert!(
            rl.check_ip(other, 0).is_ok(),
            "another /64 is another client"
        );
        // IPv4 stays per address; IPv4-mapped IPv6 is the IPv4 address.
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(rl.check_ip(v4, 0).is_ok());
        assert!(rl.check_ip(mapped, 0).is_ok());
        assert!(rl.check_ip(v4, 0).is_err());
        assert!(rl.check_ip("192.0.2.2".parse().unwrap(), 0).is_ok());
        assert_eq!(IpBucket::of(a).to_string(), "2001:db8:1:2::/64");
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted reverse proxy, in which
/// case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Entries a
/// client adds on the left are never believed, so the header cannot be used to spoof an
/// address (and so dodge rate limits or forge audit records).
///
/// `forwarded_for` is every `X-Forwarded-For` line of the request, in order: several lines are
/// one comma-separated list (RFC 9110 §5.3), and a proxy may append its own line after one the
/// client sent (HAProxy's `option forwardfor` does), so reading only the first line would
/// believe the client. A line that is not text counts as malformed.
pub fn client_ip<'a>(
    peer: std::net::IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let lines: Vec<&str> = forwarded_for.into_iter().collect();
    let mut last = peer;
    for hop in lines
        .iter()
        .rev()
        .flat_map(|l| l.rsplit(','))
        .map(str::trim)
    {
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
            // A malformed hop: stop at the last address we could trust.
            return last;
        };
        if !trusted.contains(&ip) {
            return ip;
        }
        last = ip;
    }
    last
}

/// The `X-Forwarded-For` lines of a request as [`client_ip`] takes them.
#[cfg(feature = "http")]
pub fn forwarded_for(headers: &axum::http::HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("?"))
}

#[cfg(test)]
mod client_ip_tests {
    use super::client_ip;

    #[test]
    fn forwarded_for_only_believed_from_trusted_proxies() {
        let proxy = "10.0.0.1".parse().unwrap();
        let client = "203.0.113.7".parse().unwrap();
        let spoofed = Some("1.2.3.4, 203.0.113.7");
        assert_eq!(
            client_ip(client, spoofed, &[proxy]),
            client,
            "untrusted peer"
        );
        assert_eq!(
            client_ip(proxy, spoofed, &[proxy]),
            client,
            "right-most untrusted hop"
        );
        assert_eq!(client_ip(proxy, Some("garbage"), &[proxy]), proxy);
        assert_eq!(client_ip(proxy, None, &[proxy]), proxy);
        // Several lines are one list: the proxy's own line (appended last) decides.
        let lines = ["1.2.3.4", "203.0.113.7"];
        assert_eq!(client_ip(proxy, lines, &[proxy]), client);
        let lines = ["1.2.3.4", "203.0.113.7, 10.0.0.1"];
        assert_eq!(client_ip(proxy, lines, &[proxy]), client);
        assert_eq!(client_ip(proxy, ["1.2.3.4", "?"], &[proxy]), proxy);
    }
}
