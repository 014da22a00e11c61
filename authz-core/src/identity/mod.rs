//! Accounts and their credentials, beside the protocol (`oauth`): browser and grant sessions,
//! password hashing and policy, checking a sign-in (with per-username throttling), users' API
//! keys, the TOTP second factor, and the administration of users, clients and keys shared by
//! the CLI, the seed and the management API.

pub mod admin;
pub mod data;
pub mod passkeys;
pub mod session;
pub mod signin;
pub mod totp;
pub mod two_factor;
