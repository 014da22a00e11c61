//! OAuth clients: their administration (add, rotate a secret, delete, prune), registration
//! (RFC 7591 and the console), Client ID Metadata Documents, authentication (secrets and
//! RFC 7523 assertions) and users' API keys.

pub mod admin;
pub mod api_keys;
pub mod assertion;
pub mod authentication;
pub mod cimd;
pub mod registration;
mod services;

pub use services::ClientServices;
