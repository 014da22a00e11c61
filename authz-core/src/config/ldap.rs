//! `[ldap]`: sign-in against an LDAP directory or Active Directory (issue 26). A directory user
//! signs in with the same form (and the password grant where it is on); the directory checks
//! the password with a bind, this server keeps the account (linked as the federated identity
//! `ldap` / the entry's id), its roles from the directory groups and its second factors.
//!
//! ```toml
//! [ldap]
//! url = "ldaps://dc1.corp.example"                # or ldap://… with StartTLS (the default)
//! ca_file = "/etc/authz/corp-ca.pem"             # default: the system's roots
//! bind_dn = "cn=authz,ou=services,dc=corp,dc=example"
//! bind_password_file = "/run/secrets/ldap"        # or bind_password, or AUTHZ_LDAP_BIND_PASSWORD
//! user_base = "ou=people,dc=corp,dc=example"
//! user_filter = "(&(objectClass=inetOrgPerson)(uid={username}))"
//! roles = ["user"]
//! group_roles = { "cn=authz-admins,ou=groups,dc=corp,dc=example" = "admin" }
//! ```
//!
//! Every key but `group_roles` is also `AUTHZ_LDAP_<KEY>`. The reference with the Active
//! Directory recipe is `docs/federation.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use shared::config::ConfigError;
use shared::secret::Password;

use super::table::{Lookup, Section, invalid, section};

/// The provider id of directory identities (`federated_identities.provider`); no
/// `[[upstream]]` may take it.
pub const PROVIDER: &str = "ldap";

section! {
    /// `[ldap]`: an LDAP directory (OpenLDAP, 389-DS, Active Directory) people sign in with.
    #[serde(default, deny_unknown_fields)]
    pub struct LdapConfig at "ldap" {
        /// `ldaps://host[:port]`, or `ldap://host[:port]` with StartTLS. Unset: no directory.
        url: Option<String> = None;
        /// With `ldap://`: upgrade with StartTLS (RFC 4511 §4.14) before anything is sent.
        starttls: bool = true;
        /// With `ldap://` and `starttls = false`: allow the plain connection. Refused unless
        /// the directory is on a loopback address (a sidecar, a test).
        allow_plain: bool = false;
        /// PEM file of the certificate authorities the directory's certificate chains to.
        /// Unset: the system's roots.
        ca_file: Option<PathBuf> = None;
        /// How the directory is named in the console (linked identities).
        name: String = "Directory".to_owned();
        /// The service account that searches for users (unset: anonymous search).
        bind_dn: Option<String> = None;
        /// Its password (or `bind_password_file`).
        bind_password: Option<Password> = None;
        /// A file holding the service account's password (trimmed).
        bind_password_file: Option<PathBuf> = None;
        /// Where users are searched.
        user_base: String = String::new();
        /// The search filter; `{username}` is replaced by what was typed, escaped (RFC 4515
        /// §3). Active Directory: `(&(objectClass=user)(sAMAccountName={username}))`.
        user_filter: String = "(&(objectClass=inetOrgPerson)(uid={username}))".to_owned();
        /// `sub` (the whole subtree) or `one` (only the entries right under `user_base`).
        user_scope: String = "sub".to_owned();
        /// The entry's stable id, which the link keeps (`entryUUID`; Active Directory:
        /// `objectGUID`). An entry without it does not sign in (a DN is reused).
        id_attribute: String = "entryUUID".to_owned();
        /// The username a provisioned user gets (Active Directory: `sAMAccountName`).
        username_attribute: String = "uid".to_owned();
        /// The address a provisioned user gets (taken only with `trust_email`).
        email_attribute: String = "mail".to_owned();
        /// The display name (the `name` claim), refreshed at every sign-in.
        name_attribute: String = "displayName".to_owned();
        /// Take the directory's addresses as verified (a provisioned user gets theirs). Only
        /// where people cannot edit their own `mail`.
        trust_email: bool = false;
        /// The user's groups as DNs on the entry (`memberOf`); empty: not read.
        member_of_attribute: String = "memberOf".to_owned();
        /// Also search groups under this base with `group_filter` (directories without
        /// `memberOf`).
        group_base: Option<String> = None;
        /// `{dn}` is the user's DN, `{username}` their username, both escaped.
        group_filter: String = "(&(objectClass=groupOfNames)(member={dn}))".to_owned();
        /// Provision a local user at the first directory sign-in (off: only directory users
        /// linked already sign in).
        jit: bool = true;
        /// Roles of every user the directory provisions (those of `group_roles` are added).
        roles: Vec<String> = vec!["user".to_owned()];
        /// Connections to the directory kept open (and the most in use at once).
        pool_size: usize = 4, range 1..=64;
        /// Seconds to connect (TCP and TLS).
        connect_timeout_secs: u64 = 5, range 1..=60;
        /// Seconds for one operation (bind, search).
        timeout_secs: u64 = 5, range 1..=60;
    }
    toml {
        /// Group (its DN; or with `group_base`, the value of its first RDN, e.g. `cn`, for a
        /// group under that base only; any case) → local role. The roles named here follow the
        /// directory's groups at every sign-in.
        group_roles: BTreeMap<String, String> = BTreeMap::new();
    }
}

