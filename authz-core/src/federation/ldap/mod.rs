//! LDAP / Active Directory sign-in (issue 26, `[ldap]`): the [`Directory`] behind the password
//! check (`identity::directory`). For one attempt, already counted by the per-username
//! throttle:
//! 1. an empty password is refused before anything is sent (it would be an unauthenticated
//!    bind, which directories accept: RFC 4513 §5.1.2);
//! 2. the service account (or an anonymous bind) searches `user_base` with `user_filter`, the
//!    typed name escaped (RFC 4515 §3); none or more than one entry: refused, after a bind that
//!    fails just the same (an unknown user and a wrong password look and cost the same);
//! 3. the person's own bind with the password (RFC 4513 §5.1.3), then the entry's disabled
//!    flags (Active Directory `userAccountControl` ACCOUNTDISABLE, OpenLDAP ppolicy
//!    `pwdAccountLockedTime`, 389-DS `nsAccountLock`);
//! 4. the groups (`memberOf`, or a group search as the service account) and the user through
//!    the one federation rule (`account::resolve`: linked by the entry's id, or provisioned;
//!    never linked to a local account by name or address), roles following the groups.
//!
//! The directory unreachable: the attempt is answered 503 (the cause only logged).

mod filter;
mod pool;

use async_trait::async_trait;
use ldap3::{Scope, SearchEntry};
use shared::secret::Password;

use crate::config::ldap::{LdapConfig, PROVIDER, Scope as UserScope};
use crate::config::upstream::Upstream;
use crate::crypto::random_id;
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::federation::account::{self, Asserted};
use crate::identity::IdentityServices;
use crate::identity::directory::{Answer, Directory, Gate};
use crate::store::User;
use pool::{Found, Pool, Unavailable, UserBind};

/// The attributes read for the disabled flags.
const FLAGS: [&str; 3] = [
    "userAccountControl",
    "pwdAccountLockedTime",
    "nsAccountLock",
];
/// Active Directory's ACCOUNTDISABLE bit of `userAccountControl`.
const ACCOUNTDISABLE: u64 = 0x2;

/// An LDAP directory people sign in with.
#[derive(Debug)]
pub struct LdapDirectory {
    pool: Pool,
    /// The directory as a provider for `account::resolve` (id `ldap`).
    provider: Upstream,
}

/// What the directory said about one attempt.
enum Checked {
    Failed(&'static str),
    /// The password was right; the account is refused (reason, words for the person).
    Refused(&'static str, &'static str),
    /// The entry's throttle stopped it before the bind.
    Stopped,
    User(Box<Asserted>),
}

impl LdapDirectory {
    /// The directory of `cfg` (its TLS trust read now); `None` when none is configured.
    pub fn new(cfg: &LdapConfig) -> std::result::Result<Option<Self>, String> {
        if !cfg.enabled() {
            return Ok(None);
        }
        Ok(Some(Self {
            pool: Pool::new(cfg)?,
            provider: Upstream {
                id: PROVIDER.to_owned(),
                name: cfg.name.clone(),
                jit: cfg.jit,
                roles: cfg.roles.clone(),
                group_roles: cfg.group_roles.clone(),
                ..Upstream::default()
            },
        }))
    }

    /// One sign-in at the directory: search, the entry's throttle (`gate`), the bind, the
    /// flags, what the entry asserts.
    async fn check(
        &self,
        cfg: &LdapConfig,
        username: &str,
        password: &Password,
        gate: &dyn Gate,
    ) -> Result<Checked> {
        let mut conn = self.pool.get().await?;
        service_bind(&mut conn, cfg).await?;
        let filter = filter::fill(&cfg.user_filter, &[("username", username)]);
        let found = conn
            .search_one(&cfg.user_base, scope(cfg), &filter, &attributes(cfg))
            .await?;
        let entry = match found {
            Found::One(e) => e,
            other => {
                // The same work as a wrong password: a bind that fails.
                let nobody = format!("cn={},{}", random_id("nobody-"), cfg.user_base);
                conn.bind(&nobody, password.expose()).await?;
                conn.done();
                return Ok(Checked::Failed(match other {
                    Found::Many => "ambiguous_user",
                    _ => "unknown_user",
                }));
            }
        };
        // However the name was spelt, this entry's attempts count together.
        if !gate.admit(&subject(cfg, &entry)).await? {
            conn.done();
            return Ok(Checked::Stopped);
        }
        match conn.bind_as_user(&entry.dn, password.expose()).await? {
            UserBind::Accepted => {}
            UserBind::Refused => {
                conn.done();
                return Ok(Checked::Failed("bad_password"));
            }
            // A reset password the directory wants changed first: its session there is
            // restricted to the change, so no session here (draft-behera-ldap-password-policy
            // §8.1.2.2, changeAfterReset).
            UserBind::MustChange => {
                conn.done();
                return Ok(Checked::Refused(
                    "directory_password_change_required",
                    "Your directory password must be changed first: change it where your \
                     organisation manages passwords, then sign in with the new one.",
                ));
            }
        }
        if disabled(&entry) {
            conn.done();
            return Ok(Checked::Failed("directory_disabled"));
        }
        let asserted = self.asserted(&mut conn, cfg, &entry, username).await?;
        conn.done();
        Ok(Checked::User(Box::new(asserted)))
    }

