//! People and their credentials, beside the protocol (`protocol`): browser and grant sessions,
//! checking a sign-in (with per-username throttling; the directory behind it, `directory`), the TOTP second factor, passkeys, a
//! user's own data (export, deletion), ending one client's grant (`grants`), and the
//! administration of users shared by the CLI, the console and the seed. Password hashing and
//! policy are `policy::password`; clients are administered in `clients::admin`, keys by
//! `keys::KeyAdmin`; users' API keys are `clients::api_keys`.

pub mod admin;
pub mod data;
pub mod directory;
pub mod grants;
pub mod passkeys;
mod services;
pub mod session;
pub mod signin;
pub mod totp;
pub mod two_factor;

pub use services::IdentityServices;
