//! The `BearerToken` extractor: an access token from the `Authorization: Bearer` header only
//! (RFC 6750 §2.1; never the query string or a form body, §2.2–2.3 are not supported). Every
//! endpoint that takes a bearer token uses it, and then `oauth::live` to check the token.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use shared::secret::AccessToken;

use crate::error::Error;

/// The presented bearer token (redacted in `Debug`).
#[derive(Debug, Clone)]
pub struct BearerToken(pub AccessToken);

/// Why there is no bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBearer {
    /// No `Authorization` header, or another scheme: RFC 6750 §3.1 says to answer without an
    /// error code.
    Missing,
    /// `Bearer` with an empty or malformed value.
    Malformed,
}

impl BearerToken {
    /// Parse the header value (`Bearer <token68>`, scheme case-insensitive).
    pub fn parse(value: Option<&axum::http::HeaderValue>) -> Result<Self, NoBearer> {
        let Some(v) = value else {
            return Err(NoBearer::Missing);
        };
        let v = v.to_str().map_err(|_| NoBearer::Malformed)?;
        let Some((scheme, token)) = v.split_once(' ') else {
            return Err(if v.eq_ignore_ascii_case("bearer") {
                NoBearer::Malformed
            } else {
                NoBearer::Missing
            });
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(NoBearer::Missing);
        }
        let token = token.trim();
        // RFC 6750 §2.1 b64token.
        let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
        if token.is_empty() || !token.chars().all(token68) {
            return Err(NoBearer::Malformed);
        }
        Ok(Self(AccessToken::new(token)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl From<NoBearer> for Error {
    fn from(e: NoBearer) -> Self {
        match e {
            NoBearer::Missing => Error::no_token(),
            NoBearer::Malformed => Error::invalid_token("the Authorization header is malformed"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Ok(Self::parse(parts.headers.get(header::AUTHORIZATION))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_well_formed_bearer_headers() {
        let p = |s: &str| BearerToken::parse(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(p("Bearer abc.def-ghi_").unwrap().expose(), "abc.def-ghi_");
        assert_eq!(p("bearer  abc ").unwrap().expose(), "abc");
        assert_eq!(p("Basic abc").unwrap_err(), NoBearer::Missing);
        assert_eq!(p("Bearer").unwrap_err(), NoBearer::Malformed);
        assert_eq!(p("Bearer ").unwrap_err(), NoBearer::Malformed);
        assert_eq!(p("Bearer a,b").unwrap_err(), NoBearer::Malformed);
        assert_eq!(BearerToken::parse(None).unwrap_err(), NoBearer::Missing);
    }
}
