//! The directory behind the password check (`[ldap]`, issue 26): `signin::authenticate` asks
//! it for the names it holds, after the attempt is counted (so the directory cannot be brute-
//! forced through this server), and everything else that lets a directory user in without a
//! bind — a passkey, another provider, a refresh token, an API key — asks it for the user as the
//! directory has them now ([`current`]): gone, out of scope or disabled there is refused here,
//! and the roles follow the directory's groups on every path.
//!
//! The rule of who is checked where is written once, in [`decides`]: a name with no local
//! account, or a local account linked to the directory, is the directory's; every other local
//! account is checked here and never at the directory (a directory entry named like a local
//! administrator does not become them). The implementation is `federation::ldap`.

use async_trait::async_trait;
use shared::secret::Password;

use crate::config::ldap::PROVIDER;
use crate::error::Result;
use crate::events::audit::RequestContext;
use crate::identity::IdentityServices;
use crate::store::User;

/// What the directory said about a sign-in.
#[derive(Debug)]
pub enum Answer {
    /// The directory checked the password: the local user (found, linked now or provisioned).
    User(User),
    /// Not signed in, for the audit's `reason` (unknown, wrong password, disabled…): the
    /// person sees the one generic failure.
    Failed(&'static str),
    /// The password was right but the account is refused here (`reason` for the audit, the
    /// message for the person).
    Refused {
        reason: &'static str,
        message: &'static str,
    },
    /// The [`Gate`] stopped the attempt before the bind (it knows why).
    Stopped,
}

/// The throttle of the entry a name found: however it was spelt (the directory folds case,
/// width and spaces in its own way), the attempts on one entry count together. Asked between
/// finding the entry and binding as it.
#[async_trait]
pub trait Gate: Send + Sync {
    /// Count one attempt against the entry `subject`: may its password be checked now?
    async fn admit(&self, subject: &str) -> Result<bool>;
}

/// An LDAP directory (or Active Directory) that checks passwords.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Check `username` / `password` at the directory (asking `gate` before the bind) and
    /// find (or provision) the local user. `Err` when the directory cannot be asked.
    async fn sign_in(
        &self,
        svc: IdentityServices<'_>,
        username: &str,
        password: &Password,
        gate: &dyn Gate,
        ctx: &RequestContext,
    ) -> Result<Answer>;

    /// `user`, linked to the entry `subject`, as the directory has them now (roles from its
    /// groups, its name): `None` when the entry is gone, out of the user search's scope or
    /// disabled.
    async fn current(
        &self,
        svc: IdentityServices<'_>,
        user: &User,
        subject: &str,
        ctx: &RequestContext,
    ) -> Result<Option<User>>;

    /// Is `password` the password of the entry linked to `subject` (which still stands, and
    /// was not reset)? For a user who is signed in already.
    async fn verify(
        &self,
        svc: IdentityServices<'_>,
        subject: &str,
        password: &Password,
        now: i64,
    ) -> Result<bool>;

    /// Can the directory be used now (connected, TLS verified, the service account's bind
    /// accepted)? Why not, in our words.
    async fn check(&self, svc: IdentityServices<'_>) -> std::result::Result<(), String>;
}

impl std::fmt::Debug for dyn Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Directory")
    }
}

/// Does the directory check the password of `local` (the local account with the name typed,
/// if any)? For a name without a local account when there is a directory, and always for an
/// account linked to the directory (with none configured, nobody signs it in: issue 26 LDAP
/// review 2 N8).
pub async fn decides(svc: IdentityServices<'_>, local: Option<&User>) -> Result<bool> {
    Ok(match local {
        None => svc.directory.is_some(),
        Some(u) => linked_subject(svc, u).await?.is_some(),
    })
}

/// The directory entry `user` is linked to, if any.
pub async fn linked_subject(svc: IdentityServices<'_>, user: &User) -> Result<Option<String>> {
    Ok(svc
        .store
        .federated_identities_of(&user.id)
        .await?
        .into_iter()
        .find(|l| l.provider == PROVIDER)
        .map(|l| l.subject))
}

/// `user` as they may sign in or get tokens without a bind (a passkey, another provider, a
/// refresh, an API key): users linked to the directory only while their entry stands, with
/// the roles its groups give now; everyone else as they are.
pub async fn current(
    svc: IdentityServices<'_>,
    user: &User,
    ctx: &RequestContext,
) -> Result<Option<User>> {
    let Some(subject) = linked_subject(svc, user).await? else {
        return Ok(Some(user.clone()));
    };
    match svc.directory {
        Some(d) => d.current(svc, user, &subject, ctx).await,
        // The directory was configured when the link was made and is not now: its users do
        // not sign in until it is back (or an administrator unlinks them).
        None => Ok(None),
    }
}
