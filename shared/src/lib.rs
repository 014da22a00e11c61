//! What the authorization server (`authz`) and resource servers (`mcp-resource`) share: OAuth
//! error codes and bodies, scopes, access-token claims, secret newtypes, the injected clock,
//! crypto helpers, per-client rate limiting and the readiness answer (plain data and rules, no
//! I/O); and, behind features, the pieces that touch the outside: configuration reading from
//! files and the environment (`config`), CORS for browser clients (`cors`), the database
//! opener (`db`), the group-commit writer (`batch`) and the offline JWT verifier that fetches
//! the issuer's JWKS (`verifier`).

#[cfg(feature = "batch")]
pub mod batch;
pub mod claims;
pub mod clock;
#[cfg(feature = "config")]
pub mod config;
#[cfg(feature = "cors")]
pub mod cors;
pub mod crypto;
#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "dpop")]
pub mod dpop;
pub mod error;
#[cfg(feature = "limits")]
pub mod limits;
#[cfg(feature = "observe")]
pub mod observe;
pub mod probe;
pub mod ratelimit;
pub mod scope;
pub mod secret;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "verifier")]
pub mod verifier;

pub use claims::{ACCESS_TOKEN_TYP, AccessTokenClaims};
pub use error::{ErrorCode, ErrorResponse, error_description};
pub use scope::{Scope, ScopeError, ScopeSet};
