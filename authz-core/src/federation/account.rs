//! Who an upstream identity is here (issue 26, "Linking is explicit"):
//! 1. (provider, subject) already linked → that user (disabled: refused);
//! 2. a link the signed-in user asked for from the account page → linked to them (a subject
//!    linked to someone else is refused: a link never changes silently);
//! 3. with the provider's `link_by_email`, an address the provider says is verified, held by
//!    exactly one local account that holds no privileged role (`federation.privileged_roles`)
//!    and has no linked identity (its address was set here, not asserted by a provider) →
//!    linked to it; otherwise refused with a page saying how to link it;
//! 4. with `jit`, a new user (a username from the mapped claim, made unique; no password;
//!    the verified email unless another account holds it);
//! 5. otherwise refused.
//!
//! Then the roles the provider manages (the values of its `group_roles`) follow the upstream
//! groups at every sign-in: a group removed upstream removes its role here (audited).

use std::collections::BTreeSet;

use serde_json::Value;

use super::Refusal;
use crate::config::upstream::{ClaimMapping, FederationConfig, Upstream};
use crate::crypto::{random_id, sha256_hex};
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::identity::IdentityServices;
use crate::store::{AuditEvent, FederatedIdentity, Outcome, User};

/// What the provider asserted about the person, through the claim mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asserted {
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// RFC 8176 methods the provider says it used (OIDC `amr`).
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// The provider's session (OIDC `sid`), for its back-channel logout.
    pub sid: Option<String>,
}

/// A short string claim (numbers too: GitHub's ids), trimmed.
fn text(claims: &serde_json::Map<String, Value>, name: &str, max: usize) -> Option<String> {
    let v = match claims.get(name)? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!v.is_empty() && v.len() <= max).then_some(v)
}

fn list(claims: &serde_json::Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| s.len() <= 256)
            .take(256)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

impl Asserted {
    /// The asserted identity in `claims` (an ID token's, with user-info's; or user-info's).
    pub fn from_claims(
        map: &ClaimMapping,
        claims: &serde_json::Map<String, Value>,
    ) -> std::result::Result<Self, Refusal> {
        let subject = text(claims, &map.subject, 255).ok_or(Refusal::provider("no_subject"))?;
        let email = text(claims, &map.email, 254)
            .filter(|e| e.contains('@'))
            .map(|e| e.to_ascii_lowercase());
        let email_verified = match claims.get(&map.email_verified) {
            Some(Value::Bool(b)) => *b,
            // Some providers send the string (a known Cognito/Entra quirk).
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        Ok(Self {
            subject,
            username: text(claims, &map.username, 256),
            email,
            email_verified,
            name: text(claims, &map.name, 256),
            groups: list(claims, &map.groups),
            amr: list(claims, "amr"),
            acr: text(claims, "acr", 256),
            sid: text(claims, "sid", 256),
        })
    }

    /// The verified address, if the provider says so.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    /// Did the provider sign the person in with more than one factor, by its own word?
    pub fn multi_factor(&self, up: &Upstream) -> bool {
        self.amr
            .iter()
            .any(|m| matches!(m.as_str(), "mfa" | "otp" | "hwk" | "sms" | "swk" | "fido"))
            || self
                .acr
                .as_ref()
                .is_some_and(|acr| up.mfa_acr_values.iter().any(|v| v == acr))
    }
}

/// How the person's account here was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Linked,
    /// An explicit link, just made for the signed-in user.
    LinkedNow,
    LinkedByEmail,
    Provisioned,
}

impl Found {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linked => "linked",
            Self::LinkedNow => "linked_now",
            Self::LinkedByEmail => "linked_by_email",
            Self::Provisioned => "provisioned",
        }
    }
}

fn disabled() -> Refusal {
    Refusal::new(
        "disabled",
        "This account is disabled. Ask an administrator if you think this is a mistake.",
    )
}

