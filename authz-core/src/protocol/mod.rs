//! OAuth 2.0 / OpenID Connect protocol logic, free of any web framework (it reads the `http`
//! crate's types at most; its inputs arrive typed: `Form`, `ClientCredentials`, `DpopProof`,
//! `live::Presentation`): request parsing, the authorization endpoint and PAR (`authorize`,
//! `authorize::par`), the device flow, one module per grant, token liveness, introspection,
//! revocation, resources, PKCE and redirect URIs. Client authentication is `clients`, scope
//! policy `policy::scope`, the token issuer `keys::issuer`.

pub mod authorize;
pub mod device;
pub mod form;
pub mod grant;
pub mod id_jag;
pub mod id_jag_subject;
pub mod id_token_hint;
pub mod introspection;
pub mod live;
pub mod pkce;
// Moved to `policy` (LAYERING.md); the old paths stay until every branch names the new ones.
pub use crate::policy::{redirect_uri, resource};
pub mod revocation;

/// Pushed authorization requests live with the authorization endpoint whose rules they follow.
pub use authorize::par;
