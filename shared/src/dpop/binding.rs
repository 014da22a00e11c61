//! The one rule for a request that presents an access token to a protected resource (RFC 9449
//! §7, §7.2; RFC 6750 §2.1). Every resource endpoint of `authz` (UserInfo, the management API)
//! and the MCP server apply it after verifying the token and before acting on it:
//!
//! | scheme | token          | outcome                                                        |
//! |--------|----------------|----------------------------------------------------------------|
//! | Bearer | unbound        | accepted; no proof is looked at                                |
//! | Bearer | `cnf.jkt`      | `invalid_token`: a bound token is not a bearer token (§7.2)    |
//! | DPoP   | unbound        | `invalid_token`                                                |
//! | DPoP   | `cnf.jkt`      | exactly one `DPoP` header with a proof for this request (§4.3: `htm`, `htu` = the resource's configured URL, `iat`, `ath` = hash of this token, a server nonce where asked) signed by the key `cnf.jkt` names; else `invalid_dpop_proof` (`use_dpop_nonce`), or `invalid_token` for another key |
//!
//! The proof's `jti` is not spent here ([`super::DpopVerifier::spend`]): the server spends it
//! once its own limits let the request through, so refused requests cannot fill the replay
//! cache. [`Challenge`] renders the `WWW-Authenticate` challenges of a refusal.

use super::{CHALLENGE_ALGS, DpopError, DpopVerifier, NonceCheck, ProofRequest, VerifiedProof};
use crate::ErrorCode;

/// The authorization scheme a token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RFC 6750 §2.1.
    Bearer,
    /// RFC 9449 §7.1.
    Dpop,
}

/// What a request's `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    /// No header, or another scheme (RFC 6750 §3.1: answered without an error code).
    Missing,
    /// `Bearer`/`DPoP` without a well-formed token (`invalid_token`).
    Malformed(Scheme),
    Token(Scheme, &'a str),
}

impl<'a> Authorization<'a> {
    /// Parse the header's value: `Bearer <b64token>` or `DPoP <b64token>`, the scheme in any
    /// case (RFC 9110 §11.1), the token68 characters of RFC 6750 §2.1.
    pub fn parse(value: Option<&'a [u8]>) -> Self {
        let Some(v) = value else {
            return Self::Missing;
        };
        // Not text: nothing a client meant as a token (reported as a malformed Bearer).
        let Ok(v) = std::str::from_utf8(v) else {
            return Self::Malformed(Scheme::Bearer);
        };
        let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
        let scheme = if scheme.eq_ignore_ascii_case("bearer") {
            Scheme::Bearer
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Scheme::Dpop
        } else {
            return Self::Missing;
        };
        let token = token.trim();
        let token68 = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
        if token.is_empty() || !token.chars().all(token68) {
            return Self::Malformed(scheme);
        }
        Self::Token(scheme, token)
    }
}

/// A resource request's token, as verified, and what its proof must match.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub scheme: Scheme,
    pub token: &'a str,
    /// The verified token's `cnf.jkt` (RFC 9449 §6.1), if it has one.
    pub bound: Option<&'a str>,
    /// The request's method.
    pub method: &'a str,
    /// This resource's URI as its clients know it (configured, never a Host header a proxy
    /// rewrote).
    pub uri: &'a str,
}

/// How the request holds its token.
#[derive(Debug, Clone)]
pub enum Binding {
    /// An unbound token under the Bearer scheme.
    Bearer,
    /// A bound token with a valid proof by its key — not yet spent.
    Proved(VerifiedProof),
}

/// Why a presentation is refused (401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `invalid_token`: scheme and binding disagree, or the proof's key is not the token's.
    Token(&'static str),
    /// The proof: `invalid_dpop_proof`, `use_dpop_nonce` (or the replay store is full).
    Proof(DpopError),
}

impl Refusal {
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Token(_) => ErrorCode::InvalidToken,
            Self::Proof(e) => e.error_code(),
        }
    }

    /// Safe to show the presenter (never the token or the proof).
    pub fn description(&self) -> String {
        match self {
            Self::Token(d) => (*d).to_owned(),
            Self::Proof(e) => e.to_string(),
        }
    }
}

impl From<DpopError> for Refusal {
    fn from(e: DpopError) -> Self {
        Self::Proof(e)
    }
}

impl DpopVerifier {
    /// The rule of this module for `presented` with the request's `DPoP` header values
    /// (`proofs`) at `now`. `with_nonce`: this resource asks for this server's nonce (when it
    /// issues nonces, [`DpopVerifier::with_nonces`]).
    pub fn check_presented<'h>(
        &self,
        presented: &Presented<'_>,
        proofs: impl IntoIterator<Item = &'h [u8]>,
        with_nonce: bool,
        now: i64,
    ) -> Result<Binding, Refusal> {
        let bound = match (presented.scheme, presented.bound) {
            (Scheme::Bearer, None) => return Ok(Binding::Bearer),
            (Scheme::Bearer, Some(_)) => {
                return Err(Refusal::Token(
                    "the token is DPoP-bound: present it with the DPoP scheme and a proof",
                ));
            }
            (Scheme::Dpop, None) => {
                return Err(Refusal::Token(
                    "the token is not DPoP-bound: present it with the Bearer scheme",
                ));
            }
            (Scheme::Dpop, Some(jkt)) => jkt,
        };
        // §4.3 step 1: exactly one DPoP header.
        let mut proofs = proofs.into_iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(
                DpopError::Invalid("exactly one DPoP proof header is required".into()).into(),
            );
        };
        let proof = std::str::from_utf8(proof)
            .map_err(|_| DpopError::Invalid("the DPoP header is not a JWT".into()))?;
        let request = ProofRequest {
            method: presented.method,
            uri: presented.uri,
            access_token: Some(presented.token),
        };
        let nonce = self
            .nonces()
            .filter(|_| with_nonce)
            .map(|n| n as &dyn NonceCheck);
        let verified = self.check(proof, &request, nonce, now)?;
        // §7: signed by the key the token is bound to.
        if !verified.jkt.matches(bound) {
            return Err(Refusal::Token(
                "the DPoP proof is signed with another key than the token is bound to",
            ));
        }
        Ok(Binding::Proved(verified))
    }
}

