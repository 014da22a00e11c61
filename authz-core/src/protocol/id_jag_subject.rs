//! ID-JAG subject mapping (issue 24 item 11): which local user an identity provider may speak
//! for, one policy for every mapping kind, and the operators' links it relies on by default.
//!
//! RFC 7523 §3 item 2 leaves to the authorization server how the assertion's subject
//! identifies a resource owner. The policy here:
//! 1. `subject_claim = "sub"` (default): the pair (`iss`, `sub`) — the only one an IdP
//!    guarantees to be stable and never reassigned (OIDC Core §2, §5.7) — must be linked to a
//!    local user by an operator (`authz id-jag link`, stored in `id_jag_links`; or the issuer's
//!    static `subjects` table). A pair both name differently is refused.
//! 2. `subject_claim = "email"`: only with `email_verified` the JSON boolean `true` (OIDC Core
//!    §5.1), an address with one `@` whose domain, ASCII lower-cased, is exactly one of the
//!    issuer's `email_domains` (no subdomain or suffix match), naming exactly one local user
//!    by email address (ignoring ASCII case) — never a username.
//! 3. `subject_claim = "preferred_username"`: the local user of that username.
//! 4. Whatever the kind: the user is enabled, and a user holding a privileged role
//!    (`[id_jag] privileged_roles`, default `admin`) only for an issuer with
//!    `allow_privileged = true`.
//!
//! Each refusal is an `invalid_grant` (RFC 6749 §5.2) with its own reason code (audited by the
//! grant as `id_jag.refused`). Link changes are audited (`id_jag.linked`, `id_jag.unlinked`).

use crate::config::id_jag::{SubjectClaim, TrustedIssuer};
use crate::error::{Error, Result};
use crate::events::kinds;
use crate::protocol::id_jag::{IdJag, Refusal};
use crate::state::AppState;
use crate::store::{AuditEvent, IdJagLink, Outcome, User};

/// The longest IdP subject accepted (as `protocol::id_jag::verify` does for `sub`).
const MAX_SUBJECT_LEN: usize = 256;

/// The local user `jag` speaks for, under the module's policy; a refusal is `invalid_grant`.
pub(crate) async fn local_user(
    state: &AppState,
    jag: &IdJag,
) -> Result<std::result::Result<User, Refusal>> {
    let issuer = &jag.issuer;
    let found = match issuer.subject_claim {
        SubjectClaim::Sub => by_link(state, issuer, &jag.sub).await?,
        SubjectClaim::Email => match email_of(jag) {
            Ok(email) => by_email(state, email).await?,
            Err(r) => return Ok(Err(r)),
        },
        SubjectClaim::PreferredUsername => match &jag.preferred_username {
            Some(name) => Ok(state.store.get_user_by_username(name).await?),
            None => {
                return Ok(Err(Refusal::new(
                    "no_subject",
                    "the assertion has no preferred_username claim",
                )));
            }
        },
    };
    let user = match found {
        Ok(Some(u)) => u,
        Ok(None) => {
            return Ok(Err(Refusal::new(
                "unknown_user",
                format!(
                    "the assertion's {} does not name a user of this server",
                    issuer.subject_claim.as_str()
                ),
            )));
        }
        Err(r) => return Ok(Err(r)),
    };
    if !user.is_enabled() {
        return Ok(Err(Refusal::new("user_disabled", "the user is disabled")));
    }
    // A directory user only while the directory keeps them, with the roles it gives now.
    let ctx = crate::events::audit::RequestContext {
        ip: None,
        now: state.now(),
        dpop_jkt: None,
    };
    let Some(user) = crate::identity::directory::current(state.identity(), &user, &ctx).await?
    else {
        return Ok(Err(Refusal::new("user_disabled", "the user is disabled")));
    };
    if is_privileged(state, &user) && !issuer.allow_privileged {
        return Ok(Err(Refusal::new(
            "privileged_user",
            "this identity provider may not speak for privileged users of this server",
        )));
    }
    Ok(Ok(user))
}

/// Does `user` hold a privileged role (`[id_jag] privileged_roles`)?
pub(crate) fn is_privileged(state: &AppState, user: &User) -> bool {
    user.roles
        .iter()
        .any(|r| state.config.id_jag.is_privileged_role(r))
}

type Found = std::result::Result<Option<User>, Refusal>;

/// Step 1: the operator's link of (`iss`, `sub`), or the issuer's static table.
async fn by_link(state: &AppState, issuer: &TrustedIssuer, sub: &str) -> Result<Found> {
    let linked = state.store.id_jag_link(&issuer.issuer, sub).await?;
    let listed = issuer.subjects.get(sub);
    Ok(match (linked, listed) {
        (Some(l), Some(name)) if l.username != *name => Err(Refusal::new(
            "link_conflict",
            "the assertion's sub is linked to two different users here (ask the operator)",
        )),
        (Some(l), _) => Ok(state.store.get_user(&l.user_id).await?),
        (None, Some(name)) => Ok(state.store.get_user_by_username(name).await?),
        (None, None) => Ok(None),
    })
}

