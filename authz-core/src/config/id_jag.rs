//! Configuration of enterprise-managed authorization (the MCP extension built on
//! draft-ietf-oauth-identity-assertion-authz-grant, "ID-JAG"): the identity providers whose
//! Identity Assertion JWT Authorization Grants this server accepts on the jwt-bearer grant,
//! and how their subjects become local users (`protocol::id_jag_subject`).
//!
//! TOML, one table per trusted IdP:
//!
//! ```toml
//! [id_jag]
//! privileged_roles = ["admin"]                 # users holding these: only for issuers allowed
//!
//! [[id_jag.issuers]]
//! issuer = "https://acme.idp.example"          # the ID-JAG's `iss`, compared exactly
//! jwks_uri = "https://acme.idp.example/jwks"   # fetched through the SSRF-guarded fetcher
//! allowed_clients = ["wiki-agent"]             # local client ids the IdP may name
//! subject_claim = "sub"                        # sub (default) | email | preferred_username
//! subjects = { "U019488227" = "alice" }        # optional static links: IdP sub → username
//! email_domains = ["acme.example"]             # subject_claim = "email": required allow-list
//! allow_privileged = false                     # may it speak for privileged users?
//! audience = "https://auth.example.com"        # optional: the `aud` expected instead of our issuer
//! ```
//!
//! or one IdP from the environment: `AUTHZ_ID_JAG_ISSUERS_ISSUER`, `…_JWKS_URI`,
//! `…_ALLOWED_CLIENTS` (comma-separated), `…_SUBJECT_CLAIM`, `…_EMAIL_DOMAINS`
//! (comma-separated), `…_ALLOW_PRIVILEGED`, `…_AUDIENCE`; `AUTHZ_ID_JAG_PRIVILEGED_ROLES`
//! (comma-separated) for every issuer. No issuer configured: the jwt-bearer grant is off (not in the metadata,
//! `unsupported_grant_type` at the token endpoint).
//!
//! Before issue 24 the default `subject_claim` was `email`, matched against usernames too and
//! accepted without `email_verified`: any IdP user could be mapped to any local account,
//! administrators included. The default is now `sub`, an explicit link per IdP subject
//! (`authz id-jag link`); `email` needs `email_domains` and `email_verified: true`.

use std::collections::BTreeMap;

use serde::Deserialize;
use shared::config::ConfigError;

use super::table::{Lookup, Section, invalid, is_set, section};

section! {
    /// `[id_jag]`: the trusted identity providers.
    #[serde(default, deny_unknown_fields)]
    pub struct IdJagConfig at "id_jag" {
        /// Roles (comma-separated) whose holders no issuer may speak for unless its
        /// `allow_privileged` is set (whatever the subject mapping). Unset:
        /// `DEFAULT_PRIVILEGED_ROLES` (`admin`); set, each must be a configured role.
        privileged_roles: Option<Vec<String>> = None;
    }
    toml {
        /// `[[id_jag.issuers]]`, one table per trusted identity provider.
        issuers: Vec<TrustedIssuer> = Vec::new();
    }
}

/// The privileged roles when `privileged_roles` is not set.
pub(crate) const DEFAULT_PRIVILEGED_ROLES: &[&str] = &["admin"];

section! {
    /// One identity provider whose ID-JAGs are accepted (`[[id_jag.issuers]]`; the environment
    /// may add one).
    #[serde(deny_unknown_fields)]
    pub struct TrustedIssuer at "id_jag.issuers" {
        /// Its issuer identifier (RFC 8414 §2), compared byte for byte with the ID-JAG's `iss`.
        issuer: String = String::new(), was ["AUTHZ_ID_JAG_ISSUER"];
        /// Its JWK Set (https; fetched with the guarded metadata fetcher, outside the metadata
        /// fetch budgets, cached, and kept for `cimd.key_set_max_stale_secs` while its host
        /// fails).
        jwks_uri: String = String::new(), was ["AUTHZ_ID_JAG_JWKS_URI"];
        /// The local clients it may issue ID-JAGs for (the `client_id` claim), comma-separated;
        /// none: it is useless.
        #[serde(default)]
        allowed_clients: Vec<String> = Vec::new(), was ["AUTHZ_ID_JAG_CLIENTS"];
        /// Which claim names the local user: `sub` (linked to a local user by an operator with
        /// `authz id-jag link <issuer> <sub> <username>`, or the TOML `subjects` table),
        /// `email` (only with `email_verified` true, in `email_domains`; never a username) or
        /// `preferred_username`. Before issue 24 the default was `email`.
        #[serde(default)]
        subject_claim: SubjectClaim = SubjectClaim::Sub, was ["AUTHZ_ID_JAG_SUBJECT_CLAIM"];
        /// For `subject_claim = "email"` (required there, refused elsewhere): the domains whose
        /// addresses it may assert, comma-separated, compared exactly after ASCII lower-casing
        /// (no subdomains).
        #[serde(default)]
        email_domains: Vec<String> = Vec::new(), was ["AUTHZ_ID_JAG_EMAIL_DOMAINS"];
        /// May it speak for users holding a privileged role (`id_jag.privileged_roles`)?
        #[serde(default)]
        allow_privileged: bool = false, was ["AUTHZ_ID_JAG_ALLOW_PRIVILEGED"];
        /// The `aud` the ID-JAG must carry; default: this server's issuer.
        #[serde(default)]
        audience: Option<String> = None, was ["AUTHZ_ID_JAG_AUDIENCE"];
    }
    toml {
        /// For `subject_claim = "sub"`: static links, the IdP's subject identifier → the local
        /// username (beside those of `authz id-jag link`); TOML only.
        #[serde(default)]
        subjects: BTreeMap<String, String> = BTreeMap::new();
    }
}

