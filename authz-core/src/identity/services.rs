//! [`IdentityServices`]: what the code of `identity/` works with — accounts in storage, the
//! password hasher, the master key (sealed second factors), the client cache (a remedy that
//! revokes API keys drops them from it), the configuration and where events go. Made by
//! `AppState::identity`; nothing in `identity/` sees the whole state (the layering check puts
//! `state` above it).

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::events::Events;
use crate::policy::password::PasswordHasher;
use crate::store::{AuditEvent, ClientCache, Store};

#[derive(Clone, Copy)]
pub struct IdentityServices<'a> {
    pub store: &'a dyn Store,
    pub config: &'a Config,
    pub passwords: &'a PasswordHasher,
    pub master: &'a MasterKey,
    pub clients: &'a ClientCache,
    pub events: &'a Events,
    /// The LDAP directory that checks its users' passwords (`[ldap]`), if any.
    pub directory: Option<&'a dyn super::directory::Directory>,
}

impl std::fmt::Debug for IdentityServices<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityServices")
    }
}

impl IdentityServices<'_> {
    /// The injected clock's now.
    pub fn now(&self) -> i64 {
        self.events.now()
    }

    /// Append an audit event and wait until it is committed (`Events::audit`).
    pub async fn audit(&self, event: AuditEvent) {
        self.events.audit(event).await;
    }
}
