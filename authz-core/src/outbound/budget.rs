//! The budgets of the fetches an anonymous request can cause (a metadata document it names, or
//! the `jwks_uri` a self-described client names), so that neither a third party can be
//! flooded through this server nor one caller can use up the fetches everybody else needs:
//!
//! - per requesting address (IPv6 by /64, `shared::ratelimit::IpBucket`):
//!   `fetches_per_ip_per_minute` over all hosts, and at most [`MAX_IN_FLIGHT_PER_IP`] at once;
//! - per host (normalized: `crate::outbound::host`): `fetches_per_host_per_minute` over all requesters;
//! - over everything: `max_concurrent_fetches` in flight.
//!
//! Key sets the operator trusts (ID-JAG issuers, administrators' clients) are fetched outside
//! these budgets (`crate::outbound::key_sets`), so a flood of lookups cannot starve them.
//!
//! The requesting address is the request's client address (`http::context::client_ip`, the one
//! rate limits and audit records use), set for the whole request by the router ([`scope`]) and
//! read where a fetch is decided ([`requester`]); work outside a request (the CLI) has none and
//! is limited per host and in total only.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Mutex;

use shared::ratelimit::{IpBucket, IpRateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::cimd::CimdConfig;
use crate::outbound::fetch_error::FetchError;

/// Fetches one address may have in flight at once.
pub(crate) const MAX_IN_FLIGHT_PER_IP: usize = 2;
const MAX_TRACKED_HOSTS: usize = 10_000;
/// Addresses whose per-minute count is remembered (the least recently seen are forgotten).
const MAX_TRACKED_ADDRESSES: usize = 16_384;

tokio::task_local! {
    static REQUESTER: IpAddr;
}

/// Run `f` (a request's handling) with `ip` as the requesting address of the fetches it causes.
pub async fn scope<F: Future>(ip: IpAddr, f: F) -> F::Output {
    REQUESTER.scope(ip, f).await
}

/// The address of the request being handled, if any.
pub fn requester() -> Option<IpAddr> {
    REQUESTER.try_with(|ip| *ip).ok()
}

/// The counters (per process).
#[derive(Debug)]
pub struct Budgets {
    per_host_limit: u32,
    per_ip_limit: u32,
    /// host → (minute, fetches in it); bounded by clearing when full.
    per_host: Mutex<HashMap<String, (i64, u32)>>,
    per_ip: IpRateLimiter,
    in_flight: Semaphore,
    ip_in_flight: Mutex<HashMap<IpBucket, usize>>,
}

/// A fetch under way: holds its global slot and its address's slot until dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    budgets: &'a Budgets,
    ip: Option<IpBucket>,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.budgets.release_ip(ip);
        }
    }
}

