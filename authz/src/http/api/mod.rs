//! The management API (`/api/v1`): JSON over HTTPS for first-party tools and resource servers
//! acting for a user through token exchange. It accepts only live access tokens
//! (`oauth::live`) whose `aud` is the management audience (a user's token for the MCP server is
//! refused: no passthrough), of users, never of API keys; each route names the scope it needs
//! (RFC 6750 §3.1).

mod keys;
mod reports;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shared::{AccessTokenClaims, ScopeSet};

use super::bearer::BearerToken;
use crate::error::Error;
use crate::oauth::live::{self, Audience};
use crate::state::AppState;
use crate::store::User;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(keys::router())
        .merge(reports::router())
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
}

/// The verified caller of a management request.
#[derive(Debug)]
pub struct Caller {
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
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = BearerToken::from_request_parts(parts, state).await?;
        let audience = state.config.management_audience();
        let live = live::access_token(state, token.expose(), Audience::Exactly(&audience))
            .await?
            .map_err(|dead| Error::invalid_token(dead.description()))?;
        // API keys never reach the management API (no key mints keys): only user grants,
        // directly or through token exchange.
        if live.client.owner_id.is_some() {
            return Err(Error::invalid_token(
                "API keys cannot call the management API",
            ));
        }
        let Some(user) = live.user else {
            return Err(Error::invalid_token("the token does not speak for a user"));
        };
        Ok(Caller {
            claims: live.claims,
            user,
            scope: live.scope,
        })
    }
}
