//! Scope policy (RFC 6749 §3.3): what a request may be granted. Unknown or forbidden scopes are
//! refused with `invalid_scope`, never silently dropped.

use shared::ScopeSet;
use shared::scope::{OFFLINE_ACCESS, OIDC_SCOPES};

use crate::config::Config;
use crate::error::{Error, Result};

pub use shared::scope::OPENID;

/// The scopes this server knows: every role's scopes plus the OpenID Connect ones.
#[derive(Debug, Clone)]
pub struct ScopePolicy {
    known: ScopeSet,
}

impl ScopePolicy {
    pub fn new(config: &Config) -> Self {
        let roles = config.role_scopes(config.roles.keys().map(String::as_str));
        let oidc = ScopeSet::from_tokens(OIDC_SCOPES).unwrap_or_default();
        Self {
            known: roles.union(&oidc),
        }
    }

    /// Every scope that can be granted by some grant of this server (for metadata).
    pub fn supported(&self) -> ScopeSet {
        let mut s = self.known.clone();
        s.remove(OPENID);
        s
    }

    /// Resolve the `scope` parameter against `allowed`. Absent → `allowed` minus
    /// `offline_access` and `openid` (RFC 6749 §3.3 pre-defined default). `refused` are scopes
    /// this grant can never carry, with the reason.
    pub fn resolve(
        &self,
        requested: Option<&str>,
        allowed: &ScopeSet,
        refused: &[(&str, &str)],
    ) -> Result<ScopeSet> {
        let granted = match requested {
            Some(raw) => {
                let req = ScopeSet::parse(raw)
                    .map_err(|e| Error::invalid_scope(format!("malformed scope: {e}")))?;
                for (scope, why) in refused {
                    if req.contains(scope) {
                        return Err(Error::invalid_scope(format!("{scope}: {why}")));
                    }
                }
                let unknown = req.difference(&self.known);
                if !unknown.is_empty() {
                    return Err(Error::invalid_scope(format!("unknown scope: {unknown}")));
                }
                let forbidden = req.difference(allowed);
                if !forbidden.is_empty() {
                    return Err(Error::invalid_scope(format!(
                        "scope not permitted: {forbidden}"
                    )));
                }
                req
            }
            None => {
                let mut d = allowed.clone();
                d.remove(OFFLINE_ACCESS);
                d.remove(OPENID);
                d
            }
        };
        if granted.is_empty() {
            return Err(Error::invalid_scope(
                "no scope can be granted to this request",
            ));
        }
        Ok(granted)
    }
}

/// What a scope lets a client do, in words for the consent page.
/// The scope of a grant that narrows an earlier one (refresh, RFC 6749 §6; token exchange,
/// RFC 8693 §2.1): what is requested must lie within `earlier` (else `invalid_scope` naming
/// the excess, `beyond` saying what the earlier grant was) and within `allowed`, the part of
/// it that current policy still permits. Absent, the scope is all of `allowed`. Nothing left
/// is `invalid_scope`: a narrowed grant never widens, and never silently becomes empty.
pub fn narrow(
    requested: Option<&str>,
    earlier: &ScopeSet,
    allowed: &ScopeSet,
    beyond: &str,
) -> Result<ScopeSet> {
    let scope = match requested {
        Some(raw) => {
            let req = ScopeSet::parse(raw)
                .map_err(|e| Error::invalid_scope(format!("malformed scope: {e}")))?;
            let excess = req.difference(earlier);
            if !excess.is_empty() {
                return Err(Error::invalid_scope(format!("{beyond}: {excess}")));
            }
            let forbidden = req.difference(allowed);
            if !forbidden.is_empty() {
                return Err(Error::invalid_scope(format!(
                    "scope no longer permitted: {forbidden}"
                )));
            }
            req
        }
        None => allowed.clone(),
    };
    if scope.is_empty() {
        return Err(Error::invalid_scope(
            "no scope can be granted: none of the earlier grant's scopes is still permitted",
        ));
    }
    Ok(scope)
}

/// What `scope` lets a client do, with this configuration's words: an upstream provider's
/// vault scope (`upstream:<id>`) names the provider.
pub fn describe_in(config: &Config, scope: &str) -> String {
    let provider = scope
        .strip_prefix("upstream:")
        .and_then(|id| config.upstream.iter().find(|u| u.id == id));
    match provider {
        Some(up) => format!(
            "Use your {} account: this server hands your {} access to the tools that call it",
            up.name, up.name
        ),
        None => describe(scope).to_owned(),
    }
}

pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are (sign you in)",
        "profile" => "See your username",
        "email" => "See your email address",
        "offline_access" => "Stay connected when you are not using it",
        "profile:read" => "Read your profile: username, roles and permissions",
        "notes:read" => "Read your secure notes",
        "notes:write" => "Create secure notes for you",
        "keys:write" => "Create and revoke API keys for your account",
        "audit:read" => "Read the security audit log",
        "security:read" => "Read the security summary",
        _ => "A permission defined by this server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScopePolicy {
        ScopePolicy::new(&Config::default())
    }

    #[test]
    fn resolves_requested_default_unknown_forbidden() {
        let p = policy();
        let allowed = ScopeSet::parse("notes:read profile:read offline_access").unwrap();
        assert_eq!(
            p.resolve(Some("notes:read"), &allowed, &[])
                .unwrap()
                .to_string(),
            "notes:read"
        );
        assert_eq!(
            p.resolve(None, &allowed, &[]).unwrap().to_string(),
            "notes:read profile:read"
        );
        let e = p
            .resolve(Some("notes:read nope"), &allowed, &[])
            .unwrap_err();
        assert_eq!(e.code(), shared::ErrorCode::InvalidScope);
        assert!(e.to_string().contains("unknown scope: nope"));
        let e = p.resolve(Some("audit:read"), &allowed, &[]).unwrap_err();
        assert!(e.to_string().contains("not permitted: audit:read"));
        let e = p.resolve(
            Some("offline_access"),
            &allowed,
            &[("offline_access", "no")],
        );
        assert!(e.is_err());
        assert!(p.resolve(None, &ScopeSet::new(), &[]).is_err());
        assert!(p.resolve(Some("a\"b"), &allowed, &[]).is_err());
    }

    #[test]
    fn narrowing_never_widens_and_never_empties() {
        let earlier = ScopeSet::parse("notes:read notes:write profile:read").unwrap();
        // The user lost notes:write since the earlier grant.
        let allowed = ScopeSet::parse("notes:read profile:read").unwrap();
        let n = |req| narrow(req, &earlier, &allowed, "beyond the grant");
        assert_eq!(n(None).unwrap().to_string(), "notes:read profile:read");
        assert_eq!(n(Some("notes:read")).unwrap().to_string(), "notes:read");
        let e = n(Some("notes:read audit:read")).unwrap_err();
        assert_eq!(e.code(), shared::ErrorCode::InvalidScope);
        assert!(
            e.to_string().contains("beyond the grant: audit:read"),
            "{e}"
        );
        let e = n(Some("notes:write")).unwrap_err();
        assert!(
            e.to_string().contains("no longer permitted: notes:write"),
            "{e}"
        );
        assert!(n(Some("a\"b")).is_err());
        let e = narrow(None, &earlier, &ScopeSet::new(), "x").unwrap_err();
        assert_eq!(e.code(), shared::ErrorCode::InvalidScope);
    }
}
