//! Scope tokens and sets (RFC 6749 §3.3): validated, ordered, space-delimited on the wire.

use std::collections::BTreeSet;
use std::fmt;

/// Scopes understood by OpenID Connect; any role may hold them (design notes).
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// `openid` asks for an ID token, which only the authorization-code flow issues (OIDC Core §3).
pub const OPENID: &str = "openid";

/// `offline_access` asks for a refresh token (OIDC Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Longest scope token accepted; anything longer is certainly not one of ours.
const MAX_SCOPE_TOKEN_LEN: usize = 128;
/// Most scope tokens accepted in one request.
const MAX_SCOPE_TOKENS: usize = 64;

/// A single scope token. Its characters are RFC 6749 §3.3 `NQCHAR`s.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn new(token: &str) -> Result<Self, ScopeError> {
        if token.is_empty() {
            return Err(ScopeError::Empty);
        }
        if token.len() > MAX_SCOPE_TOKEN_LEN {
            return Err(ScopeError::TooLong);
        }
        // NQCHAR = %x21 / %x23-5B / %x5D-7E
        let ok = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok {
            return Err(ScopeError::InvalidCharacter);
        }
        Ok(Self(token.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope tokens must not be empty")]
    Empty,
    #[error("a scope token is longer than {MAX_SCOPE_TOKEN_LEN} characters")]
    TooLong,
    #[error("too many scope tokens (at most {MAX_SCOPE_TOKENS})")]
    TooMany,
    #[error("scope contains a character outside RFC 6749 §3.3 (NQCHAR)")]
    InvalidCharacter,
}

/// An ordered set of scopes; `Display` gives the space-delimited wire form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse the space-delimited wire form. Exactly one space separates tokens (RFC 6749 §3.3);
    /// leading, trailing or doubled spaces are refused rather than guessed at.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        let mut set = BTreeSet::new();
        for (i, token) in s.split(' ').enumerate() {
            if i >= MAX_SCOPE_TOKENS {
                return Err(ScopeError::TooMany);
            }
            set.insert(Scope::new(token)?);
        }
        Ok(Self(set))
    }

    /// Build from trusted strings (configuration); invalid tokens are an error.
    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        tokens
            .into_iter()
            .map(|t| Scope::new(t.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.union(&other.0).cloned().collect())
    }

    /// The members of `self` that are not in `other`.
    pub fn difference(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.difference(&other.0).cloned().collect())
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0.insert(scope);
    }

    pub fn remove(&mut self, scope: &str) {
        self.0.retain(|s| s.as_str() != scope);
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
            first = false;
        }
        Ok(())
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sorted() {
        let s = ScopeSet::parse("notes:write profile:read notes:read").unwrap();
        assert_eq!(s.to_string(), "notes:read notes:write profile:read");
        assert!(s.contains("notes:read"));
        assert!(!s.contains("notes"));
    }

    #[test]
    fn rejects_bad_forms() {
        assert_eq!(ScopeSet::parse(" a").unwrap_err(), ScopeError::Empty);
        assert_eq!(ScopeSet::parse("a  b").unwrap_err(), ScopeError::Empty);
        assert_eq!(
            ScopeSet::parse("a\"b").unwrap_err(),
            ScopeError::InvalidCharacter
        );
        assert_eq!(
            ScopeSet::parse("a\\b").unwrap_err(),
            ScopeError::InvalidCharacter
        );
        assert_eq!(
            ScopeSet::parse("é").unwrap_err(),
            ScopeError::InvalidCharacter
        );
        let many = vec!["x"; 65]
            .iter()
            .enumerate()
            .map(|(i, _)| format!("s{i}"))
            .collect::<Vec<_>>();
        assert_eq!(
            ScopeSet::parse(&many.join(" ")).unwrap_err(),
            ScopeError::TooMany
        );
    }

    #[test]
    fn set_algebra() {
        let a = ScopeSet::parse("a b c").unwrap();
        let b = ScopeSet::parse("b c d").unwrap();
        assert_eq!(a.intersection(&b).to_string(), "b c");
        assert_eq!(a.difference(&b).to_string(), "a");
        assert!(ScopeSet::parse("b").unwrap().is_subset(&a));
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }
}
