//! OAuth 2.0 protocol logic, independent of HTTP framing: request parsing, client
//! authentication, scope and resource policy, the token issuer and one module per grant.

pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod device;
pub mod dpop;
pub mod flows_config;
pub mod form;
pub mod grant;
pub mod id_jag;
pub mod id_jag_config;
pub mod id_jag_subject;
pub mod id_token_hint;
pub mod introspection;
pub mod issuer;
pub mod live;
pub mod par;
pub mod pkce;
pub mod redirect_uri;
pub mod registration;
pub mod resource;
pub mod revocation;
pub mod scope;
