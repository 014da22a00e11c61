//! Signing keys: generation, encryption at rest, the in-memory key ring and JWKS publication.
//!
//! The server signs with aws-lc-rs key pairs that are parsed once when loaded (see
//! `docs/architecture.md`: `jsonwebtoken::encode` re-parses the private key on every call).
//! `kid` is the RFC 7638 JWK thumbprint. Private keys are stored AES-256-GCM encrypted under
//! the master key, with the `kid` as associated data.

pub mod admin;
pub mod issuer;
pub mod jws;
mod ring;
mod signer;

pub use admin::{KeyAdmin, KeySwitch};
pub use ring::{Activation, KeyRing, KeySet, NextKeys, Withdrawal, rotate, withdraw};
pub(crate) use ring::{ensure_active_key, load_key_set, promote_due, rotate_on_schedule};
pub use signer::{SigningAlg, SigningKey};

pub use crate::config::types::JWKS_MAX_AGE_SECS;
