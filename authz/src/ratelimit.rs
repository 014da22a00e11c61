//! A small per-key fixed-window rate limiter (in memory, per process), for endpoints that
//! create things (`/register`). Uses the injected clock, so tests need no sleeping.

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
