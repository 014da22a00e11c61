//! Per-client-IP rate limiting for both servers: a fixed-window counter per key (in memory, per
//! process; the caller passes the time, so tests drive it with their clock) and the rule for
//! finding the client's address behind trusted reverse proxies.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Allows `limit` events per key per `window_secs`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: u32,
    window_secs: i64,
    windows: Mutex<HashMap<K, (i64, u32)>>,
}

/// Keys kept before stale windows are swept.
const SWEEP_AT: usize = 10_000;

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self {
            limit,
            window_secs,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count one event for `key` at `now`: `Err(retry_after_secs)` when over the limit.
    pub fn check(&self, key: &K, now: i64) -> Result<(), i64> {
        let mut map = match self.windows.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= SWEEP_AT {
            let w = self.window_secs;
            map.retain(|_, (start, _)| now - *start < w);
        }
        let entry = map.entry(key.clone()).or_insert((now, 0));
        if now - entry.0 >= self.window_secs {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err((entry.0 + self.window_secs - now).max(1));
        }
        entry.1 += 1;
        Ok(())
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
}

/// The client's address: the TCP peer, unless the peer is a trusted reverse proxy, in which
/// case the right-most `X-Forwarded-For` entry that is not itself a trusted proxy. Entries a
/// client adds on the left are never believed, so the header cannot be used to spoof an
/// address (and so dodge rate limits or forge audit records).
pub fn client_ip(
    peer: std::net::IpAddr,
    forwarded_for: Option<&str>,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(xff) = forwarded_for else {
        return peer;
    };
    let mut last = peer;
    for hop in xff.rsplit(',').map(str::trim) {
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
    }
}