/// The user `a` is here (the module's list), with their roles brought up to date.
pub async fn resolve(
    svc: IdentityServices<'_>,
    fed: &FederationConfig,
    up: &Upstream,
    a: &Asserted,
    link_user: Option<&str>,
    ctx: &RequestContext,
) -> Result<std::result::Result<(User, Found), Refusal>> {
    let found = match find(svc, fed, up, a, link_user, ctx).await? {
        Ok(f) => f,
        Err(r) => return Ok(Err(r)),
    };
    let (user, how) = found;
    if !user.is_enabled() {
        return Ok(Err(disabled()));
    }
    // A user the directory keeps signs in through another provider only while the directory
    // keeps them, with the roles it gives now (issue 26 LDAP review F3).
    let user = if up.id == crate::config::ldap::PROVIDER {
        user
    } else {
        match crate::identity::directory::current(svc, &user, ctx).await? {
            Some(u) => u,
            None => return Ok(Err(disabled())),
        }
    };
    svc.store
        .touch_federated_identity(
            &up.id,
            &a.subject,
            a.verified_email(),
            a.sid.as_deref(),
            ctx.now,
        )
        .await?;
    let user = follow(svc, up, a, user, ctx).await?;
    Ok(Ok((user, how)))
}

/// `user` brought up to date with what `up` asserts now: the roles it manages follow its
/// groups (audited), the name follows its name.
pub(crate) async fn follow(
    svc: IdentityServices<'_>,
    up: &Upstream,
    a: &Asserted,
    user: User,
    ctx: &RequestContext,
) -> Result<User> {
    let user = sync_roles(svc, up, a, user, ctx).await?;
    Ok(match &a.name {
        Some(name) if user.display_name.as_ref() != Some(name) => {
            svc.store
                .set_user_display_name(&user.id, Some(name), ctx.now)
                .await?;
            User {
                display_name: Some(name.clone()),
                ..user
            }
        }
        _ => user,
    })
}

async fn find(
    svc: IdentityServices<'_>,
    fed: &FederationConfig,
    up: &Upstream,
    a: &Asserted,
    link_user: Option<&str>,
    ctx: &RequestContext,
) -> Result<std::result::Result<(User, Found), Refusal>> {
    let name = &up.name;
    // 1. Linked already.
    if let Some(link) = svc.store.federated_identity(&up.id, &a.subject).await? {
        if link_user.is_some_and(|u| u != link.user_id) {
            return Ok(Err(Refusal::new(
                "linked_elsewhere",
                format!(
                    "This {name} account is already linked to another account here: unlink \
                     it there first."
                ),
            )));
        }
        return Ok(match svc.store.get_user(&link.user_id).await? {
            Some(u) => Ok((u, Found::Linked)),
            None => Err(disabled()),
        });
    }
    // 2. An explicit link for the signed-in user.
    if let Some(uid) = link_user {
        let Some(user) = svc.store.get_user(uid).await?.filter(User::is_enabled) else {
            return Ok(Err(disabled()));
        };
        link(svc, up, a, &user, Found::LinkedNow, ctx).await?;
        return Ok(Ok((user, Found::LinkedNow)));
    }
    // 3. By a verified email address, where the operator allows it.
    if up.link_by_email
        && let Some(email) = a.verified_email()
    {
        let holders = svc.store.users_with_email(email, 2).await?;
        match holders.as_slice() {
            [] => {}
            [user] if user.roles.iter().any(|r| fed.is_privileged_role(r)) => {
                return Ok(Err(Refusal::new(
                    "privileged_email_link",
                    format!(
                        "An account here with this email address holds administrative rights, \
                         and such accounts are never linked automatically. Sign in to it with \
                         its password, then link your {name} account from the account page."
                    ),
                )));
            }
            // An address on an account already linked to a provider came from a provider (or
            // stands beside one): never trusted for another's email linking (issue 26 review
            // F2: one provider's loose `email_verified` must not hand over another's users).
            [user]
                if !svc
                    .store
                    .federated_identities_of(&user.id)
                    .await?
                    .is_empty() =>
            {
                return Ok(Err(Refusal::new(
                    "linked_account_email",
                    format!(
                        "An account here with this email address signs in through another \
                         provider, so it is not linked automatically. Sign in to it, then link \
                         your {name} account from the account page."
                    ),
                )));
            }
            [user] => {
                link(svc, up, a, user, Found::LinkedByEmail, ctx).await?;
                return Ok(Ok((user.clone(), Found::LinkedByEmail)));
            }
            _ => {
                return Ok(Err(Refusal::new(
                    "ambiguous_email",
                    "More than one account here has this email address, so none is linked \
                     automatically. Ask an administrator.",
                )));
            }
        }
    }
    // 4. A new user.
    if up.jit {
        return provision(svc, up, a, ctx).await;
    }
    Ok(Err(Refusal::new(
        "not_linked",
        format!(
            "No account here is linked to this {name} account. Ask an administrator for \
             access, or sign in another way and link it from your account page."
        ),
    )))
}

