//! Configuration of enterprise-managed authorization (the MCP extension built on
//! draft-ietf-oauth-identity-assertion-authz-grant, "ID-JAG"): the identity providers whose
//! Identity Assertion JWT Authorization Grants this server accepts on the jwt-bearer grant.
//!
//! TOML, one table per trusted IdP:
//!
//! ```toml
//! [[id_jag.issuers]]
//! issuer = "https://acme.idp.example"          # the ID-JAG's `iss`, compared exactly
//! jwks_uri = "https://acme.idp.example/jwks"   # fetched through the SSRF-guarded fetcher
//! allowed_clients = ["wiki-agent"]             # local client ids the IdP may name
//! subject_claim = "email"                      # sub | email | preferred_username
//! subjects = { "U019488227" = "alice" }        # subject_claim = "sub": IdP sub → username
//! audience = "https://auth.example.com"        # optional: the `aud` expected instead of our issuer
//! ```
//!
//! or one IdP from the environment: `AUTHZ_ID_JAG_ISSUER`, `AUTHZ_ID_JAG_JWKS_URI`,
//! `AUTHZ_ID_JAG_CLIENTS` (comma-separated), `AUTHZ_ID_JAG_SUBJECT_CLAIM`,
//! `AUTHZ_ID_JAG_AUDIENCE`. No issuer configured: the jwt-bearer grant is off (not in the
//! metadata, `unsupported_grant_type` at the token endpoint).

use std::collections::BTreeMap;

use serde::Deserialize;
use shared::config::{ConfigError, Env};

/// `[id_jag]`: the trusted identity providers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdJagConfig {
    pub issuers: Vec<TrustedIssuer>,
}

/// One identity provider whose ID-JAGs are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// Its issuer identifier (RFC 8414 §2), compared byte for byte with the ID-JAG's `iss`.
    pub issuer: String,
    /// Its JWK Set (https; fetched with the guarded metadata fetcher, cached).
    pub jwks_uri: String,
    /// The local clients it may issue ID-JAGs for (the `client_id` claim); none: it is useless.
    #[serde(default)]
    pub allowed_clients: Vec<String>,
    /// Which claim names the local user.
    #[serde(default)]
    pub subject_claim: SubjectClaim,
    /// For `subject_claim = "sub"`: the IdP's subject identifier → the local username.
    #[serde(default)]
    pub subjects: BTreeMap<String, String>,
    /// The `aud` the ID-JAG must carry; default: this server's issuer.
    #[serde(default)]
    pub audience: Option<String>,
}

/// How an ID-JAG's subject becomes a local user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectClaim {
    /// `sub`, looked up in the issuer's `subjects` table (IdP subject → local username):
    /// `iss` + `sub` is the only pair an IdP guarantees to be stable (OIDC Core §2).
    Sub,
    /// `email` (refused when `email_verified` is `false`): the local user with that username,
    /// else the one local user with that email address.
    #[default]
    Email,
    /// `preferred_username`: the local user with that username.
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
    /// Is the jwt-bearer grant on (at least one trusted issuer)?
    pub fn enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// The trusted issuer `iss` names, compared exactly (RFC 8414 §3.3 simple string
    /// comparison).
    pub fn issuer(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.issuers.iter().find(|i| i.issuer == iss)
    }

    /// One issuer from `AUTHZ_ID_JAG_*`, added to those of the file.
    pub fn apply_env<F: Fn(&str) -> Option<String>>(
        &mut self,
        env: &Env<F>,
    ) -> Result<(), ConfigError> {
        let Some(issuer) = env.get("AUTHZ_ID_JAG_ISSUER").filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        let jwks_uri = env
            .get("AUTHZ_ID_JAG_JWKS_URI")
            .ok_or_else(|| ConfigError("AUTHZ_ID_JAG_ISSUER needs AUTHZ_ID_JAG_JWKS_URI".into()))?;
        let mut one = TrustedIssuer {
            issuer,
            jwks_uri,
            allowed_clients: Vec::new(),
            subject_claim: SubjectClaim::default(),
            subjects: BTreeMap::new(),
            audience: None,
        };
        env.set_list("AUTHZ_ID_JAG_CLIENTS", &mut one.allowed_clients)?;
        env.set("AUTHZ_ID_JAG_SUBJECT_CLAIM", &mut one.subject_claim)?;
        env.set_some("AUTHZ_ID_JAG_AUDIENCE", &mut one.audience)?;
        self.issuers.retain(|i| i.issuer != one.issuer);
        self.issuers.push(one);
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |i: &TrustedIssuer, m: &str| {
            Err(ConfigError(format!("id_jag issuer {:?}: {m}", i.issuer)))
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
            if i.subject_claim == SubjectClaim::Sub && i.subjects.is_empty() {
                return bad(
                    i,
                    "subject_claim = \"sub\" needs a subjects table (IdP sub → local username)",
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
"#,
        )
        .unwrap();
        let c = crate::config::Config::load(Some(&path), |_| None).unwrap();
        let acme = c.id_jag.issuer("https://acme.idp.example").unwrap();
        assert_eq!(acme.subject_claim, SubjectClaim::Sub);
        assert_eq!(acme.subjects["U019488227"], "alice");
        let other = c.id_jag.issuer("https://other.idp.example").unwrap();
        assert_eq!(other.subject_claim, SubjectClaim::Email, "the default");
        assert_eq!(other.audience.as_deref(), Some("https://auth.example.com"));
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
        c.apply_env(&Env::new(env_of(&[
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
        assert!(c.validate().is_ok());
        assert!(c.issuer("https://idp.example/").is_none(), "exact match");

        let broken = |f: &dyn Fn(&mut TrustedIssuer)| {
            let mut c = c.clone();
            f(&mut c.issuers[0]);
            c.validate().is_err()
        };
        assert!(broken(&|i| i.jwks_uri = "http://idp.example/jwks".into()));
        assert!(broken(&|i| i.issuer = "http://idp.example".into()));
        assert!(broken(&|i| i.allowed_clients.clear()));
        assert!(broken(&|i| i.subject_claim = SubjectClaim::Sub));
        let mut twice = c.clone();
        twice.issuers.push(c.issuers[0].clone());
        assert!(twice.validate().is_err());

        let mut missing = IdJagConfig::default();
        assert!(
            missing
                .apply_env(&Env::new(env_of(&[(
                    "AUTHZ_ID_JAG_ISSUER",
                    "https://idp.example"
                )])))
                .is_err()
        );
        assert!(
            missing
                .apply_env(&Env::new(env_of(&[
                    ("AUTHZ_ID_JAG_ISSUER", "https://idp.example"),
                    ("AUTHZ_ID_JAG_JWKS_URI", "https://idp.example/jwks"),
                    ("AUTHZ_ID_JAG_SUBJECT_CLAIM", "uid"),
                ])))
                .is_err()
        );
    }
}