/// The `WWW-Authenticate` challenges of a resource's 401/403 (RFC 6750 §3, RFC 9449 §7.1):
/// one per scheme, Bearer first (clients that know only Bearer read the first). The error goes
/// into the challenge of the scheme the request used; a request under the DPoP scheme, a
/// resource that takes no Bearer tokens, and a nonce request (§9) get the DPoP challenge only.
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    /// The scheme the request used (`None`: no token).
    pub used: Option<Scheme>,
    /// The error code and its description, when there is an error (RFC 6750 §3.1).
    pub error: Option<(ErrorCode, &'a str)>,
    /// Parameters every challenge carries, already rendered (`realm="authz"`, or `scope=…,
    /// resource_metadata=…`); may be empty.
    pub params: &'a str,
    /// This resource accepts Bearer tokens.
    pub bearer: bool,
    /// This resource accepts DPoP (the DPoP challenge is offered).
    pub dpop: bool,
}

impl Challenge<'_> {
    pub fn render(&self) -> Vec<String> {
        let quote = |s: &str| s.replace(['"', '\\'], "");
        let error = self
            .error
            .map(|(code, d)| format!("error=\"{code}\", error_description=\"{}\"", quote(d)));
        let nonce = matches!(self.error, Some((ErrorCode::UseDpopNonce, _)));
        let dpop_only = self.used == Some(Scheme::Dpop) || !self.bearer || nonce;
        let params = |error: Option<&str>| {
            [self.params, error.unwrap_or("")]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = Vec::with_capacity(2);
        if !dpop_only {
            let p = params(error.as_deref());
            out.push(if p.is_empty() {
                "Bearer".to_owned()
            } else {
                format!("Bearer {p}")
            });
        }
        if self.dpop || dpop_only {
            let p = params(error.as_deref().filter(|_| dpop_only));
            let mut c = format!("DPoP algs=\"{CHALLENGE_ALGS}\"");
            if !p.is_empty() {
                c.push_str(", ");
                c.push_str(&p);
            }
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_authorization_header() {
        let p = |s: &'static str| Authorization::parse(Some(s.as_bytes()));
        assert_eq!(
            p("Bearer abc.def-ghi_"),
            Authorization::Token(Scheme::Bearer, "abc.def-ghi_")
        );
        assert_eq!(
            p("bearer  abc "),
            Authorization::Token(Scheme::Bearer, "abc")
        );
        assert_eq!(p("DPoP a.b.c"), Authorization::Token(Scheme::Dpop, "a.b.c"));
        assert_eq!(p("dpop a.b.c"), Authorization::Token(Scheme::Dpop, "a.b.c"));
        assert_eq!(p("Basic abc"), Authorization::Missing);
        assert_eq!(p("Bearer"), Authorization::Malformed(Scheme::Bearer));
        assert_eq!(p("Bearer "), Authorization::Malformed(Scheme::Bearer));
        assert_eq!(p("DPoP a,b"), Authorization::Malformed(Scheme::Dpop));
        assert_eq!(Authorization::parse(None), Authorization::Missing);
        assert_eq!(
            Authorization::parse(Some(b"Bearer \xff")),
            Authorization::Malformed(Scheme::Bearer)
        );
    }

    #[test]
    fn challenges_put_the_error_where_the_request_was() {
        let base = Challenge {
            used: Some(Scheme::Bearer),
            error: Some((ErrorCode::InvalidToken, "the \"token\" is bad")),
            params: "realm=\"authz\"",
            bearer: true,
            dpop: true,
        };
        assert_eq!(
            base.render(),
            [
                "Bearer realm=\"authz\", error=\"invalid_token\", error_description=\"the token is bad\"",
                "DPoP algs=\"ES256 RS256 EdDSA\", realm=\"authz\"",
            ]
        );
        let dpop = Challenge {
            used: Some(Scheme::Dpop),
            ..base
        };
        assert_eq!(
            dpop.render(),
            [
                "DPoP algs=\"ES256 RS256 EdDSA\", realm=\"authz\", error=\"invalid_token\", error_description=\"the token is bad\""
            ]
        );
        let none = Challenge {
            used: None,
            error: None,
            params: "",
            ..base
        };
        assert_eq!(none.render(), ["Bearer", "DPoP algs=\"ES256 RS256 EdDSA\""]);
        let no_dpop = Challenge {
            dpop: false,
            ..none
        };
        assert_eq!(no_dpop.render(), ["Bearer"]);
        let nonce = Challenge {
            error: Some((ErrorCode::UseDpopNonce, "nonce")),
            ..base
        };
        assert_eq!(nonce.render().len(), 1);
        assert!(nonce.render()[0].starts_with("DPoP "));
    }
}
