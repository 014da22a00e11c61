//! Strict `application/x-www-form-urlencoded` parsing for OAuth endpoints.
//!
//! RFC 6749 §3.1/§3.2: parameters must not be repeated (except `resource`, RFC 8707 §2, which
//! policy then limits to one). Invalid UTF-8, oversized input and too many parameters are
//! `invalid_request` rather than silently repaired.
//!
//! The same parser reads this server's own page forms (console, sign-in). A page form with a
//! group of checkboxes sharing one name (the scopes of a new API key) names that group in
//! [`Form::from_request_with_lists`]; nothing else may repeat, and the OAuth endpoints never
//! pass a list.
//!
//! The web edge hands over the request's `Content-Type` (as text, `None` when absent or not
//! text) and its body; nothing here reads a header map.

use std::collections::BTreeMap;

use crate::clients::authentication::{ClientCredentials, form_decode};
use crate::error::{Error, Result};

/// Largest body accepted on an OAuth form endpoint.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest single value (a refresh token, a scope list, a URI…).
pub const MAX_VALUE_BYTES: usize = 4 * 1024;
const MAX_PARAMS: usize = 32;

/// Parameters that may legitimately appear more than once.
const REPEATABLE: &[&str] = &["resource"];

/// A parsed form: each name maps to its values in order.
#[derive(Debug, Default)]
pub struct Form(BTreeMap<String, Vec<String>>);

impl Form {
    /// Check the content type (`content_type`: the request's `Content-Type`) and parse `body`.
    pub fn from_request(content_type: Option<&str>, body: &[u8]) -> Result<Self> {
        Self::from_request_with_lists(content_type, body, &[])
    }

    /// [`Form::from_request`] for one of this server's page forms whose checkbox groups
    /// `lists` repeat a name (one value per ticked box; read them with [`Form::all`]). Never
    /// for an OAuth endpoint: RFC 6749 §3.1 forbids repeated parameters there.
    pub fn from_request_with_lists(
        content_type: Option<&str>,
        body: &[u8],
        lists: &[&str],
    ) -> Result<Self> {
        if !media_type_is(content_type, "application/x-www-form-urlencoded") {
            return Err(Error::invalid_request(
                "the body must be application/x-www-form-urlencoded (RFC 6749 §4)",
            ));
        }
        Self::parse_with_lists(body, lists)
    }

    pub fn parse(body: &[u8]) -> Result<Self> {
        Self::parse_with_lists(body, &[])
    }

    /// Parse `body`; only `resource` and the names in `lists` may repeat.
    fn parse_with_lists(body: &[u8], lists: &[&str]) -> Result<Self> {
        if body.len() > MAX_BODY_BYTES {
            return Err(Error::invalid_request("request body is too large"));
        }
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut count = 0;
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(Error::invalid_request("too many parameters"));
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = form_decode(name)?;
            let value = form_decode(value)?;
            if value.len() > MAX_VALUE_BYTES {
                return Err(Error::invalid_request(format!(
                    "parameter {name} is too long"
                )));
            }
            let values = map.entry(name.clone()).or_default();
            let repeatable = REPEATABLE.contains(&name.as_str()) || lists.contains(&name.as_str());
            if !values.is_empty() && !repeatable {
                return Err(Error::invalid_request(format!(
                    "parameter {name} is repeated (RFC 6749 §3.2)"
                )));
            }
            values.push(value);
        }
        Ok(Self(map))
    }

    /// A parameter's value; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| Error::invalid_request(format!("missing required parameter {name}")))
    }

    /// All non-empty values of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .get(name)
            .map(|v| {
                v.iter()
                    .map(String::as_str)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The client credentials of a request with this body: `presented` (the edge's, with the
    /// `Authorization` header) completed by the body's parameters (RFC 6749 §2.3.1 `client_id`
    /// and `client_secret`, RFC 7523 §2.2 `client_assertion_type` and `client_assertion`).
    pub fn client_credentials(&self, presented: ClientCredentials) -> ClientCredentials {
        let get = |name| self.get(name).map(str::to_owned);
        ClientCredentials {
            client_id: get("client_id"),
            client_secret: get("client_secret"),
            assertion_type: get("client_assertion_type"),
            assertion: get("client_assertion"),
            ..presented
        }
    }
}

/// Is `content_type` the media type `expected` (parameters allowed, case-insensitive, RFC 9110
/// §8.3.1)?
fn media_type_is(content_type: Option<&str>, expected: &str) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

/// Refuse a body that is not `application/json` (parameters allowed), naming the `rule` that
/// requires it (e.g. "RFC 7591 §3.1"); `content_type` is the request's `Content-Type`.
pub fn require_json(content_type: Option<&str>, rule: &str) -> Result<()> {
    if media_type_is(content_type, "application/json") {
        Ok(())
    } else {
        Err(Error::invalid_request(format!(
            "the body must be application/json ({rule})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let f = Form::parse(b"grant_type=password&username=a%20b&password=p%2Bq+r&scope=").unwrap();
        assert_eq!(f.get("username"), Some("a b"));
        assert_eq!(f.get("password"), Some("p+q r"));
        assert_eq!(f.get("scope"), None);
        assert!(f.require("scope").is_err());
    }

    #[test]
    fn rejects_duplicates_but_not_resource() {
        assert!(Form::parse(b"a=1&a=2").is_err());
        assert!(Form::parse(b"a=1&a=").is_err());
        let f = Form::parse(b"resource=x&resource=y").unwrap();
        assert_eq!(f.all("resource"), vec!["x", "y"]);
    }

    #[test]
    fn page_forms_may_repeat_only_their_named_lists() {
        let f = Form::parse_with_lists(b"scope=a&scope=b&name=x", &["scope"]).unwrap();
        assert_eq!(f.all("scope"), vec!["a", "b"]);
        assert!(Form::parse_with_lists(b"scope=a&name=x&name=y", &["scope"]).is_err());
        // The OAuth parser still refuses a repeated scope (RFC 6749 §3.1).
        assert!(Form::parse(b"scope=a&scope=b").is_err());
    }

    #[test]
    fn rejects_bad_utf8_and_oversize() {
        assert!(Form::parse(b"a=%FF").is_err());
        assert!(Form::parse(&vec![b'a'; MAX_BODY_BYTES + 1]).is_err());
        let long = format!("a={}", "x".repeat(MAX_VALUE_BYTES + 1));
        assert!(Form::parse(long.as_bytes()).is_err());
        let many: Vec<String> = (0..40).map(|i| format!("p{i}=1")).collect();
        assert!(Form::parse(many.join("&").as_bytes()).is_err());
    }
}