impl Budgets {
    pub fn new(cfg: &CimdConfig) -> Self {
        Self {
            per_host_limit: cfg.fetches_per_host_per_minute,
            per_ip_limit: cfg.fetches_per_ip_per_minute,
            per_host: Mutex::new(HashMap::new()),
            per_ip: IpRateLimiter::with_capacity(
                cfg.fetches_per_ip_per_minute,
                60,
                MAX_TRACKED_ADDRESSES,
            ),
            in_flight: Semaphore::new(cfg.max_concurrent_fetches.max(1)),
            ip_in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Spend one fetch from `host` (normalized) for `requester` at `now`, or refuse: the
    /// address's minute first (so an address over its budget spends nobody else's), then the
    /// host's, then a slot.
    pub fn spend(
        &self,
        host: &str,
        requester: Option<IpAddr>,
        now: i64,
    ) -> Result<Slot<'_>, FetchError> {
        let ip = requester.map(IpBucket::of);
        if let Some(ip) = ip
            && self.per_ip_limit > 0
            && self.per_ip.check(&ip, now).is_err()
        {
            return Err(FetchError::AddressBudget);
        }
        self.spend_host(host, now)?;
        let permit = self.in_flight.try_acquire().map_err(|_| FetchError::Busy)?;
        if let Some(ip) = ip {
            let mut map = self.ip_in_flight.lock().map_err(|_| FetchError::Busy)?;
            let n = map.entry(ip).or_insert(0);
            if *n >= MAX_IN_FLIGHT_PER_IP {
                return Err(FetchError::AddressBudget);
            }
            *n += 1;
        }
        Ok(Slot {
            budgets: self,
            ip,
            _permit: permit,
        })
    }

    fn spend_host(&self, host: &str, now: i64) -> Result<(), FetchError> {
        let minute = now.div_euclid(60);
        let mut map = self.per_host.lock().map_err(|_| FetchError::Busy)?;
        if map.len() >= MAX_TRACKED_HOSTS && !map.contains_key(host) {
            map.retain(|_, (m, _)| *m == minute);
            if map.len() >= MAX_TRACKED_HOSTS {
                return Err(FetchError::Busy);
            }
        }
        let entry = map.entry(host.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.per_host_limit {
            return Err(FetchError::HostBudget);
        }
        entry.1 += 1;
        Ok(())
    }

    fn release_ip(&self, ip: IpBucket) {
        let mut map = match self.ip_in_flight.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(per_host: u32, per_ip: u32, slots: usize) -> Budgets {
        Budgets::new(&CimdConfig {
            fetches_per_host_per_minute: per_host,
            fetches_per_ip_per_minute: per_ip,
            max_concurrent_fetches: slots,
            ..CimdConfig::default()
        })
    }

    #[test]
    fn one_address_cannot_spend_a_hosts_budget_for_everybody() {
        let b = budgets(5, 2, 8);
        let (a, c) = ("203.0.113.7".parse().ok(), "198.51.100.1".parse().ok());
        let now = 6_000;
        for _ in 0..2 {
            drop(b.spend("docs.example", a, now).unwrap());
        }
        assert_eq!(
            b.spend("docs.example", a, now).unwrap_err(),
            FetchError::AddressBudget
        );
        assert_eq!(
            b.spend("other.example", a, now).unwrap_err(),
            FetchError::AddressBudget,
            "the address budget is over all hosts"
        );
        // Another address still has the host's remaining budget…
        for _ in 0..2 {
            drop(b.spend("docs.example", c, now).unwrap());
        }
        // …which is the host's, over all addresses.
        drop(b.spend("docs.example", None, now).unwrap());
        assert_eq!(
            b.spend("docs.example", None, now).unwrap_err(),
            FetchError::HostBudget
        );
        // The next minute, both budgets are new.
        drop(b.spend("docs.example", a, now + 60).unwrap());
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_budget() {
        let b = budgets(100, 1, 8);
        let now = 6_000;
        drop(b.spend("h", "2001:db8:1:2::1".parse().ok(), now).unwrap());
        assert!(
            b.spend("h", "2001:db8:1:2::ffff".parse().ok(), now)
                .is_err()
        );
        assert!(b.spend("h", "2001:db8:1:3::1".parse().ok(), now).is_ok());
    }

    #[test]
    fn slots_are_bounded_globally_and_per_address() {
        let b = budgets(100, 100, 3);
        let (a, c) = ("203.0.113.7".parse().ok(), "198.51.100.1".parse().ok());
        let now = 6_000;
        let first = b.spend("h", a, now).unwrap();
        let second = b.spend("h", a, now).unwrap();
        assert_eq!(
            b.spend("h", a, now).unwrap_err(),
            FetchError::AddressBudget,
            "at most {MAX_IN_FLIGHT_PER_IP} in flight per address"
        );
        let third = b.spend("h", c, now).unwrap();
        assert_eq!(b.spend("h", None, now).unwrap_err(), FetchError::Busy);
        drop((first, third));
        let _again = b.spend("h", a, now).unwrap();
        drop(second);
        assert!(b.ip_in_flight.lock().unwrap().len() == 1);
    }

    #[test]
    fn zero_per_address_means_no_address_limit() {
        let b = budgets(100, 0, 8);
        for _ in 0..20 {
            drop(b.spend("h", "203.0.113.7".parse().ok(), 6_000).unwrap());
        }
    }

    #[tokio::test]
    async fn the_requester_is_the_scoped_address() {
        assert_eq!(requester(), None);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(scope(ip, async { requester() }).await, Some(ip));
    }
}
