//! Security round 3 (issue 24): one regression test per finding, named after it
//! (`item_NN_…`), each beside a positive control; on SQLite and PostgreSQL.

mod assertions;
mod browser_pending;
mod browser_reauth;
mod browser_small;
mod delivery;
mod dpop;
mod fetch;
mod keys_and_sessions;
mod races;
mod remedies;
