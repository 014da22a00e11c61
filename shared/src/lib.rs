//! Types shared by the authorization server (`authz`) and resource servers (`mcp-resource`):
//! OAuth error codes and bodies, scopes, access-token claims and secret newtypes.
//!
//! Everything here is plain data plus validation; no I/O.

#[cfg(feature = "batch")]
pub mod batch;
pub mod claims;
pub mod crypto;
#[cfg(feature = "db")]
pub mod db;
pub mod error;
pub mod ratelimit;
pub mod scope;
pub mod secret;
#[cfg(feature = "verifier")]
pub mod verifier;

pub use claims::{ACCESS_TOKEN_TYP, AccessTokenClaims};
pub use error::{ErrorCode, ErrorResponse};
pub use scope::{Scope, ScopeError, ScopeSet};
