//! ID-JAG subject links (issue 24 item 11): an identity provider's subject (`iss`, `sub`)
//! linked by an operator to one local user — the default subject mapping of the jwt-bearer
//! grant (`protocol::id_jag_subject`).

use async_trait::async_trait;

use crate::error::Result;

/// One link, as stored (with the linked user's username, for listings).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IdJagLink {
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    pub username: String,
    pub created_at: i64,
    pub created_by: String,
}

#[async_trait]
pub trait IdJagLinkStore: Send + Sync {
    /// Link (`issuer`, `subject`) to `user_id`; `Error::Conflict` when the pair is already
    /// linked (to anyone: unlink first, so a link never changes silently).
    async fn add_id_jag_link(
        &self,
        issuer: &str,
        subject: &str,
        user_id: &str,
        created_by: &str,
        now: i64,
    ) -> Result<()>;
    /// The link of (`issuer`, `subject`), compared exactly.
    async fn id_jag_link(&self, issuer: &str, subject: &str) -> Result<Option<IdJagLink>>;
    /// Remove a link; the id of the user it named, `None` when there was none.
    async fn remove_id_jag_link(&self, issuer: &str, subject: &str) -> Result<Option<String>>;
    /// Every link (of `issuer` only, when given), by issuer then subject.
    async fn id_jag_links(&self, issuer: Option<&str>) -> Result<Vec<IdJagLink>>;
}