/// How an ID-JAG's subject becomes a local user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectClaim {
    /// `sub`, explicitly linked to a local user by an operator (`authz id-jag link`, or the
    /// issuer's static `subjects` table): `iss` + `sub` is the only pair an IdP guarantees to
    /// be stable and never reassigned (OIDC Core §2, §5.7).
    #[default]
    Sub,
    /// `email`, only with `email_verified: true` and in one of the issuer's `email_domains`:
    /// the one local user with that email address (never a username).
    Email,
    /// `preferred_username`: the local user with that username (the IdP's names are trusted
    /// entirely; OIDC Core §5.7 warns they are neither unique nor stable).
    PreferredUsername,
}

impl SubjectClaim {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sub => "sub",
            Self::Email => "email",
            Self::PreferredUsername => "preferred_username",
        }
    }
}

impl std::str::FromStr for SubjectClaim {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sub" => Ok(Self::Sub),
            "email" => Ok(Self::Email),
            "preferred_username" => Ok(Self::PreferredUsername),
            other => Err(format!("{other:?}: use sub, email or preferred_username")),
        }
    }
}

impl IdJagConfig {
    /// Does holding `role` make a user privileged (`privileged_roles`)?
    pub(crate) fn is_privileged_role(&self, role: &str) -> bool {
        match &self.privileged_roles {
            Some(list) => list.iter().any(|r| r == role),
            None => DEFAULT_PRIVILEGED_ROLES.contains(&role),
        }
    }

    /// Is the jwt-bearer grant on (at least one trusted issuer)?
    pub fn enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// The trusted issuer `iss` names, compared exactly (RFC 8414 §3.3 simple string
    /// comparison).
    pub fn issuer(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }

    /// `privileged_roles`, and one issuer from the environment (`AUTHZ_ID_JAG_ISSUERS_*`),
    /// added to those of the file (replacing one of the same `issuer`).
    pub(crate) fn apply_env(&mut self, env: &Lookup<'_>) -> Result<(), ConfigError> {
        self.apply_vars(env)?;
        if !is_set::<TrustedIssuer>(env, "issuer") {
            return Ok(());
        }
        if !is_set::<TrustedIssuer>(env, "jwks_uri") {
            return Err(invalid(
                TrustedIssuer::PATH,
                "issuer",
                "needs a jwks_uri too",
            ));
        }
        let mut one = TrustedIssuer::default();
        one.apply_vars(env)?;
        self.issuers.retain(|i| i.issuer != one.issuer);
        self.issuers.push(one);
        Ok(())
    }