/// The search scope (`user_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Subtree,
    OneLevel,
}

impl LdapConfig {
    /// Is a directory configured?
    pub fn enabled(&self) -> bool {
        self.url.is_some()
    }

    pub fn scope(&self) -> Scope {
        if self.user_scope == "one" {
            Scope::OneLevel
        } else {
            Scope::Subtree
        }
    }

    /// The service account's password from `bind_password_file` (when not set otherwise).
    pub(crate) fn apply_env(&mut self, env: &Lookup<'_>) -> Result<(), ConfigError> {
        self.apply_vars(env)?;
        if self.bind_password.is_none()
            && let Some(path) = &self.bind_password_file
        {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    Self::PATH,
                    "bind_password_file",
                    &format!("{}: {e}", path.display()),
                )
            })?;
            self.bind_password = Some(Password::new(text.trim().to_owned()));
        }
        Ok(())
    }

    /// Refuse what would be insecure or cannot work.
    pub fn validate(
        &self,
        roles: &BTreeMap<String, Vec<String>>,
        only: Option<&str>,
    ) -> Result<(), ConfigError> {
        self.check_ranges()?;
        let bad = |key: &str, m: &str| Err(invalid(Self::PATH, key, m));
        let Some(raw) = &self.url else {
            if only == Some(PROVIDER) {
                return Err(invalid(
                    "federation",
                    "only",
                    "is \"ldap\" but no [ldap] url is configured",
                ));
            }
            return Ok(());
        };
        let Ok(url) = url::Url::parse(raw) else {
            return bad("url", &format!("{raw:?} is not a URL"));
        };
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() || !matches!(url.path(), "" | "/") || url.query().is_some() {
            return bad("url", "must be ldaps://host[:port] or ldap://host[:port]");
        }
        match url.scheme() {
            "ldaps" => {}
            "ldap" if self.starttls => {}
            "ldap" => {
                let loopback = matches!(host, "localhost" | "[::1]")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback());
                if !(self.allow_plain && loopback) {
                    return bad(
                        "starttls",
                        "may be off only with allow_plain = true and a loopback directory: \
                         passwords would cross the network in clear",
                    );
                }
            }
            _ => return bad("url", "must be ldaps:// or ldap://"),
        }
        if self.user_base.trim().is_empty() {
            return bad("user_base", "is required with a url");
        }
        let filter_ok = |f: &str| f.starts_with('(') && f.ends_with(')');
        if !filter_ok(&self.user_filter) || !self.user_filter.contains("{username}") {
            return bad(
                "user_filter",
                "must be a parenthesised filter containing {username}",
            );
        }
        if self.group_base.is_some()
            && (!filter_ok(&self.group_filter)
                || !(self.group_filter.contains("{dn}")
                    || self.group_filter.contains("{username}")))
        {
            return bad(
                "group_filter",
                "must be a parenthesised filter containing {dn} or {username}",
            );
        }
        if !matches!(self.user_scope.as_str(), "sub" | "one") {
            return bad("user_scope", "must be sub or one");
        }
        if self.id_attribute.is_empty() || self.username_attribute.is_empty() {
            return bad(
                "id_attribute",
                "and username_attribute must name attributes",
            );
        }
        if self.bind_dn.is_some() && self.bind_password.is_none() {
            return bad(
                "bind_password",
                "is required with bind_dn (or bind_password_file, or AUTHZ_LDAP_BIND_PASSWORD)",
            );
        }
        if let Some(path) = &self.ca_file
            && !path.is_file()
        {
            return bad("ca_file", &format!("{} is not a file", path.display()));
        }
        // A short key names a group under `group_base` only (a group of the same name
        // elsewhere may be one a user created).
        if let Some(k) = self.group_roles.keys().find(|k| !k.contains('='))
            && self.group_base.is_none()
        {
            return bad(
                "group_roles",
                &format!(
                    "key {k:?} is a group name, which needs group_base (or use the group's DN)"
                ),
            );
        }
        for r in self.roles.iter().chain(self.group_roles.values()) {
            if !roles.contains_key(r) {
                return bad("roles", &format!("unknown role {r:?}"));
            }
        }
        if self.jit && self.roles.is_empty() && self.group_roles.is_empty() {
            return bad("roles", "jit needs roles for the users it provisions");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> BTreeMap<String, Vec<String>> {
        crate::config::default_roles()
    }

    fn ldap(url: &str) -> LdapConfig {
        LdapConfig {
            url: Some(url.to_owned()),
            user_base: "ou=people,dc=example,dc=org".into(),
            ..LdapConfig::default()
        }
    }

    #[test]
    fn plain_ldap_only_to_loopback_and_only_when_asked() {
        assert!(ldap("ldaps://dc.example").validate(&roles(), None).is_ok());
        assert!(ldap("ldap://dc.example").validate(&roles(), None).is_ok());
        let plain = |url: &str, allow: bool| LdapConfig {
            starttls: false,
            allow_plain: allow,
            ..ldap(url)
        };
        assert!(
            plain("ldap://dc.example", true)
                .validate(&roles(), None)
                .is_err()
        );
        assert!(
            plain("ldap://127.0.0.1:3389", false)
                .validate(&roles(), None)
                .is_err()
        );
        assert!(
            plain("ldap://127.0.0.1:3389", true)
                .validate(&roles(), None)
                .is_ok()
        );
        assert!(ldap("http://dc.example").validate(&roles(), None).is_err());
    }

    #[test]
    fn filters_roles_and_secrets_are_checked() {
        let no_placeholder = LdapConfig {
            user_filter: "(uid=alice)".into(),
            ..ldap("ldaps://dc.example")
        };
        assert!(no_placeholder.validate(&roles(), None).is_err());
        let unknown_role = LdapConfig {
            roles: vec!["root".into()],
            ..ldap("ldaps://dc.example")
        };
        assert!(unknown_role.validate(&roles(), None).is_err());
        let no_password = LdapConfig {
            bind_dn: Some("cn=svc".into()),
            ..ldap("ldaps://dc.example")
        };
        let e = no_password.validate(&roles(), None).unwrap_err();
        assert!(e.to_string().contains("AUTHZ_LDAP_BIND_PASSWORD"), "{e}");
        assert!(
            LdapConfig::default()
                .validate(&roles(), Some(PROVIDER))
                .is_err()
        );
        assert!(
            ldap("ldaps://dc.example")
                .validate(&roles(), Some(PROVIDER))
                .is_ok()
        );
    }
}
