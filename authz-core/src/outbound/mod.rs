//! Everything this server fetches from a URL someone else supplied (client metadata documents,
//! `jwks_uri`, ID-JAG issuers' keys): the SSRF guard, the budgeted fetcher and the key-set cache.

pub mod budget;
pub mod fetch;
pub mod guard;
pub mod host;
pub mod key_sets;
