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

/// The attributes read for the disabled and reset flags.
const FLAGS: [&str; 8] = [
    "userAccountControl",
    "pwdAccountLockedTime",
    "nsAccountLock",
    "lockoutTime",
    "accountExpires",
    "pwdReset",
    "pwdLastSet",
    "pwdChangedTime",
];
/// Active Directory's ACCOUNTDISABLE bit of `userAccountControl`.
const ACCOUNTDISABLE: u64 = 0x2;
/// Seconds from 1601-01-01 (Windows FILETIME) to the Unix epoch.
const FILETIME_UNIX_OFFSET: i64 = 11_644_473_600;

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
    /// The entry's throttle stopped it before the bind.
    Stopped,
    /// The directory reset the entry's password (the entry's id): what was made with the
    /// old one ends here too.
    Reset(String),
    /// Signed in: what the entry asserts, and when its password last changed there.
    User(Box<Asserted>, Option<i64>),
}

/// What a lookup of a linked entry found.
enum Lookup {
    /// Gone, out of scope or disabled.
    Gone,
    /// Its password was reset there.
    Reset,
    /// What it asserts, and when its password last changed there.
    Stands(Box<Asserted>, Option<i64>),
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
        now: i64,
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
        // The link keeps the entry's stable id; an entry without one is never linked (a DN
        // is given to the next person of that name: issue 26 LDAP review 2 N6).
        let Some(id) = subject(cfg, &entry) else {
            tracing::warn!(
                attribute = %cfg.id_attribute,
                "a directory entry has no id attribute: check [ldap] id_attribute"
            );
            conn.done();
            return Ok(Checked::Failed("no_entry_id"));
        };
        // However the name was spelt, this entry's attempts count together.
        if !gate.admit(&id).await? {
            conn.done();
            return Ok(Checked::Stopped);
        }
        let bind = conn.bind_as_user(&entry.dn, password.expose()).await?;
        // A reset password the directory wants changed first (its session there restricted
        // to the change, draft-behera-ldap-password-policy §8.1.2.2 changeAfterReset; AD's
        // `pwdLastSet` 0): no session here, and what the old password made ends.
        if bind == UserBind::MustChange || was_reset(&entry) {
            conn.done();
            return Ok(Checked::Reset(id));
        }
        if bind == UserBind::Refused {
            conn.done();
            return Ok(Checked::Failed("bad_password"));
        }
        if disabled(&entry, now) {
            conn.done();
            return Ok(Checked::Failed("directory_disabled"));
        }
        let asserted = self.asserted(&mut conn, cfg, &entry, username).await?;
        conn.done();
        Ok(Checked::User(
            Box::new(asserted),
            password_changed_at(&entry),
        ))
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
            subject: subject(cfg, entry).unwrap_or_default(),
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
    async fn lookup(&self, cfg: &LdapConfig, subject: &str, now: i64) -> Result<Lookup> {
        let mut conn = self.pool.get().await?;
        service_bind(&mut conn, cfg).await?;
        let found = conn
            .search_one(
                &cfg.user_base,
                scope(cfg),
                &by_id(cfg, subject),
                &attributes(cfg),
            )
            .await?;
        let looked = match found {
            Found::One(e) if was_reset(&e) => Lookup::Reset,
            Found::One(e) if !disabled(&e, now) => {
                let typed = first(&e, &cfg.username_attribute).unwrap_or_default();
                let asserted = self.asserted(&mut conn, cfg, &e, &typed).await?;
                Lookup::Stands(Box::new(asserted), password_changed_at(&e))
            }
            _ => Lookup::Gone,
        };
        conn.done();
        Ok(looked)
    }
}

impl From<Unavailable> for Error {
    fn from(e: Unavailable) -> Self {
        unavailable(e)
    }
}

