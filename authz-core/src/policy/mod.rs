//! Policies the protocol applies: scopes (who may ask for what), password hashing and rules,
//! DPoP proof verification, binding and nonces (RFC 9449).

pub mod dpop;
pub mod password;
pub mod scope;