/// Link `a` to `user` (audited).
async fn link(
    svc: IdentityServices<'_>,
    up: &Upstream,
    a: &Asserted,
    user: &User,
    how: Found,
    ctx: &RequestContext,
) -> Result<()> {
    let identity = FederatedIdentity {
        provider: up.id.clone(),
        subject: a.subject.clone(),
        user_id: user.id.clone(),
        email: a.verified_email().map(str::to_owned),
        created_at: ctx.now,
        last_login_at: None,
    };
    svc.store.add_federated_identity(&identity).await?;
    let ev = AuditEvent::new(ctx.now, kinds::UPSTREAM_LINKED, Outcome::Success)
        .actor(&user.username)
        .subject(&user.id)
        .details(serde_json::json!({ "provider": up.id, "how": how.as_str() }))
        .ctx(ctx);
    svc.audit(ev).await;
    Ok(())
}

/// Usernames this identity may get, in order: the mapped claim (when `bare`), then qualified
/// by the provider, then with a digest of the subject.
fn usernames(up: &Upstream, a: &Asserted, bare: bool) -> Vec<String> {
    // Lower case: no `Admin` beside `admin` (issue 26 review F5).
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "._@-".contains(*c))
            .map(|c| c.to_ascii_lowercase())
            .take(48)
            .collect()
    };
    let asserted = a
        .username
        .as_deref()
        .filter(|s| !clean(s).is_empty())
        .or_else(|| a.verified_email());
    let base = asserted.map_or_else(|| up.id.clone(), clean);
    let digest: String = sha256_hex(&a.subject).chars().take(8).collect();
    let qualified = vec![
        format!("{base}-{}", up.id),
        format!("{base}-{}-{digest}", up.id),
    ];
    // A name that cleaning changed beyond its case (`j doe` → `jdoe`) never takes the bare
    // form: it would squat the person whose name that is (issue 26 LDAP review F10).
    if !bare || asserted.is_some_and(|n| n.chars().count() != base.chars().count()) {
        return qualified;
    }
    [vec![base], qualified].concat()
}

/// Roles from the upstream groups (the provider's `group_roles`).
fn mapped_roles(up: &Upstream, a: &Asserted) -> BTreeSet<String> {
    a.groups
        .iter()
        .filter_map(|g| up.group_roles.get(g).cloned())
        .collect()
}

async fn provision(
    svc: IdentityServices<'_>,
    up: &Upstream,
    a: &Asserted,
    ctx: &RequestContext,
) -> Result<std::result::Result<(User, Found), Refusal>> {
    let mut roles = mapped_roles(up, a);
    roles.extend(up.roles.iter().cloned());
    let roles: Vec<String> = roles.into_iter().collect();
    let mut username = None;
    // With a directory, bare names are the directory's: a provider's user named like a
    // directory user would keep them from signing in with their own name (issue 26 LDAP
    // review 2 N7).
    let bare = up.id == crate::config::ldap::PROVIDER || !svc.config.ldap.enabled();
    for candidate in usernames(up, a, bare) {
        if svc.store.get_user_by_username(&candidate).await?.is_none() {
            username = Some(candidate);
            break;
        }
    }
    let Some(username) = username else {
        return Ok(Err(Refusal::new(
            "username_taken",
            "No username is free for this account. Ask an administrator.",
        )));
    };
    // The address only when verified and nobody else's (it names one account: ID-JAG email
    // mapping, the console's search).
    let email = match a.verified_email() {
        Some(e) if svc.store.users_with_email(e, 1).await?.is_empty() => Some(e.to_owned()),
        _ => None,
    };
    let now = ctx.now;
    let user = User {
        id: random_id("usr_"),
        username,
        // No password: the provider is how this user signs in (an administrator may set
        // one); password attempts at this name cost what every attempt costs.
        password_hash: String::new(),
        roles,
        email,
        display_name: a.name.clone(),
        disabled_at: None,
        credentials_changed_at: None,
        password_change_required: false,
        factors_epoch: 0,
        created_at: now,
        updated_at: now,
    };
    svc.store.create_user(&user).await?;
    if let Err(e) = link(svc, up, a, &user, Found::Provisioned, ctx).await {
        // A concurrent first sign-in linked the subject meanwhile: this user goes, that
        // link stands.
        svc.store.delete_user(&user.id).await?;
        return match e {
            Error::Conflict(_) => Ok(Err(Refusal::new(
                "concurrent",
                "This account was being set up by another sign-in at the same time: sign in \
                 again.",
            ))),
            e => Err(e),
        };
    }
    let ev = AuditEvent::new(now, kinds::USER_CREATED, Outcome::Success)
        .actor(format!("upstream:{}", up.id))
        .subject(&user.id)
        .details(serde_json::json!({
            "username": user.username, "roles": user.roles, "provider": up.id,
        }))
        .ctx(ctx);
    svc.audit(ev).await;
    Ok(Ok((user, Found::Provisioned)))
}