    /// What `entry` asserts: its id, names, address and the groups `group_roles` map (read
    /// as the service account).
    async fn asserted(
        &self,
        conn: &mut pool::Conn<'_>,
        cfg: &LdapConfig,
        entry: &SearchEntry,
        typed: &str,
    ) -> Result<Asserted> {
        let mut groups = if cfg.member_of_attribute.is_empty() {
            Vec::new()
        } else {
            values(entry, &cfg.member_of_attribute)
        };
        if let Some(base) = &cfg.group_base {
            service_bind(conn, cfg).await?;
            let name = first(entry, &cfg.username_attribute).unwrap_or_else(|| typed.into());
            let filter = filter::fill(&cfg.group_filter, &[("dn", &entry.dn), ("username", &name)]);
            groups.extend(conn.search_dns(base, &filter).await?);
        }
        let email = first(entry, &cfg.email_attribute)
            .filter(|e| e.contains('@'))
            .map(|e| e.to_ascii_lowercase());
        Ok(Asserted {
            subject: subject(cfg, entry),
            username: first(entry, &cfg.username_attribute).or_else(|| Some(typed.into())),
            email_verified: cfg.trust_email && email.is_some(),
            email,
            name: first(entry, &cfg.name_attribute),
            groups: filter::matched_groups(&cfg.group_roles, &groups, cfg.group_base.as_deref()),
            amr: vec!["pwd".into()],
            acr: None,
            sid: None,
        })
    }

    /// The entry linked to `subject`, if it stands (in the user search's scope, not disabled):
    /// what it asserts now.
    async fn lookup(&self, cfg: &LdapConfig, subject: &str) -> Result<Option<Asserted>> {
        let mut conn = self.pool.get().await?;
        service_bind(&mut conn, cfg).await?;
        // Still matched by the user filter (any name), by the id the link keeps (or its DN).
        let in_scope = cfg.user_filter.replace("{username}", "*");
        let (base, scope, filter) = if is_dn(subject) {
            (subject.to_owned(), Scope::Base, in_scope)
        } else {
            let value = match hex_bytes(subject) {
                Some(bytes) if cfg.id_attribute.eq_ignore_ascii_case("objectGUID") => {
                    filter::escape_bytes(&bytes)
                }
                _ => filter::escape(subject),
            };
            let f = format!("(&({}={value}){in_scope})", cfg.id_attribute);
            (cfg.user_base.clone(), scope(cfg), f)
        };
        let found = conn
            .search_one(&base, scope, &filter, &attributes(cfg))
            .await?;
        let asserted = match found {
            Found::One(e) if !disabled(&e) => {
                let typed = first(&e, &cfg.username_attribute).unwrap_or_default();
                Some(self.asserted(&mut conn, cfg, &e, &typed).await?)
            }
            _ => None,
        };
        conn.done();
        Ok(asserted)
    }
}

impl From<Unavailable> for Error {
    fn from(e: Unavailable) -> Self {
        unavailable(e)
    }
}

/// The directory unreachable: 503 for the person, the cause in the log.
fn unavailable(e: Unavailable) -> Error {
    tracing::warn!(cause = %e.0, "the LDAP directory cannot be asked");
    Error::Concealed {
        shown: Box::new(Error::Overloaded { retry_after: 5 }),
        cause: format!("ldap: {}", e.0),
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn sign_in(
        &self,
        svc: IdentityServices<'_>,
        username: &str,
        password: &Password,
        gate: &dyn Gate,
        ctx: &RequestContext,
    ) -> Result<Answer> {
        // RFC 4513 §5.1.2: a bind with a name and no password is an unauthenticated bind,
        // which a directory answers with success.
        if password.expose().is_empty() || username.trim().is_empty() {
            return Ok(Answer::Failed("empty_password"));
        }
        let cfg = &svc.config.ldap;
        let asserted = match self.check(cfg, username, password, gate).await? {
            Checked::User(a) => a,
            Checked::Failed(reason) => return Ok(Answer::Failed(reason)),
            Checked::Refused(reason, message) => return Ok(Answer::Refused { reason, message }),
            Checked::Stopped => return Ok(Answer::Stopped),
        };
        let fed = &svc.config.federation;
        Ok(
            match account::resolve(svc, fed, &self.provider, &asserted, None, ctx).await? {
                Ok((user, _)) => Answer::User(user),
                Err(r) => match r.reason {
                    "disabled" => Answer::Failed("disabled"),
                    reason => Answer::Refused {
                        reason,
                        message: refusal_message(reason),
                    },
                },
            },
        )
    }

    async fn current(
        &self,
        svc: IdentityServices<'_>,
        user: &User,
        subject: &str,
        ctx: &RequestContext,
    ) -> Result<Option<User>> {
        let Some(asserted) = self.lookup(&svc.config.ldap, subject).await? else {
            return Ok(None);
        };
        Ok(Some(
            account::follow(svc, &self.provider, &asserted, user.clone(), ctx).await?,
        ))
    }

    async fn check(&self, svc: IdentityServices<'_>) -> std::result::Result<(), String> {
        let cfg = &svc.config.ldap;
        let attempt = async {
            let mut conn = self.pool.get().await?;
            service_bind(&mut conn, cfg).await?;
            conn.done();
            Ok::<_, Unavailable>(())
        };
        attempt.await.map_err(|e| e.0)
    }
}

/// What a person whose directory password was right is told when the account is refused.
fn refusal_message(reason: &str) -> &'static str {
    match reason {
        "not_linked" => {
            "Your directory account has no account here yet: ask an administrator for access."
        }
        "username_taken" => {
            "No username is free for your directory account here: ask an administrator."
        }
        "concurrent" => {
            "Your account was being set up by another sign-in at the same time: sign in again."
        }
        _ => "Your directory account cannot sign in here: ask an administrator.",
    }
}

async fn service_bind(
    conn: &mut pool::Conn<'_>,
    cfg: &LdapConfig,
) -> std::result::Result<(), Unavailable> {
    let (dn, password) = match (&cfg.bind_dn, &cfg.bind_password) {
        (Some(dn), Some(p)) => (dn.as_str(), p.expose()),
        // Anonymous search (RFC 4513 §5.1.1).
        _ => ("", ""),
    };
    if conn.bind(dn, password).await? {
        Ok(())
    } else {
        Err(Unavailable(
            "the service account's bind was refused (bind_dn, bind_password)".into(),
        ))
    }
}

fn scope(cfg: &LdapConfig) -> Scope {
    match cfg.scope() {
        UserScope::Subtree => Scope::Subtree,
        UserScope::OneLevel => Scope::OneLevel,
    }
}

fn attributes(cfg: &LdapConfig) -> Vec<&str> {
    let mut a = vec![
        cfg.id_attribute.as_str(),
        cfg.username_attribute.as_str(),
        cfg.email_attribute.as_str(),
        cfg.name_attribute.as_str(),
    ];
    if !cfg.member_of_attribute.is_empty() {
        a.push(&cfg.member_of_attribute);
    }
    a.extend(FLAGS);
    a
}

/// The text values of `attr` (attribute names are case-insensitive, RFC 4512 §2.5).
fn values(entry: &SearchEntry, attr: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn first(entry: &SearchEntry, attr: &str) -> Option<String> {
    values(entry, attr)
        .into_iter()
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty() && v.len() <= 256)
}

/// The id the link keeps: the id attribute's value (a binary one in hex), or the DN.
fn subject(cfg: &LdapConfig, entry: &SearchEntry) -> String {
    if let Some(v) = first(entry, &cfg.id_attribute) {
        return v;
    }
    if let Some(bytes) = entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&cfg.id_attribute))
        .and_then(|(_, v)| v.first())
    {
        return bytes.iter().map(|b| format!("{b:02x}")).collect();
    }
    entry.dn.clone()
}

