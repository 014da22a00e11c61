//! Removing a link between an upstream identity and a local user — by the user (their account
//! page) or by an administrator — as one rule:
//! - the user never removes their last way to sign in (a password, unless `federation.only`
//!   turns passwords off; a passkey, likewise; another linked identity, of the `only` provider
//!   when one is set); an administrator may (the account then signs in only after a reset);
//! - the remedy ends what the link let in: every session signed in through an upstream
//!   provider (`amr` `fed`) other than the one asking, with the grants made in them, and the
//!   provider's tokens held for the user (the vault; revoked at the provider).
//!
//! - an administrator removing the last identity of a user who has no password also revokes
//!   their API keys and passkeys: every one was added in a session of a provider.
//!
//! Audited as `upstream.unlinked`.

use super::FederationServices;
use crate::error::Result;
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::identity::IdentityServices;
use crate::identity::session;
use crate::store::{AuditEvent, Outcome, User};

/// Who removes the link.
#[derive(Debug, Clone, Copy)]
pub enum Remover<'a> {
    /// The user, from the session `sid` (kept).
    User { sid: &'a str },
    /// An administrator (`actor`).
    Admin { actor: &'a str },
}

/// Why a link was not removed (the words for the page).
pub const LAST_WAY: &str = "This is the last way you can sign in to this account: add a \
     passkey, or ask an administrator to set a password, before removing it.";

/// Why a user does not unlink their directory account.
pub const DIRECTORY_LINK: &str = "Your directory account is how you sign in here: only an \
     administrator can unlink it.";

/// How many ways `user` has to sign in, besides the links listed in `links`.
async fn other_ways(svc: IdentityServices<'_>, user: &User) -> Result<usize> {
    if svc.config.federation.only.is_some() {
        return Ok(0);
    }
    let passkeys = svc.store.user_passkeys(&user.id).await?.len();
    Ok(usize::from(user.has_password()) + passkeys)
}

/// Remove the link (`provider`, `subject`) of `user` (the module's rule): `Ok(Err(message))`
/// when it is the user's last way in, `Ok(Ok(false))` when there was no such link.
pub async fn unlink(
    fed: FederationServices<'_>,
    user: &User,
    provider: &str,
    subject: &str,
    by: Remover<'_>,
    ctx: &RequestContext,
) -> Result<std::result::Result<bool, &'static str>> {
    let svc = fed.identity;
    let links = svc.store.federated_identities_of(&user.id).await?;
    if !links
        .iter()
        .any(|l| l.provider == provider && l.subject == subject)
    {
        return Ok(Ok(false));
    }
    // The directory's link is how its user signs in: only an administrator removes it.
    if provider == crate::config::ldap::PROVIDER && matches!(by, Remover::User { .. }) {
        return Ok(Err(DIRECTORY_LINK));
    }
    if let Remover::User { .. } = by {
        let counted = |p: &str| svc.config.federation.only.as_deref().is_none_or(|o| o == p);
        let remaining = links
            .iter()
            .filter(|l| !(l.provider == provider && l.subject == subject))
            .filter(|l| counted(&l.provider))
            .count();
        if remaining + other_ways(svc, user).await? == 0 {
            return Ok(Err(LAST_WAY));
        }
    }
    if !svc
        .store
        .remove_federated_identity(&user.id, provider, subject)
        .await?
    {
        return Ok(Ok(false));
    }
    // The provider's tokens held for the user go (revoked there).
    super::vault::discard(fed, &user.id, Some(provider), ctx.now).await?;
    // An administrator removed the last way in of a user who has no password: every lasting
    // credential made through it goes too — API keys and passkeys were added in sessions of
    // the provider (issue 26 review F4).
    if let Remover::Admin { actor } = by
        && !user.has_password()
        && svc
            .store
            .federated_identities_of(&user.id)
            .await?
            .is_empty()
    {
        end_lasting_credentials(svc, actor, user).await?;
    }
    let keep = match by {
        Remover::User { sid } => Some(sid),
        Remover::Admin { .. } => None,
    };
    let mut ended = 0;
    for s in svc.store.user_sessions(&user.id).await? {
        if Some(s.sid.as_str()) != keep && s.amr.iter().any(|m| m == "fed") {
            session::end(svc.store, svc.events, &s, "upstream_unlinked", ctx).await?;
            ended += 1;
        }
    }
    let actor = match by {
        Remover::User { .. } => user.username.as_str(),
        Remover::Admin { actor } => actor,
    };
    let ev = AuditEvent::new(ctx.now, kinds::UPSTREAM_UNLINKED, Outcome::Success)
        .actor(actor)
        .subject(&user.id)
        .details(serde_json::json!({ "provider": provider, "sessions_ended": ended }))
        .ctx(ctx);
    svc.audit(ev).await;
    Ok(Ok(true))
}

/// Revoke every API key and remove every passkey of `user` (audited as each remedy is).
async fn end_lasting_credentials(
    svc: IdentityServices<'_>,
    actor: &str,
    user: &User,
) -> Result<()> {
    for key in svc.store.list_clients_owned_by(&user.id).await? {
        if key.revoked_at.is_none() {
            crate::clients::api_keys::revoke(svc.store, svc.clients, svc.events, user, &key.id)
                .await?;
        }
    }
    for p in svc.store.user_passkeys(&user.id).await? {
        crate::identity::passkeys::remove(svc, actor, user, &p.credential_id, None).await?;
    }
    Ok(())
}
