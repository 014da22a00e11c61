//! The management API (`/api/v1`): JSON over HTTPS for first-party tools and resource servers
//! acting for a user through token exchange. It accepts only live access tokens presented as
//! their DPoP binding requires (`protocol::live::presented`: a bound token only under the DPoP
//! scheme with a proof by its key, RFC 9449 §7) whose `aud` is the management audience (a
//! user's token for the MCP server is refused: no passthrough), of users, never of API keys;
//! each route names the scope it needs (RFC 6750 §3.1).

mod keys;
mod reports;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shared::{AccessTokenClaims, ScopeSet};

use crate::error::Error;
use crate::extract::BearerOrDpop;
use authz_core::protocol::live::{self, Audience};
use authz_core::state::AppState;
use authz_core::store::User;

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .merge(keys::router())
        .merge(reports::router())
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024));
    // Answers carry secrets (a new key's `client_secret`) and account data: never cached
    // (RFC 6749 §5.1, RFC 9111 §5.2.2.5).
    crate::layers::never_cached_router(routes, crate::layers::NoStore::CacheControl)
}

/// The verified caller of a management request.
#[derive(Debug)]
pub(crate) struct Caller {
    pub claims: AccessTokenClaims,
    pub user: User,
    pub scope: ScopeSet,
}

impl Caller {
    pub fn require(&self, scope: &'static str) -> Result<(), Error> {
        if self.scope.contains(scope) {
            Ok(())
        } else {
            Err(Error::InsufficientScope {
                scope: scope.into(),
            })
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = crate::error::WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let audience = state.config.management_audience();
        // The proof's `htu` is this request's public URL (`extract::DpopProof`).
        let BearerOrDpop(presentation) = BearerOrDpop::from_request_parts(parts, state).await?;
        let live = live::presented(state, &presentation, Audience::Exactly(&audience)).await?;
        // API keys never reach the management API (no key mints keys): only user grants,
        // directly or through token exchange.
        if live.client.owner_id.is_some() {
            return Err(Error::invalid_token("API keys cannot call the management API").into());
        }
        let Some(user) = live.user else {
            return Err(Error::invalid_token("the token does not speak for a user").into());
        };
        Ok(Caller {
            claims: live.claims,
            user,
            scope: live.scope,
        })
    }
}