fn is_dn(subject: &str) -> bool {
    subject.contains('=')
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Does the entry say the account is disabled or locked?
fn disabled(entry: &SearchEntry) -> bool {
    let uac = first(entry, "userAccountControl")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|v| v & ACCOUNTDISABLE != 0);
    let locked = first(entry, "pwdAccountLockedTime").is_some();
    let ns = first(entry, "nsAccountLock").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    uac || locked || ns
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(attrs: &[(&str, &str)]) -> SearchEntry {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in attrs {
            map.entry((*k).to_owned())
                .or_default()
                .push((*v).to_owned());
        }
        SearchEntry {
            dn: "uid=a,ou=people,dc=x".into(),
            attrs: map,
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn disabled_flags_of_each_directory() {
        assert!(!disabled(&entry(&[("uid", "a")])));
        assert!(disabled(&entry(&[("userAccountControl", "514")])));
        assert!(!disabled(&entry(&[("useraccountcontrol", "512")])));
        assert!(disabled(&entry(&[(
            "pwdAccountLockedTime",
            "000001010000Z"
        )])));
        assert!(disabled(&entry(&[("nsAccountLock", "TRUE")])));
    }

    #[test]
    fn the_link_keeps_the_id_a_binary_one_in_hex_or_the_dn() {
        let cfg = LdapConfig::default();
        assert_eq!(subject(&cfg, &entry(&[("entryUUID", "abc-1")])), "abc-1");
        assert_eq!(subject(&cfg, &entry(&[])), "uid=a,ou=people,dc=x");
        let mut bin = entry(&[]);
        bin.bin_attrs
            .insert("objectGUID".into(), vec![vec![0x01, 0xfe]]);
        let ad = LdapConfig {
            id_attribute: "objectGUID".into(),
            ..LdapConfig::default()
        };
        assert_eq!(subject(&ad, &bin), "01fe");
        assert_eq!(hex_bytes("01fe"), Some(vec![0x01, 0xfe]));
        assert!(is_dn("uid=a,dc=x") && !is_dn("01fe"));
    }
}
