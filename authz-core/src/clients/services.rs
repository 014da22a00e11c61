//! [`ClientServices`]: what the code of `clients/` works with, and nothing more — as fosite's
//! handlers are built with their storage interfaces. Made by `AppState::client_services`;
//! nothing in `clients/` sees the whole state (the layering check puts `state` above it).

use crate::config::Config;
use crate::events::Events;
use crate::outbound::cimd::Cimd;
use crate::policy::scope::ScopePolicy;
use crate::store::{AuditEvent, ClientCache, ClientStore};

/// The client rows and their cache, the metadata-document resolver with its key sets, the
/// configuration, the scope catalogue and where events go.
#[derive(Clone, Copy)]
pub struct ClientServices<'a> {
    pub store: &'a dyn ClientStore,
    pub clients: &'a ClientCache,
    pub cimd: &'a Cimd,
    pub config: &'a Config,
    /// The scopes this server knows (a registration asks for no others).
    pub scopes: &'a ScopePolicy,
    pub events: &'a Events,
}

impl std::fmt::Debug for ClientServices<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientServices")
    }
}

impl ClientServices<'_> {
    /// The injected clock's now.
    pub fn now(&self) -> i64 {
        self.events.now()
    }

    /// Append an audit event and wait until it is committed (`Events::audit`).
    pub async fn audit(&self, event: AuditEvent) {
        self.events.audit(event).await;
    }
}
