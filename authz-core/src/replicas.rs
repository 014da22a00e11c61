//! Replicas behave as one server: on PostgreSQL every running `authz` LISTENs on
//! `authz_changes`, where triggers (migration 0005) announce each committed change to a client
//! (`client:<id>`) or to the signing keys (`keys`), whoever made it (another replica, the CLI,
//! an operator's SQL). A client change drops that client from this replica's cache; a key
//! change reloads the key ring, so a rotation or a revoked secret takes effect everywhere at
//! once instead of after `client_cache_secs` / `key_reload_secs` (the timers stay as the
//! fallback).
//!
//! While the listener is disconnected notifications are lost, so every (re)connection starts
//! by forgetting the whole client cache and reloading keys. The channel is per database: tests
//! sharing one database in several schemas hear each other's changes, which only costs a
//! cache miss or a key reload.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::state::AppState;

/// The channel the triggers notify.
pub(crate) const CHANNEL: &str = "authz_changes";

/// What one notification asks of this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Client(String),
    Keys,
}

impl Change {
    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':') {
            Some(("client", id)) if !id.is_empty() => Some(Self::Client(id.to_owned())),
            _ if payload == "keys" => Some(Self::Keys),
            _ => None,
        }
    }
}

/// Listen until the task is aborted, reconnecting with a growing pause (at most 10 s).
pub async fn listen_forever(state: AppState, url: String) {
    let mut pause = Duration::from_millis(250);
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    pause = Duration::from_millis(250);
                    tracing::debug!(channel = CHANNEL, "listening for changes by other replicas");
                    catch_up(&state).await;
                    follow(&state, &mut listener).await;
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN {CHANNEL} failed"),
            },
            Err(e) => tracing::warn!(error = %e, "change listener cannot connect; retrying"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Apply notifications until the connection fails for good.
async fn follow(state: &AppState, listener: &mut PgListener) {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => match Change::parse(n.payload()) {
                Some(change) => apply(state, change).await,
                None => tracing::debug!(payload = n.payload(), "ignored notification"),
            },
            // The connection was lost; the next call reconnects. What was sent meanwhile is
            // gone: start over from storage.
            Ok(None) => {
                tracing::warn!("change listener reconnecting; refreshing caches");
                catch_up(state).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "change listener failed");
                return;
            }
        }
    }
}

async fn apply(state: &AppState, change: Change) {
    match change {
        Change::Client(id) => state.clients.invalidate(&id),
        Change::Keys => reload(state).await,
    }
}

/// Anything may have changed while nobody listened.
async fn catch_up(state: &AppState) {
    state.clients.clear();
    reload(state).await;
}

async fn reload(state: &AppState) {
    if let Err(e) = state.reload_keys().await {
        tracing::error!(error = %e, "reloading signing keys failed; keeping the current ones");
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn payloads() {
        assert_eq!(
            Change::parse("client:https://app.example/c.json"),
            Some(Change::Client("https://app.example/c.json".into()))
        );
        assert_eq!(Change::parse("keys"), Some(Change::Keys));
        assert_eq!(Change::parse("client:"), None);
        assert_eq!(Change::parse("users"), None);
    }
}
