//! OAuth 2.0 protocol logic, independent of HTTP framing: request parsing, client
//! authentication, scope and resource policy, the token issuer and one module per grant.

pub mod authorize;
pub mod device;
pub mod form;
pub mod grant;
pub mod id_jag;
pub mod id_jag_subject;
pub mod id_token_hint;
pub mod introspection;
pub mod live;
pub mod par;
pub mod pkce;
pub mod redirect_uri;
pub mod resource;
pub mod revocation;