/// The filter of the entry the link keeps (`subject`), still matched by the user filter (any
/// name).
fn by_id(cfg: &LdapConfig, subject: &str) -> String {
    let in_scope = cfg.user_filter.replace("{username}", "*");
    let value = match hex_bytes(subject) {
        Some(bytes) if cfg.id_attribute.eq_ignore_ascii_case("objectGUID") => {
            filter::escape_bytes(&bytes)
        }
        _ => filter::escape(subject),
    };
    format!("(&({}={value}){in_scope})", cfg.id_attribute)
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
        let (asserted, changed) = match self.check(cfg, username, password, gate, ctx.now).await? {
            Checked::User(a, changed) => (a, changed),
            Checked::Failed(reason) => return Ok(Answer::Failed(reason)),
            Checked::Stopped => return Ok(Answer::Stopped),
            Checked::Reset(id) => {
                if let Some(link) = svc.store.federated_identity(PROVIDER, &id).await?
                    && let Some(user) = svc.store.get_user(&link.user_id).await?
                {
                    end_after_reset(svc, &user, ctx.now).await?;
                }
                return Ok(Answer::Refused {
                    reason: "directory_password_reset",
                    message: "Your directory password was reset and must be changed first: \
                              change it where your organisation manages passwords, then sign \
                              in with the new one.",
                });
            }
        };
        let fed = &svc.config.federation;
        Ok(
            match account::resolve(svc, fed, &self.provider, &asserted, None, ctx).await? {
                Ok((user, _)) => match changed_since(&user, changed) {
                    // The password changed at the directory since this server last ended what
                    // the old one made: end it now, then sign in with the new one.
                    Some(at) => {
                        let why = "directory_password_changed";
                        let at = at.max(ctx.now);
                        crate::identity::admin::end_credentials(svc, "directory", &user, why, at)
                            .await?;
                        match svc.store.get_user(&user.id).await? {
                            Some(u) => Answer::User(u),
                            None => Answer::Failed("unknown_user"),
                        }
                    }
                    None => Answer::User(user),
                },
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
        Ok(
            match self.lookup(&svc.config.ldap, subject, ctx.now).await? {
                Lookup::Gone => None,
                Lookup::Reset => {
                    end_after_reset(svc, user, ctx.now).await?;
                    None
                }
                // Changed there since: what is being used was made with the old password.
                Lookup::Stands(_, changed) if changed_since(user, changed).is_some() => {
                    let at = changed_since(user, changed).unwrap_or(ctx.now).max(ctx.now);
                    let why = "directory_password_changed";
                    crate::identity::admin::end_credentials(svc, "directory", user, why, at)
                        .await?;
                    None
                }
                Lookup::Stands(asserted, _) => {
                    Some(account::follow(svc, &self.provider, &asserted, user.clone(), ctx).await?)
                }
            },
        )
    }

    async fn verify(
        &self,
        svc: IdentityServices<'_>,
        subject: &str,
        password: &Password,
        now: i64,
    ) -> Result<bool> {
        let cfg = &svc.config.ldap;
        let mut conn = self.pool.get().await?;
        service_bind(&mut conn, cfg).await?;
        let entry = match conn
            .search_one(&cfg.user_base, scope(cfg), &by_id(cfg, subject), &FLAGS)
            .await?
        {
            Found::One(e) => e,
            _ => {
                conn.done();
                return Ok(false);
            }
        };
        let bind = conn.bind_as_user(&entry.dn, password.expose()).await?;
        conn.done();
        Ok(bind == UserBind::Accepted && !disabled(&entry, now) && !was_reset(&entry))
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

/// The directory reset `user`'s password: everything made with the old one ends here too
/// (sessions, refresh tokens, API keys, passkeys, other providers' links), as an
/// administrator's reset here would.
async fn end_after_reset(svc: IdentityServices<'_>, user: &User, now: i64) -> Result<()> {
    let why = "directory_password_reset";
    crate::identity::admin::end_credentials(svc, "directory", user, why, now).await?;
    Ok(())
}

/// When the directory changed `user`'s password after this server last ended what the old one
/// made (their `credentials_changed_at`, else their creation): that time. The remedy is dated
/// no earlier, so it is taken once whatever the clocks say.
fn changed_since(user: &User, changed: Option<i64>) -> Option<i64> {
    let since = user.credentials_changed_at.unwrap_or(user.created_at);
    changed.filter(|t| *t > since)
}

/// When the entry's password last changed: OpenLDAP ppolicy's `pwdChangedTime` (a
/// GeneralizedTime, RFC 4517 §3.3.13), Active Directory's `pwdLastSet` (a FILETIME; 0 is a
/// reset, seen by `was_reset`).
fn password_changed_at(entry: &SearchEntry) -> Option<i64> {
    if let Some(t) = first(entry, "pwdChangedTime").and_then(|v| generalized_time(&v)) {
        return Some(t);
    }
    first(entry, "pwdLastSet")
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|t| *t > 0)
        .map(|t| t / 10_000_000 - FILETIME_UNIX_OFFSET)
}

/// `YYYYMMDDHHMMSS[.fraction]Z` as Unix seconds (UTC only).
fn generalized_time(v: &str) -> Option<i64> {
    let v = v.strip_suffix('Z')?;
    let v = v.split(['.', ',']).next()?;
    if v.len() != 14 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| v[a..b].parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (hh, mm, ss) = (n(8, 10)?, n(10, 12)?, n(12, 14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = shared::clock::days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(d).ok()?);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
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

/// The id the link keeps: the id attribute's value (a binary one in hex).
fn subject(cfg: &LdapConfig, entry: &SearchEntry) -> Option<String> {
    if let Some(v) = first(entry, &cfg.id_attribute) {
        return Some(v);
    }
    entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&cfg.id_attribute))
        .and_then(|(_, v)| v.first())
        .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
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

/// Does the entry say the account is disabled, locked or expired (at `now`)?
fn disabled(entry: &SearchEntry, now: i64) -> bool {
    let number = |attr: &str| first(entry, attr).and_then(|v| v.parse::<i64>().ok());
    let uac = number("userAccountControl").is_some_and(|v| v & (ACCOUNTDISABLE as i64) != 0);
    let locked = first(entry, "pwdAccountLockedTime").is_some();
    let ns = first(entry, "nsAccountLock").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // Active Directory: locked out (a FILETIME, 0 when not), expired (0 and i64::MAX: never).
    let ad_locked = number("lockoutTime").is_some_and(|t| t > 0);
    let expired = number("accountExpires")
        .is_some_and(|t| t > 0 && t < i64::MAX && t / 10_000_000 - FILETIME_UNIX_OFFSET <= now);
    uac || locked || ns || ad_locked || expired
}

/// Did the directory reset the password, to be changed first (OpenLDAP ppolicy `pwdReset`,
/// Active Directory `pwdLastSet` 0)?
fn was_reset(entry: &SearchEntry) -> bool {
    first(entry, "pwdReset").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || first(entry, "pwdLastSet").as_deref() == Some("0")
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
        assert!(!disabled(&entry(&[("uid", "a")]), 0));
        assert!(disabled(&entry(&[("userAccountControl", "514")]), 0));
        assert!(!disabled(&entry(&[("useraccountcontrol", "512")]), 0));
        assert!(disabled(
            &entry(&[("pwdAccountLockedTime", "000001010000Z")]),
            0
        ));
        assert!(disabled(&entry(&[("nsAccountLock", "TRUE")]), 0));
        // Active Directory: locked out, expired (FILETIME), never expiring.
        assert!(disabled(
            &entry(&[("lockoutTime", "133000000000000000")]),
            0
        ));
        assert!(!disabled(&entry(&[("lockoutTime", "0")]), 0));
        let at = |unix: i64| ((unix + FILETIME_UNIX_OFFSET) * 10_000_000).to_string();
        assert!(disabled(&entry(&[("accountExpires", &at(1000))]), 2000));
        assert!(!disabled(&entry(&[("accountExpires", &at(3000))]), 2000));
        assert!(!disabled(&entry(&[("accountExpires", "0")]), 0));
        assert!(!disabled(
            &entry(&[("accountExpires", "9223372036854775807")]),
            0
        ));
        // When the password changed.
        assert_eq!(generalized_time("19700101000000Z"), Some(0));
        assert_eq!(generalized_time("20261207191500Z"), Some(1_796_670_900));
        assert_eq!(generalized_time("20000301000000.5Z"), Some(951_868_800));
        assert_eq!(generalized_time("20261207191500"), None);
        assert_eq!(generalized_time("2026120719Z"), None);
        let at = ((1000 + FILETIME_UNIX_OFFSET) * 10_000_000).to_string();
        assert_eq!(
            password_changed_at(&entry(&[("pwdLastSet", &at)])),
            Some(1000)
        );
        assert_eq!(password_changed_at(&entry(&[("pwdLastSet", "0")])), None);
        // Reset to be changed first.
        assert!(was_reset(&entry(&[("pwdReset", "TRUE")])));
        assert!(was_reset(&entry(&[("pwdLastSet", "0")])));
        assert!(!was_reset(&entry(&[("pwdLastSet", "133000000000000000")])));
    }

    #[test]
    fn the_link_keeps_the_id_a_binary_one_in_hex_never_the_dn() {
        let cfg = LdapConfig::default();
        assert_eq!(
            subject(&cfg, &entry(&[("entryUUID", "abc-1")])).as_deref(),
            Some("abc-1")
        );
        assert_eq!(subject(&cfg, &entry(&[])), None);
        let mut bin = entry(&[]);
        bin.bin_attrs
            .insert("objectGUID".into(), vec![vec![0x01, 0xfe]]);
        let ad = LdapConfig {
            id_attribute: "objectGUID".into(),
            ..LdapConfig::default()
        };
        assert_eq!(subject(&ad, &bin).as_deref(), Some("01fe"));
        assert_eq!(hex_bytes("01fe"), Some(vec![0x01, 0xfe]));
    }
}
