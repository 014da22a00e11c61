//! A short-lived in-memory cache of client registrations, so the token endpoint's hot path does
//! not read the database for every request.
//!
//! Entries live `ttl` seconds (injected clock). Changes made in this process (rotate-secret,
//! delete) invalidate at once; changes made by another process (the CLI, another replica) are
//! announced on PostgreSQL (`crate::replicas`) and dropped at once, and otherwise seen within
//! `ttl`. A presented secret that does not match a cached entry is checked again
//! against a fresh read, so a newly rotated secret works immediately. Unknown ids are not cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::error::Result;
use crate::store::{Client, ClientStore};

const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct ClientCache {
    ttl: i64,
    entries: RwLock<HashMap<String, (Arc<Client>, i64)>>,
}

/// Where a client record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    Cached,
    Fresh,
}

impl ClientCache {
    /// `ttl` 0 disables caching.
    pub fn new(ttl: i64) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub async fn get(
        &self,
        store: &dyn ClientStore,
        id: &str,
        now: i64,
    ) -> Result<Option<(Arc<Client>, Freshness)>> {
        if self.ttl > 0 {
            let hit = self.entries.read().ok().and_then(|m| m.get(id).cloned());
            if let Some((client, at)) = hit
                && now - at < self.ttl
                && now >= at
            {
                return Ok(Some((client, Freshness::Cached)));
            }
        }
        Ok(self
            .load(store, id, now)
            .await?
            .map(|c| (c, Freshness::Fresh)))
    }

    /// Read from storage and refresh the entry.
    pub async fn load(
        &self,
        store: &dyn ClientStore,
        id: &str,
        now: i64,
    ) -> Result<Option<Arc<Client>>> {
        let client = store.get_client(id).await?.map(Arc::new);
        if let Ok(mut m) = self.entries.write() {
            match &client {
                Some(c) if self.ttl > 0 => {
                    if m.len() >= MAX_ENTRIES {
                        m.clear();
                    }
                    m.insert(id.to_owned(), (Arc::clone(c), now));
                }
                _ => {
                    m.remove(id);
                }
            }
        }
        Ok(client)
    }

    /// Forget every entry (after a gap in change notifications, when anything may have
    /// changed).
    pub fn clear(&self) {
        if let Ok(mut m) = self.entries.write() {
            m.clear();
        }
    }

    pub fn invalidate(&self, id: &str) {
        if let Ok(mut m) = self.entries.write() {
            m.remove(id);
        }
    }
}
