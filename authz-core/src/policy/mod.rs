//! Policies the protocol applies: scopes (who may ask for what), password hashing and rules,
//! DPoP proof verification, binding and nonces (RFC 9449), redirect URIs (RFC 6749 §3.1.2,
//! RFC 8252) and resource indicators (RFC 8707).

pub mod dpop;
pub mod password;
pub mod redirect_uri;
pub mod resource;
pub mod scope;
