//! Security round 3 (issue 24): one regression test per finding, named after it
//! (`item_NN_…`), each beside a positive control; on SQLite and PostgreSQL. The modules that
//! register passkeys (a software authenticator) need the cargo feature `passkeys`.

mod assertions;
#[cfg(feature = "passkeys")]
pub(crate) mod browser_pending;
mod browser_reauth;
mod browser_small;
mod delivery;
mod dpop;
mod fetch;
mod flows;
mod keys_and_sessions;
mod races;
#[cfg(feature = "passkeys")]
mod remedies;
