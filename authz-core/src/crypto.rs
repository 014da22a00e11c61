//! Cryptographic helpers; they live in `shared` so both servers use the same code.

pub use shared::crypto::*;
