//! The JWT access-token profile (RFC 9068 §2.2) as issued by `authz` and read by resource servers.

use serde::{Deserialize, Serialize};

/// The JOSE `typ` header value of every access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Claims of an access token (RFC 9068 §2.2). `aud` is a single string: one audience per token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user's id, or `client:<client_id>` for a client acting on its own behalf
    /// (RFC 9068 §2.2: must not collide with a user's subject).
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    /// Space-delimited (RFC 8693 §4.2 / RFC 9068 §2.2.3).
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// The browser session the grant came from (OIDC `sid`); lets a resource server refuse
    /// tokens of a session that was logged out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// RFC 8693 §4.1: the party acting for the subject (a token obtained by token exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// RFC 9068 §2.2.3.1 / RFC 7643 `roles`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// How the user authenticated (RFC 8176 values, e.g. `pwd`, `otp`; OIDC Core §2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The authentication context class the sign-in satisfied (OIDC Core §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// RFC 9449 §6.1 / RFC 7800 §3.1: the token is bound to a DPoP key (its RFC 7638
    /// thumbprint); only requests with a proof signed by that key may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 §3.1 `cnf`, with the one member used here: RFC 9449 §6.1 `jkt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// Subject prefix for tokens a client obtains for itself (client_credentials).
pub const CLIENT_SUBJECT_PREFIX: &str = "client:";

/// RFC 8693 §4.1 `act`: who is acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
}

/// RFC 8693 §3 token type identifiers.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
