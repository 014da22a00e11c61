//! The plain types and rules configuration shares with the layers above it (LAYERING.md:
//! `config` names nothing of the crate but `error` and `crypto`): the signing algorithms
//! (`keys` re-exports them), the JWKS cache lifetime, the password-only `acr`, and the
//! resource indicator rule (RFC 8707 §2; `policy::resource` re-exports it).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A JWS algorithm the server signs with (RFC 8725 §3.1: a fixed allow-list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl FromStr for SigningAlg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(format!(
                "unsupported signing algorithm {other:?} (RS256, ES256, EdDSA)"
            )),
        }
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long verifiers may cache the JWKS (`Cache-Control: max-age`); the pre-publication delay
/// of a rotated key is at least this long (`Config::validate`).
pub const JWKS_MAX_AGE_SECS: i64 = 60;

/// The `acr` of a sign-in with a password alone (OIDC Core §2).
pub const ACR_PASSWORD: &str = "pwd";

/// RFC 8707 §2: an absolute URI without a fragment. We also require http(s).
pub(crate) fn validate_resource_uri(value: &str) -> std::result::Result<(), String> {
    let url =
        url::Url::parse(value).map_err(|e| format!("{value:?} is not an absolute URI: {e}"))?;
    if url.fragment().is_some() || value.contains('#') {
        return Err(format!(
            "{value:?} must not contain a fragment (RFC 8707 §2)"
        ));
    }
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{value:?} must be an http(s) URI"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{value:?} contains whitespace"));
    }
    Ok(())
}
