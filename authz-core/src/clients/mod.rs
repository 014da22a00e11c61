//! OAuth clients: registration (RFC 7591 and the console), Client ID Metadata Documents,
//! authentication (secrets and RFC 7523 assertions) and users' API keys.

pub mod api_keys;
pub mod assertion;
pub mod authentication;
pub mod cimd;
pub mod registration;
