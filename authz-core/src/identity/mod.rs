//! People and their credentials, beside the protocol (`protocol`): browser and grant sessions,
//! checking a sign-in (with per-username throttling), the TOTP second factor, passkeys, a
//! user's own data (export, deletion), and the administration of users, clients and keys
//! shared by the CLI, the seed and the management API. Password hashing and policy are
//! `policy::password`; users' API keys are `clients::api_keys`.

pub mod admin;
pub mod data;
pub mod passkeys;
pub mod session;
pub mod signin;
pub mod totp;
pub mod two_factor;