    /// Check every issuer; `roles` are the configured roles (`privileged_roles`, when set,
    /// must name some of them: a typo would leave the real role unprotected).
    pub fn validate(&self, roles: &BTreeMap<String, Vec<String>>) -> Result<(), ConfigError> {
        let explicit = self.privileged_roles.iter().flatten();
        if let Some(r) = explicit.clone().find(|r| !roles.contains_key(*r)) {
            return Err(invalid(
                IdJagConfig::PATH,
                "privileged_roles",
                &format!("unknown role {r:?}"),
            ));
        }
        let bad = |i: &TrustedIssuer, m: &str| {
            Err(ConfigError(format!("id_jag.issuers {:?}: {m}", i.issuer)))
        };
        for (n, i) in self.issuers.iter().enumerate() {
            let iss = url::Url::parse(&i.issuer).ok();
            if !iss.as_ref().is_some_and(|u| {
                shared::config::https_or_loopback(u.scheme(), u.host_str())
                    && u.fragment().is_none()
                    && u.query().is_none()
            }) {
                return bad(
                    i,
                    "issuer must be an https URL without query or fragment (RFC 8414 §2)",
                );
            }
            let jwks_ok = url::Url::parse(&i.jwks_uri)
                .is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !jwks_ok {
                return bad(i, "jwks_uri must be an https URL");
            }
            if i.allowed_clients.is_empty() || i.allowed_clients.iter().any(String::is_empty) {
                return bad(
                    i,
                    "allowed_clients must name the local clients it may issue grants for",
                );
            }
            match (i.subject_claim, i.email_domains.is_empty()) {
                (SubjectClaim::Email, true) => {
                    return bad(
                        i,
                        "subject_claim = \"email\" needs email_domains (the domains whose \
                         addresses this IdP may assert)",
                    );
                }
                (SubjectClaim::Sub | SubjectClaim::PreferredUsername, false) => {
                    return bad(i, "email_domains applies to subject_claim = \"email\" only");
                }
                _ => {}
            }
            if let Some(d) = i.email_domains.iter().find(|d| !is_domain(d)) {
                return bad(
                    i,
                    &format!("email_domains: {d:?} is not a domain name (like example.com)"),
                );
            }
            if let Some(aud) = &i.audience
                && url::Url::parse(aud).is_err()
            {
                return bad(i, "audience must be a URL (an issuer identifier)");
            }
            if self.issuers[..n].iter().any(|o| o.issuer == i.issuer) {
                return bad(i, "listed twice");
            }
        }
        Ok(())
    }
}