/// The roles the provider manages follow the upstream groups (audited when they change).
async fn sync_roles(
    svc: IdentityServices<'_>,
    up: &Upstream,
    a: &Asserted,
    user: User,
    ctx: &RequestContext,
) -> Result<User> {
    if up.group_roles.is_empty() {
        return Ok(user);
    }
    let managed: BTreeSet<&String> = up.group_roles.values().collect();
    let mut roles: BTreeSet<String> = user
        .roles
        .iter()
        .filter(|r| !managed.contains(r))
        .cloned()
        .collect();
    roles.extend(mapped_roles(up, a));
    if roles.is_empty() {
        roles.extend(up.roles.iter().cloned());
    }
    let before: BTreeSet<String> = user.roles.iter().cloned().collect();
    if roles == before {
        return Ok(user);
    }
    let roles: Vec<String> = roles.into_iter().collect();
    svc.store.set_user_roles(&user.id, &roles, ctx.now).await?;
    let ev = AuditEvent::new(ctx.now, kinds::USER_ROLES_CHANGED, Outcome::Success)
        .actor(format!("upstream:{}", up.id))
        .subject(&user.id)
        .details(serde_json::json!({ "from": user.roles, "to": roles, "provider": up.id }))
        .ctx(ctx);
    svc.audit(ev).await;
    Ok(User { roles, ..user })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn asserted(v: Value) -> std::result::Result<Asserted, Refusal> {
        let Value::Object(m) = v else { unreachable!() };
        Asserted::from_claims(&ClaimMapping::default(), &m)
    }

    #[test]
    fn claims_map_and_only_a_verified_email_counts() {
        let a = asserted(json!({
            "sub": "u1", "preferred_username": "Alice", "email": "Alice@Acme.Example",
            "email_verified": true, "groups": ["g1", "g2"], "amr": ["pwd", "mfa"],
        }))
        .unwrap();
        assert_eq!(a.subject, "u1");
        assert_eq!(a.verified_email(), Some("alice@acme.example"));
        assert_eq!(a.groups, vec!["g1", "g2"]);
        let unverified = asserted(json!({ "sub": "u1", "email": "a@b.example" })).unwrap();
        assert_eq!(unverified.verified_email(), None);
        let stringly =
            asserted(json!({ "sub": 42, "email": "a@b.example", "email_verified": "true" }))
                .unwrap();
        assert_eq!(stringly.subject, "42");
        assert_eq!(stringly.verified_email(), Some("a@b.example"));
        assert_eq!(
            asserted(json!({ "email": "a@b.example" }))
                .unwrap_err()
                .reason,
            "no_subject"
        );
    }

    #[test]
    fn usernames_are_cleaned_and_fall_back() {
        let up = Upstream {
            id: "corp".into(),
            ..Upstream::default()
        };
        let a = Asserted {
            subject: "s".into(),
            username: Some("al ice*)(uid=*".into()),
            ..Asserted::default()
        };
        // Cleaned beyond its case: never the bare name.
        let names = usernames(&up, &a, true);
        assert_eq!(names[0], "aliceuid-corp");
        assert!(names[1].starts_with("aliceuid-corp-"));
        let squat = Asserted {
            subject: "s".into(),
            username: Some("j doe".into()),
            ..Asserted::default()
        };
        assert_eq!(usernames(&up, &squat, true)[0], "jdoe-corp");
        let plain = Asserted {
            subject: "s".into(),
            username: Some("j.doe".into()),
            ..Asserted::default()
        };
        assert_eq!(usernames(&up, &plain, true)[0], "j.doe");
        // Beside a directory, another provider's names are always qualified.
        assert_eq!(usernames(&up, &plain, false)[0], "j.doe-corp");
        let upper = Asserted {
            subject: "s".into(),
            username: Some("Admin".into()),
            ..Asserted::default()
        };
        assert_eq!(usernames(&up, &upper, true)[0], "admin");
        let none = Asserted {
            subject: "s".into(),
            ..Asserted::default()
        };
        assert_eq!(usernames(&up, &none, true)[0], "corp");
    }
}
