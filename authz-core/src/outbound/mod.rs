//! Everything this server fetches from a URL someone else supplied (client metadata documents,
//! `jwks_uri`, ID-JAG issuers' keys): the SSRF guard, the budgeted fetcher and the key-set cache.

pub mod budget;
pub mod cimd;
pub mod fetch;
pub mod fetch_error;
pub mod guard;
pub mod key_sets;

/// Host names as every host rule compares them (with the configuration, which normalizes its
/// host patterns the same way).
pub use crate::config::host;