/// Step 2: the asserted address, when the issuer may assert it.
fn email_of(jag: &IdJag) -> std::result::Result<&str, Refusal> {
    let Some(email) = jag.email.as_deref() else {
        return Err(Refusal::new(
            "no_subject",
            "the assertion has no email claim",
        ));
    };
    if jag.email_verified != Some(true) {
        return Err(Refusal::new(
            "email_unverified",
            "the assertion's email is not verified (email_verified must be true)",
        ));
    }
    if !email_domain_allowed(&jag.issuer, email) {
        return Err(Refusal::new(
            "email_domain",
            "the assertion's email is not an address in a domain this identity provider may \
             assert",
        ));
    }
    Ok(email)
}

/// `email` is `local@domain` (one `@`, neither part empty) and `domain`, ASCII lower-cased,
/// is one of the issuer's `email_domains` exactly.
pub(crate) fn email_domain_allowed(issuer: &TrustedIssuer, email: &str) -> bool {
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && issuer
            .email_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
}

/// The one local user with that email address (ignoring ASCII case); several: none of them.
async fn by_email(state: &AppState, email: &str) -> Result<Found> {
    // Two at most: one is the answer, two mean the address is ambiguous.
    let mut found = state.store.users_with_email(email, 2).await?.into_iter();
    Ok(Ok(match (found.next(), found.next()) {
        (Some(u), None) => Some(u),
        _ => None,
    }))
}

/// Link (`issuer`, `subject`) to the user `username` (`authz id-jag link`): the issuer must be
/// configured; an existing link of the pair is a conflict (unlink first). Audited
/// `id_jag.linked`. The link as stored.
pub async fn link(
    state: &AppState,
    actor: &str,
    issuer: &str,
    subject: &str,
    username: &str,
) -> Result<IdJagLink> {
    if state.config.id_jag.issuer(issuer).is_none() {
        return Err(Error::Invalid(format!(
            "{issuer:?} is not a configured ID-JAG issuer ([[id_jag.issuers]] or \
             AUTHZ_ID_JAG_ISSUER; compared exactly)"
        )));
    }
    if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN {
        return Err(Error::Invalid(format!(
            "the subject must be 1-{MAX_SUBJECT_LEN} characters"
        )));
    }
    let user = state
        .store
        .get_user_by_username(username)
        .await?
        .ok_or_else(|| Error::NotFound(format!("user {username:?}")))?;
    let now = state.now();
    state
        .store
        .add_id_jag_link(issuer, subject, &user.id, actor, now)
        .await?;
    let ev = AuditEvent::new(now, kinds::ID_JAG_LINKED, Outcome::Success)
        .actor(actor)
        .subject(&user.id)
        .details(serde_json::json!({
            "issuer": issuer, "sub": subject, "username": user.username,
        }));
    state.audit(ev).await;
    state
        .store
        .id_jag_link(issuer, subject)
        .await?
        .ok_or_else(|| Error::internal("the link just created is gone"))
}

/// What an operator should know about a link: why it may not be used as it stands.
pub fn link_notes(state: &AppState, link: &IdJagLink, user: &User) -> Vec<String> {
    let mut notes = Vec::new();
    let Some(i) = state.config.id_jag.issuer(&link.issuer) else {
        notes.push("this issuer is not configured any more".to_owned());
        return notes;
    };
    if i.subject_claim != SubjectClaim::Sub {
        notes.push(format!(
            "this issuer maps subjects by {}: links are used with subject_claim = \"sub\" only",
            i.subject_claim.as_str()
        ));
    }
    if is_privileged(state, user) && !i.allow_privileged {
        notes.push(format!(
            "{} holds a privileged role: grants are refused unless the issuer has \
             allow_privileged = true",
            user.username
        ));
    }
    notes
}

/// Remove the link of (`issuer`, `subject`) (`authz id-jag unlink`; the issuer need not be
/// configured any more). Audited `id_jag.unlinked`. The id of the user it named.
pub async fn unlink(state: &AppState, actor: &str, issuer: &str, subject: &str) -> Result<String> {
    let user_id = state
        .store
        .remove_id_jag_link(issuer, subject)
        .await?
        .ok_or_else(|| Error::NotFound(format!("a link of {subject:?} at {issuer}")))?;
    let ev = AuditEvent::new(state.now(), kinds::ID_JAG_UNLINKED, Outcome::Success)
        .actor(actor)
        .subject(&user_id)
        .details(serde_json::json!({ "issuer": issuer, "sub": subject }));
    state.audit(ev).await;
    Ok(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_domains_match_exactly_after_lower_casing() {
        let issuer = TrustedIssuer {
            email_domains: vec!["example.com".into()],
            ..Default::default()
        };
        for ok in [
            "alice@example.com",
            "ADMIN@EXAMPLE.COM",
            "a.b+c@Example.Com",
        ] {
            assert!(email_domain_allowed(&issuer, ok), "{ok}");
        }
        for bad in [
            "admin",
            "alice@evil-example.com",
            "alice@example.com.evil",
            "alice@sub.example.com",
            "alice@example.com.",
            "alice@example.com@evil.test",
            "@example.com",
            "alice@",
            "",
        ] {
            assert!(!email_domain_allowed(&issuer, bad), "{bad}");
        }
    }
}
