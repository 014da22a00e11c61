//! What the authorization server (`authz`) and resource servers (`mcp-resource`) share.
//!
//! Always there (plain data and rules, no I/O): OAuth error codes and bodies (`error`), scopes
//! (`scope`), access-token claims (`claims`), secret newtypes (`secret`), the injected clock
//! (`clock`), crypto helpers (`crypto`), per-client rate-limit rules and the client address
//! behind proxies (`ratelimit`) and the readiness answer (`probe`).
//!
//! Behind cargo features, the pieces that touch the outside:
//! - `config`: configuration read from TOML files and the environment;
//! - `db`: the database opener (SQLite or PostgreSQL through sqlx's `Any` driver) and
//!   `db::begin_write`, the one way a store begins a transaction that writes (`BEGIN
//!   IMMEDIATE` on SQLite, so a read-then-write transaction waits for the write lock instead of
//!   failing with `SQLITE_BUSY`; a plain `BEGIN` on PostgreSQL);
//! - `batch`: the group-commit writer (audit logs);
//! - `limits`: rate-limit counters in this process or in Redis (shared by replicas);
//! - `verifier`: the offline JWT verifier that fetches the issuer's JWKS;
//! - `dpop`: DPoP (RFC 9449) proofs, binding, nonces and challenges;
//! - `cors`: CORS for browser clients;
//! - `observe`: logs as text or JSON, request ids and request metrics;
//! - `http`: what reads an axum request (the request-id middleware and request metrics of
//!   `observe`, the `X-Forwarded-For` lines for `ratelimit::client_ip`); `cors` and `tls` build
//!   on it, `authz-core` does without it;
//! - `tls`: native TLS (rustls), reloadable on SIGHUP;
//! - `serve`: the serve bootstrap both binaries run (`serve::Server`: public listener with
//!   TCP_NODELAY, TLS and its SIGHUP reload, the metrics listener; `serve::Tasks`, the
//!   background loops stopped together; `serve::shutdown_signal`, graceful on Ctrl-C or
//!   SIGTERM).

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
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "verifier")]
pub mod verifier;

pub use claims::{ACCESS_TOKEN_TYP, AccessTokenClaims};
pub use error::{ErrorCode, ErrorResponse, error_description};
pub use scope::{Scope, ScopeError, ScopeSet};
