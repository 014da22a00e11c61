//! The verified caller: what the token layer (`token`) hands on, in the request's extensions,
//! to the JSON-RPC gate, the MCP handlers and the audit trail. A plain type (no state), so
//! every layer may name it.

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use shared::{AccessTokenClaims, ScopeSet};

/// The verified caller, put into request extensions for the MCP handlers.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessTokenClaims,
    pub scopes: ScopeSet,
    /// The presented token, kept only to be the `subject_token` of a token exchange; it is
    /// never forwarded (redacted in Debug).
    pub token: shared::secret::AccessToken,
}

impl Caller {
    /// The caller the token middleware put on the HTTP request rmcp hands to its handlers.
    pub fn of(extensions: &rmcp::model::Extensions) -> Option<Caller> {
        extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .cloned()
    }
}

/// Tools take the verified caller as an argument. The middleware always sets it, so its
/// absence is a server fault, never a client error.
impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, rmcp::ErrorData> {
        Caller::of(&context.as_request_context().extensions)
            .ok_or_else(|| rmcp::ErrorData::internal_error("unauthenticated request", None))
    }
}