/// A DNS name as an email domain: dot-separated labels of letters, digits and `-`, no empty
/// label (so no leading or trailing dot).
fn is_domain(d: &str) -> bool {
    d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

// Read from the environment by its name (`SubjectClaim::as_str`).
super::table::scalars!(SubjectClaim => |v| v.as_str().to_owned());
super::table::plain!(SubjectClaim);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::env_of;

    #[test]
    fn issuers_from_the_toml_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authz.toml");
        std::fs::write(
            &path,
            r#"
[[id_jag.issuers]]
issuer = "https://acme.idp.example"
jwks_uri = "https://acme.idp.example/keys"
allowed_clients = ["wiki-agent"]
subject_claim = "sub"
subjects = { "U019488227" = "alice" }

[[id_jag.issuers]]
issuer = "https://other.idp.example"
jwks_uri = "https://other.idp.example/keys"
allowed_clients = ["agent"]
audience = "https://auth.example.com"

[[id_jag.issuers]]
issuer = "https://mail.idp.example"
jwks_uri = "https://mail.idp.example/keys"
allowed_clients = ["agent"]
subject_claim = "email"
email_domains = ["Example.com"]
allow_privileged = true
"#,
        )
        .unwrap();
        let c = crate::config::Config::load(Some(&path), |_| None).unwrap();
        let acme = c.id_jag.issuer("https://acme.idp.example").unwrap();
        assert_eq!(acme.subject_claim, SubjectClaim::Sub);
        assert_eq!(acme.subjects["U019488227"], "alice");
        let other = c.id_jag.issuer("https://other.idp.example").unwrap();
        // The default is an explicit link per subject (issue 24 item 11; it was `email`),
        // and no issuer speaks for privileged users unless allowed to.
        assert_eq!(other.subject_claim, SubjectClaim::Sub, "the default");
        assert!(other.subjects.is_empty() && !other.allow_privileged);
        assert_eq!(other.audience.as_deref(), Some("https://auth.example.com"));
        let mail = c.id_jag.issuer("https://mail.idp.example").unwrap();
        assert_eq!(mail.subject_claim, SubjectClaim::Email);
        assert_eq!(mail.email_domains, ["Example.com"]);
        assert!(mail.allow_privileged);
        assert!(c.id_jag.is_privileged_role("admin") && !c.id_jag.is_privileged_role("user"));
        // A typo is an error, not an ignored key.
        std::fs::write(
            &path,
            "[[id_jag.issuers]]\nissuer = \"https://a.example\"\njwks_uri = \"https://a.example/k\"\nallowed_client = [\"x\"]\n",
        )
        .unwrap();
        assert!(crate::config::Config::load(Some(&path), |_| None).is_err());
    }

    #[test]
    fn one_issuer_from_the_environment_and_validation() {
        let mut c = IdJagConfig::default();
        assert!(!c.enabled());
        c.apply_env(&Lookup::new(&env_of(&[
            ("AUTHZ_ID_JAG_ISSUER", "https://idp.example"),
            ("AUTHZ_ID_JAG_JWKS_URI", "https://idp.example/jwks"),
            ("AUTHZ_ID_JAG_CLIENTS", "agent,wiki"),
            ("AUTHZ_ID_JAG_SUBJECT_CLAIM", "preferred_username"),
        ])))
        .unwrap();
        assert!(c.enabled());
        let i = c.issuer("https://idp.example").unwrap();
        assert_eq!(i.allowed_clients, ["agent", "wiki"]);
        assert_eq!(i.subject_claim, SubjectClaim::PreferredUsername);
        let roles = crate::config::default_roles();
        assert!(c.validate(&roles).is_ok());
        assert!(c.issuer("https://idp.example/").is_none(), "exact match");

        let broken = |f: &dyn Fn(&mut TrustedIssuer)| {
            let mut c = c.clone();
            f(&mut c.issuers[0]);
            c.validate(&roles).is_err()
        };
        assert!(broken(&|i| i.jwks_uri = "http://idp.example/jwks".into()));
        assert!(broken(&|i| i.issuer = "http://idp.example".into()));
        assert!(broken(&|i| i.allowed_clients.clear()));
        // Links need no static table (they are in storage: `authz id-jag link`).
        assert!(!broken(&|i| i.subject_claim = SubjectClaim::Sub));
        // Email mapping needs its domains; domains only with email mapping; domains are names.
        assert!(broken(&|i| i.subject_claim = SubjectClaim::Email));
        assert!(broken(&|i| i.email_domains = vec!["example.com".into()]));
        for (domain, ok) in [
            ("example.com", true),
            ("Mail.Example.COM", true),
            ("@example.com", false),
            (".example.com", false),
            ("example.com.", false),
            ("*.example.com", false),
            ("", false),
        ] {
            let set = |i: &mut TrustedIssuer| {
                i.subject_claim = SubjectClaim::Email;
                i.email_domains = vec![domain.into()];
            };
            assert_eq!(!broken(&set), ok, "{domain:?}");
        }
        let mut twice = c.clone();
        twice.issuers.push(c.issuers[0].clone());
        assert!(twice.validate(&roles).is_err());

        // The rest from the environment; privileged roles must be known ones once set.
        c.apply_env(&Lookup::new(&env_of(&[
            ("AUTHZ_ID_JAG_ISSUER", "https://mail.idp.example"),
            ("AUTHZ_ID_JAG_JWKS_URI", "https://mail.idp.example/jwks"),
            ("AUTHZ_ID_JAG_CLIENTS", "agent"),
            ("AUTHZ_ID_JAG_SUBJECT_CLAIM", "email"),
            ("AUTHZ_ID_JAG_EMAIL_DOMAINS", "example.com, example.org"),
            ("AUTHZ_ID_JAG_ALLOW_PRIVILEGED", "true"),
            ("AUTHZ_ID_JAG_PRIVILEGED_ROLES", "admin,service"),
        ])))
        .unwrap();
        let m = c.issuer("https://mail.idp.example").unwrap();
        assert_eq!(m.email_domains, ["example.com", "example.org"]);
        assert!(m.allow_privileged);
        assert!(c.is_privileged_role("service") && c.is_privileged_role("admin"));
        assert!(c.validate(&roles).is_ok());
        c.privileged_roles = Some(vec!["admins".into()]);
        assert!(c.validate(&roles).is_err(), "a typo is not a silent no-op");
        // Unset, the default names `admin` even where no such role is configured.
        assert!(IdJagConfig::default().validate(&Default::default()).is_ok());

        let mut missing = IdJagConfig::default();
        assert!(
            missing
                .apply_env(&Lookup::new(&env_of(&[(
                    "AUTHZ_ID_JAG_ISSUER",
                    "https://idp.example"
                )])))
                .is_err()
        );
        assert!(
            missing
                .apply_env(&Lookup::new(&env_of(&[
                    ("AUTHZ_ID_JAG_ISSUER", "https://idp.example"),
                    ("AUTHZ_ID_JAG_JWKS_URI", "https://idp.example/jwks"),
                    ("AUTHZ_ID_JAG_SUBJECT_CLAIM", "uid"),
                ])))
                .is_err()
        );
    }
}
